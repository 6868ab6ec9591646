"""One video of a batch, as a worker runs it: an ordinary ``stream.run`` into a staging folder,
whose outputs are moved into place only once whole, so a killed or failed run leaves none."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DenseStreamError, describe_error
from .manifest import DONE, FAILED, INTERRUPTED, Record
from .settings import Settings

STAGING = ".partial"
REPORT_INTERVAL = 0.25


@dataclass(frozen=True)
class Event:
    """What a worker says while it works: ``kind`` 'start' or 'frames', for video ``name``;
    ``worker`` names the process (host:pid), ``frames`` and ``total`` its progress."""

    kind: str
    name: str
    worker: str
    pid: int
    frames: int = 0
    total: int | None = None


Reporter = Callable[[Event], None]


@dataclass(frozen=True)
class Job:
    """One input to process into ``out_dir`` with ``settings`` (whose hash is ``fingerprint``)."""

    path: str
    name: str
    stem: str
    out_dir: str
    size: int
    mtime: float
    settings: Settings
    fingerprint: str

    def outputs(self) -> list[str]:
        """The outputs' paths relative to the output folder: STEM.mp4 and/or the folder STEM/."""
        return ([f"{self.stem}.mp4"] if self.settings.video else []) + ([self.stem] if self.settings.raw else [])

    def record(self, status: str, frames: int = 0, seconds: float = 0.0, error: str | None = None) -> Record:
        return Record(self.path, self.name, self.size, self.mtime, self.fingerprint, status, frames,
                      round(seconds, 3), self.outputs() if status == DONE else [], error)


def run_job(job: Job, report: Reporter) -> Record:
    """Process ``job``; every failure becomes a failed record with its one-line error."""
    from .. import api

    worker, pid = f"{socket.gethostname()}:{os.getpid()}", os.getpid()
    report(Event("start", job.name, worker, pid))
    started = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int | None, _fps: float) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_INTERVAL or done == total:
            last[0] = now
            report(Event("frames", job.name, worker, pid, done, total))

    out_dir = Path(job.out_dir)
    stage = out_dir / STAGING / hashlib.sha256(job.name.encode()).hexdigest()[:16]
    staged = {output: stage / f"{index}{Path(output).suffix}" for index, output in enumerate(job.outputs())}
    video = staged.get(f"{job.stem}.mp4")
    raw = staged.get(job.stem)
    try:
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        summary = api.run(job.path, job.settings.task, out=str(video) if video else None,
                          raw=str(raw) if raw else None, progress=progress, **job.settings.run_options())
        if summary.error:
            return job.record(FAILED, summary.frames_out, time.monotonic() - started, summary.error)
        if summary.interrupted:
            return job.record(INTERRUPTED, summary.frames_out, time.monotonic() - started)
        _move_into_place(staged, out_dir)
        return job.record(DONE, summary.frames_out, time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
        return job.record(FAILED, 0, time.monotonic() - started, describe_error(exc))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_into_place(staged: dict[str, Path], out_dir: Path) -> None:
    """Replace each output by its finished staged copy (a same-disk rename, so never half there)."""
    for output, source in staged.items():
        target = out_dir / output
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(source, target)
        except OSError as exc:
            raise DenseStreamError(f"cannot move the output into {target}: {exc.strerror or exc}") from exc
