"""The settings every video of a batch runs with, and the hash the manifest keeps of them."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata

from ..errors import DenseStreamError


@dataclass(frozen=True)
class Settings:
    """What ``stream.run`` is given for each video (besides its paths). ``video`` writes the
    overlay MP4, ``raw`` the raw maps; ``threads`` is how many CPU threads torch may use and,
    like the worker count, changes how fast a video runs, not what it gives."""

    task: str
    model: str | None = None
    video: bool = True
    raw: bool = False
    layout: str = "overlay"
    device: str = "auto"
    precision: str = "auto"
    batch: int = 1
    max_frames: int | None = None
    refine: str | None = None
    infer_size: str | tuple[int, int] = "auto"
    hud: bool = False
    hw_codecs: str = "auto"
    compile: str = "auto"
    threads: int | None = None

    def check(self) -> None:
        """Refuse up front what no video of the batch could run with."""
        if not (self.video or self.raw):
            raise DenseStreamError("nothing to write: keep the overlay video or ask for --raw")
        if "track" in (name.strip() for name in self.task.split(",")):
            raise DenseStreamError("--task track needs a start box per video, which a batch does not take")

    def fingerprint(self) -> str:
        """A short hash of everything that decides the outputs (threads left out), with the
        package version, so a resumed batch redoes a video whose settings changed."""
        decisive = {key: value for key, value in asdict(self).items() if key != "threads"}
        decisive["infer_size"] = list(self.infer_size) if isinstance(self.infer_size, tuple) else self.infer_size
        decisive["version"] = _version()
        text = json.dumps(decisive, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run_options(self) -> dict:
        """Keyword arguments for ``stream.run`` other than the source, task and outputs."""
        return {"model": self.model, "layout": self.layout, "device": self.device,
                "precision": self.precision, "batch": self.batch, "max_frames": self.max_frames,
                "refine": self.refine, "infer_size": self.infer_size, "hud": self.hud,
                "hw_codecs": self.hw_codecs, "compile": self.compile, "threads": self.threads,
                "live": False}


def _version() -> str:
    try:
        return metadata.version("densestream")
    except metadata.PackageNotFoundError:
        return "unknown"
