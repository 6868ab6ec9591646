"""The unit that flows through the pipeline: one decoded video frame and its timing."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .sources.live_audio import AudioFeed


@dataclass(slots=True)
class Frame:
    """One RGB uint8 frame (H x W x 3) with its index and exact presentation time.

    ``pts`` counts ``time_base`` units, so ``pts * time_base`` is the exact time in seconds
    as the container stored it; sinks reuse both to keep the source's timing.
    ``captured`` is the host monotonic clock when the frame left the decoder, for latency.
    """

    index: int
    pts: int
    time_base: Fraction
    image: np.ndarray
    captured: float = field(default_factory=time.monotonic)
    meta: dict = field(default_factory=dict)

    @property
    def seconds(self) -> Fraction:
        """Exact presentation time in seconds."""
        return self.pts * self.time_base

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


@dataclass(slots=True)
class StreamInfo:
    """What a source knows about its stream before the first frame arrives.

    ``width`` and ``height`` are the first frame's, and the only ones unless ``sizes_vary``
    (image folders). ``inputs`` names the local files and folders the source reads, so that
    outputs can refuse to overwrite them. A recording copies its audio from ``audio_source`` (a
    file it re-opens) or takes it from ``audio_feed`` (what a live source demuxes as it goes).
    """

    width: int
    height: int
    time_base: Fraction
    fps: float | None = None
    frame_count: int | None = None
    live: bool = False
    audio_source: str | None = None
    audio_feed: AudioFeed | None = None
    name: str = "stream"
    sizes_vary: bool = False
    inputs: tuple[str, ...] = ()
