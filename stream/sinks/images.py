"""One overlay image per frame in a folder."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from stream.errors import SinkError
from stream.frames import Frame

from .base import Sink, check_rgb, frame_name, prepare_directory, write_image

IMAGE_EXTENSIONS = ("png", "jpg")


class ImageFolderSink(Sink):
    """One overlay image per frame, ``<dir>/<frame name>.<ext>`` (png lossless, jpg quality 95).

    The folder is claimed as in ``claim_output`` (``inputs``: the run's input paths; a folder
    that is not empty needs ``overwrite``); each image is written completely or not at all.
    """

    def __init__(self, directory: str | os.PathLike[str], ext: str = "png", *,
                 inputs: Sequence[str | os.PathLike[str]] = (), overwrite: bool = False) -> None:
        super().__init__()
        self.ext = ext.lower().lstrip(".")
        if self.ext not in IMAGE_EXTENSIONS:
            raise SinkError(f"unknown image format {ext!r}: use one of {', '.join(IMAGE_EXTENSIONS)}")
        self.directory = prepare_directory(Path(directory), inputs, overwrite)

    def describe(self) -> str:
        return f"image folder {self.directory}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = check_rgb(image, self.describe())
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if self.ext == "jpg" else []
        path = self.directory / f"{frame_name(frame)}.{self.ext}"
        write_image(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
