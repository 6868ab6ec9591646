"""The batch manifest: one JSON line per processed video in the output folder, appended as each
finishes, so a second run knows what is done, with which settings, and what failed."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DenseStreamError

MANIFEST_NAME = "manifest.jsonl"
DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"


@dataclass
class Record:
    """What became of one input: ``path`` absolute, ``name`` relative (what the outputs mirror),
    ``size`` and ``mtime`` of the input when it was read, ``settings`` the settings hash,
    ``status`` done/failed/interrupted, ``outputs`` relative to the output folder."""

    path: str
    name: str
    size: int
    mtime: float
    settings: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class Manifest:
    """``DIR/manifest.jsonl``: the latest record per input path wins. Opening it rewrites the
    file with only those latest records (written aside, then moved over the old one)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / MANIFEST_NAME
        self.records: dict[str, Record] = self._read()
        self._compact()

    def _read(self) -> dict[str, Record]:
        if not self.path.exists():
            return {}
        records: dict[str, Record] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DenseStreamError(f"cannot read the manifest {self.path}: {exc}") from exc
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = Record(**json.loads(line))
            except (ValueError, TypeError) as exc:
                if number == len(lines):
                    continue  # a last line cut short by a crash: that video is simply redone
                raise DenseStreamError(f"{self.path} line {number} is not a manifest record") from exc
            records[record.path] = record
        return records

    def _compact(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            aside = self.path.with_name(self.path.name + ".tmp")
            aside.write_text("".join(r.to_json() + "\n" for r in self.records.values()), encoding="utf-8")
            os.replace(aside, self.path)
        except OSError as exc:
            raise DenseStreamError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from exc

    def add(self, record: Record) -> None:
        """Record ``record`` (replacing any earlier one for its path) and append it to the file."""
        self.records[record.path] = record
        try:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(record.to_json() + "\n")
        except OSError as exc:
            raise DenseStreamError(f"cannot write the manifest {self.path}: {exc.strerror or exc}") from exc

    def is_done(self, path: Path, size: int, mtime: float, settings: str) -> bool:
        """Whether ``path`` as it is now was finished with these settings and its outputs remain."""
        record = self.records.get(str(path))
        return (record is not None and record.status == DONE and record.size == size
                and record.mtime == mtime and record.settings == settings
                and all((self.directory / output).exists() for output in record.outputs))
