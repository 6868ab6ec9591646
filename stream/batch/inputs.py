"""Which files a batch processes: files, folders (recursively), globs and list files, each with
the relative name its outputs are filed under."""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DenseStreamError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts", ".m4v", ".mts", ".flv", ".mpg"})
LIST_SUFFIXES = frozenset({".txt", ".list"})


@dataclass(frozen=True)
class Input:
    """One video to process: its absolute ``path`` and ``name``, the relative posix path (from
    the folder, glob root or list file it was found through) that its outputs mirror."""

    path: Path
    name: str

    @property
    def stem(self) -> str:
        """``name`` without its suffix: where the outputs go inside the output folder."""
        return str(PurePosixPath(self.name).with_suffix(""))


def find_inputs(specs: list[str], exclude: Path | None = None) -> list[Input]:
    """Every video the specs name, in order, without duplicates; ``exclude`` (the output
    folder) is never searched. A folder contributes the video files below it, a glob its
    matches, a ``.txt``/``.list`` file one spec a line (relative to the list; '#' comments)."""
    found: dict[Path, Input] = {}
    skip = exclude.resolve() if exclude is not None else None
    for spec in specs:
        for item in _expand(spec, Path.cwd(), skip):
            found.setdefault(item.path, item)
    if not found:
        raise DenseStreamError(f"no videos found in {', '.join(specs) or 'the inputs given'}")
    _check_unique_outputs(list(found.values()))
    return list(found.values())


def _expand(spec: str, base: Path, skip: Path | None) -> list[Input]:
    path = (base / spec).resolve()
    if glob.has_magic(spec):
        root = _glob_root(base / spec)
        matches = sorted(Path(match).resolve() for match in glob.glob(str(base / spec), recursive=True))
        return [Input(match, match.relative_to(root).as_posix()) for match in matches
                if match.is_file() and not _inside(match, skip)]
    if path.is_dir():
        return [Input(file, file.relative_to(path).as_posix()) for file in _walk(path, skip)]
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return [item for line in _list_lines(path) for item in _expand(line, path.parent, skip)]
    if path.is_file():
        return [Input(path, path.name)]
    raise DenseStreamError(f"input {spec} does not exist")


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    """Video files under ``folder`` in sorted order, leaving out ``skip`` and hidden entries."""
    return sorted(file.resolve() for file in folder.rglob("*")
                  if file.is_file() and file.suffix.lower() in VIDEO_SUFFIXES
                  and not _inside(file.resolve(), skip)
                  and not any(part.startswith(".") for part in file.relative_to(folder).parts))


def _glob_root(pattern: Path) -> Path:
    """The longest leading part of ``pattern`` without wildcards."""
    parts = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts).resolve()


def _list_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DenseStreamError(f"cannot read list file {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.is_relative_to(folder)


def check_outputs_spare_inputs(inputs: list[Input], out: Path, video: bool, raw: bool) -> None:
    """Refuse a batch whose output for one video would be another input (``OUT/a.mp4`` when
    ``OUT/a.mp4`` is itself named as an input) or a raw folder holding one, since moving the
    outputs into place would replace it."""
    paths = {item.path.resolve(): item.path for item in inputs}
    folders = {parent: item.path for item in inputs for parent in item.path.resolve().parents}
    for item in inputs:
        target = (out / f"{item.stem}.mp4").resolve()
        if video and target in paths:
            raise DenseStreamError(f"output {target} is the input {paths[target]}; choose another --out-dir")
        folder = (out / item.stem).resolve()
        if raw and (folder in paths or folder in folders):
            other = paths.get(folder) or folders[folder]
            raise DenseStreamError(f"raw output folder {folder} would replace the input {other}; "
                                   "choose another --out-dir")


def _check_unique_outputs(inputs: list[Input]) -> None:
    """Two inputs whose outputs would land on the same name (clip.mp4 and clip.mkv) are refused."""
    seen: dict[str, Input] = {}
    for item in inputs:
        other = seen.setdefault(item.stem, item)
        if other is not item:
            raise DenseStreamError(f"{other.path} and {item.path} would both write outputs named "
                                   f"{item.stem}; rename one or run them in separate batches")
