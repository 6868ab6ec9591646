"""What every source shares: the ``Source`` iteration contract and the pixel, timing and
PyAV helpers that the file, image, synthetic and live sources use."""
from __future__ import annotations

import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import cv2
import numpy as np

from ..errors import SourceError, one_line
from ..frames import Frame, StreamInfo

MICROSECOND = Fraction(1, 1_000_000)


@dataclass(slots=True)
class Picture:
    """One decoded image before it becomes a Frame: pixels, timestamp and an optional name."""

    image: np.ndarray
    pts: int | None
    captured: float = field(default_factory=time.monotonic)
    name: str | None = None


class Source(ABC):
    """Frames from one input: iterate once (from any thread), then ``close()`` or use ``with``."""

    def __init__(self, info: StreamInfo) -> None:
        self.info = info
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._released = False
        self._iterated = False
        self._paced = False

    def _use_live_policy(self, live: bool) -> None:
        """Override the input's natural policy; offline inputs made live play in real time."""
        self.info.live = live
        self._paced = live

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._iterated:
                raise SourceError(f"{self.info.name}: a source can be iterated only once; open it again")
            if self._released:
                raise SourceError(f"{self.info.name}: source is closed")
            self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        index = 0
        clock_origin: float | None = None
        try:
            while not self._stop.is_set():
                picture = self._read()
                if picture is None:
                    return
                captured = picture.captured
                if self._paced:
                    seconds = float(picture.pts * self.info.time_base)
                    if clock_origin is None:
                        clock_origin = time.monotonic() - seconds
                    if self._stop.wait(max(0.0, clock_origin + seconds - time.monotonic())):
                        return
                    captured = time.monotonic()  # a paced frame "arrives" when it is due
                yield Frame(
                    index=index,
                    pts=picture.pts,
                    time_base=self.info.time_base,
                    image=picture.image,
                    captured=captured,
                    meta={"name": picture.name or f"frame_{index:06d}"},
                )
                index += 1
        finally:
            self.close()

    @abstractmethod
    def _read(self) -> Picture | None:
        """The next picture with its final pts, or None at the end (or once closed)."""

    @abstractmethod
    def _release(self) -> None:
        """Free the underlying resources; called once, with ``self._lock`` held."""

    def close(self) -> None:
        """Stop iteration and free resources; safe to call twice and from another thread."""
        self._stop.set()
        with self._lock:
            if not self._released:
                self._released = True
                self._release()

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run."""
        return self._released

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def error_reason(error: BaseException) -> str:
    """A short, single-line reason from a PyAV/OpenCV/OS error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return one_line(str(text))


def safe_name(text: str) -> str:
    """A filename-safe version of ``text`` (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "stream"


def rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` (rounded to a quarter turn), as FFmpeg displays it."""
    quarter_turns = round(degrees / 90) % 4
    if quarter_turns:
        image = np.rot90(image, quarter_turns)
    return np.ascontiguousarray(image)


def to_rgb8(image: np.ndarray, label: str) -> np.ndarray:
    """OpenCV pixels (grey/BGR/BGRA; 8-bit, 16-bit or float) to C-contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"{label}: unsupported pixel type {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 3:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB))
    raise SourceError(f"{label}: unsupported channel count {image.shape[2]}")


def fps_time_base(fps: float, label: str) -> tuple[float, Fraction]:
    """Validate a frame rate and return it with the time base 1/fps as an exact fraction."""
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise SourceError(f"{label}: fps must be a number, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise SourceError(f"{label}: fps must be positive, got {fps}")
    return fps, 1 / Fraction(fps).limit_denominator(1001)


def video_stream(container: av.container.InputContainer, label: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art does not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise SourceError(f"{label}: no video stream (audio-only or data file)")


def stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None
