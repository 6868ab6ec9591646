"""Outputs never destroy what exists: every sink claims its output here before writing.

``claim_output`` refuses an output that is, contains or lies inside one of the run's inputs
(paths resolved, symlinks and hard links followed) and an existing output unless overwriting
is asked for. ``PendingFile`` writes a replacement beside an existing file and moves it into
place only when told (once it holds frames), so a run that fails early leaves the old file as
it was. ``write_file`` writes a whole file under a temporary name and renames it, so a file is
either complete or absent.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from stream.errors import SinkError

OVERWRITE_HINT = "pass --overwrite (-y) to replace it (API: overwrite=True)"


def claim_output(target: Path, inputs: Iterable[str | os.PathLike[str]], overwrite: bool,
                 *, folder: bool) -> None:
    """Refuse ``target`` (a file, or a folder when ``folder``) when writing it could harm an
    input, when it cannot be created where it is, or when it already holds something and
    ``overwrite`` is False."""
    resolved = target.resolve()
    for source in inputs:
        source_path = Path(source)
        if not source_path.exists():
            continue
        source_resolved = source_path.resolve()
        if resolved == source_resolved or _same_file(target, source_path):
            raise SinkError(f"output {target} is the input {source}; write to another path")
        if folder and source_resolved.is_relative_to(resolved):
            raise SinkError(f"output folder {target} contains the input {source}; write to another folder")
        if source_path.is_dir() and resolved.is_relative_to(source_resolved):
            raise SinkError(f"output {target} lies inside the input folder {source}; write it elsewhere")
    blocker = file_in_the_way(target)
    if blocker is not None:
        raise SinkError(f"cannot create {target}: its parent {blocker} is a file, not a folder")
    if folder and target.exists() and not target.is_dir():
        raise SinkError(f"output folder {target} is a file; give a folder path")
    if not overwrite and _holds_something(target, folder):
        kind = "folder is not empty" if folder else "exists"
        raise SinkError(f"output {target} {kind}; {OVERWRITE_HINT}")


def file_in_the_way(target: Path) -> Path | None:
    """The nearest existing ancestor of ``target`` when it is a file, under which nothing can
    be created; None when that ancestor is a folder."""
    for parent in Path(target).absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _holds_something(target: Path, folder: bool) -> bool:
    if folder:
        return target.is_dir() and any(target.iterdir())
    return target.exists() or target.is_symlink()


class PendingFile:
    """Where a file output is written: the target itself when it is new, otherwise a hidden
    temporary name in the same folder that ``publish()`` moves over the old file."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.replacing = target.exists()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.replacing:
                handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}",
                                                dir=target.parent)
                os.close(handle)
                self.path = Path(name)
            else:
                with open(target, "wb"):
                    pass
                self.path = target
        except OSError as error:
            raise SinkError(f"cannot create {target}: {error.strerror or error}") from error

    @property
    def published(self) -> bool:
        return self.path == self.target

    def publish(self) -> None:
        """Move the new file into place (atomically replacing the old one); later calls do nothing."""
        if self.published:
            return
        try:
            os.replace(self.path, self.target)
        except OSError as error:
            raise SinkError(f"cannot replace {self.target}: {error.strerror or error}") from error
        self.path = self.target

    def discard(self) -> None:
        """Drop an unpublished replacement, leaving the old file untouched."""
        if not self.published:
            self.path.unlink(missing_ok=True)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` completely or not at all (temporary name, then rename)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise SinkError(f"cannot write {path}: {error.strerror or error}") from error
