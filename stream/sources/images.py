"""Image folders, globs and single images, played as a sequence at a fixed frame rate; each image
keeps its own size and name."""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError
from ..frames import StreamInfo
from .base import Picture, Source, error_reason, fps_time_base, safe_name, to_rgb8

IMAGE_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm", ".pfm", ".exr", ".hdr", ".pic", ".sr", ".ras", ".jp2", ".avif",
})
DEFAULT_IMAGE_FPS = 25.0


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _read_image(path: Path) -> np.ndarray:
    """Any image OpenCV decodes (EXIF orientation applied) as RGB uint8."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {error_reason(error)}") from error
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not an image OpenCV can decode")
    return to_rgb8(image, str(path))


class ImageFolderSource(Source):
    """A naturally sorted list of image files of any sizes, timed at a fixed fps.

    ``folders`` are the folders read (a folder source, not a glob's), listed in ``info.inputs``
    with the files so that no output lands inside them.
    """

    def __init__(self, paths: list[Path], *, label: str, name: str, fps: float = DEFAULT_IMAGE_FPS,
                 folders: tuple[Path, ...] = ()) -> None:
        if not paths:
            raise SourceError(f"{label}: no image files found")
        self._paths = sorted(paths, key=lambda path: natural_key(str(path)))
        stems = [path.stem for path in self._paths]
        if len(set(stems)) < len(stems):
            stems = [f"{i:06d}_{stem}" for i, stem in enumerate(stems)]
        self._names = [safe_name(stem) for stem in stems]
        fps, time_base = fps_time_base(fps, label)
        self._pending: np.ndarray | None = _read_image(self._paths[0])
        self._next = 0
        super().__init__(StreamInfo(
            width=self._pending.shape[1],
            height=self._pending.shape[0],
            time_base=time_base,
            fps=fps,
            frame_count=len(self._paths),
            live=False,
            name=safe_name(name),
            sizes_vary=True,
            inputs=tuple(str(path) for path in (*folders, *self._paths)),
        ))

    def _read(self) -> Picture | None:
        with self._lock:
            if self._released or self._next >= len(self._paths):
                return None
            index = self._next
            path = self._paths[index]
            image, self._pending = self._pending, None
            if image is None:
                image = _read_image(path)
            self._next += 1
        return Picture(image, index, name=self._names[index])

    def _release(self) -> None:
        self._pending = None


def image_paths_in(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir()
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES]


def image_paths_matching(pattern: str) -> list[Path]:
    return [Path(match) for match in glob.glob(pattern)
            if os.path.isfile(match) and Path(match).suffix.lower() in IMAGE_SUFFIXES]

