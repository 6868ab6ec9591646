"""The bench input: a source turned into a short local clip and its decoded frames, optionally resized."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from nets.sizes import parse_size

from ..errors import DenseStreamError
from ..frames import Frame, StreamInfo
from ..sinks import VideoSink
from ..sources import open_source

from .memory import available_bytes

MEMORY_SHARE = 0.25


def parse_resolution(text: str) -> tuple[int, int]:
    """'960x540' to (960, 540); both sides positive and even (the H.264 clip needs that)."""
    try:
        width, height = parse_size(text, minimum=0)
    except ValueError:
        raise DenseStreamError(f"--resolution '{text}' is not WIDTHxHEIGHT, e.g. 960x540") from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise DenseStreamError(f"--resolution '{text}' needs even sizes of at least 2")
    return width, height


@dataclass
class BenchInput:
    """The frames every row uses: a video clip at the bench size and the first ones in memory."""

    clip: Path
    images: list[np.ndarray]
    count: int
    width: int
    height: int
    fps: float
    reencoded: bool


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def prepare_input(source: str, frames: int, resolution: tuple[int, int] | None,
                  workdir: Path) -> BenchInput:
    """Decode ``frames`` frames of ``source`` once, resized to ``resolution``.

    A local video file already at that size is used as it is; anything else is re-encoded
    (H.264, near lossless) into ``workdir`` so that every file-reading row reads one clip.
    Frames are kept in memory up to a quarter of the available memory.
    """
    if frames < 1:
        raise DenseStreamError("--frames must be at least 1")
    with open_source(source, live=False) as src:
        width, height = resolution or (src.info.width, src.info.height)
        fps = src.info.fps or 25.0
        local_file = isinstance(source, (str, os.PathLike)) and Path(source).is_file()
        reuse = local_file and (width, height) == (src.info.width, src.info.height)
        budget = available_bytes()
        fitting = frames if budget is None else int(MEMORY_SHARE * budget) // (width * height * 3)
        keep = max(1, min(frames, fitting))
        clip = Path(source) if reuse else workdir / "bench_input.mp4"
        time_base = 1 / Fraction(fps).limit_denominator(1001)
        info = StreamInfo(width, height, time_base, fps=fps, name="bench_input")
        writer = None if reuse else VideoSink(clip, info, crf=10)
        images: list[np.ndarray] = []
        count = 0
        try:
            for frame in itertools.islice(src, frames):
                image = _resized(frame.image, width, height)
                if len(images) < keep:
                    images.append(image)
                if writer is not None:
                    writer.write(Frame(count, count, time_base, image), image, {})
                count += 1
        finally:
            if writer is not None:
                writer.close()
    if count == 0:
        raise DenseStreamError(f"{source}: no frames to benchmark")
    return BenchInput(clip, images, count, width, height, fps, not reuse)
