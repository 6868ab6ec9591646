"""What every sink shares: the ``Sink`` write/close contract (thread- and signal-safe), the
null sink, and the checks and file helpers the other sinks use."""
from __future__ import annotations

import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from stream.errors import SinkError, one_line
from stream.frames import Frame

from .safety import claim_output, write_file


def hurry(sinks: Iterable[object]) -> None:
    """Ask every sink to skip its slow finishing steps (a second Ctrl-C); sinks that are not a
    ``Sink`` (extra outputs of a server) have none."""
    for sink in sinks:
        if hasattr(sink, "finish_quickly"):
            sink.finish_quickly = True


class Sink(ABC):
    """Common behaviour: frame counting, write-after-close errors, thread- and signal-safe close.

    ``close()`` from another thread waits for a write in progress to finish; ``close()`` from a
    signal handler that interrupted this sink's own ``write()`` is deferred to the end of that
    write, so the frame being written is never half-finalised. ``finish_quickly`` asks ``close()``
    to skip slow steps that the output does not need to stay usable.
    """

    def __init__(self) -> None:
        self.frames_written = 0
        self.stop_requested = False
        self.finish_quickly = False
        self._closed = False
        self._lock = threading.Lock()
        self._writing_thread: int | None = None
        self._close_deferred = False

    def write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        """Consume one processed frame."""
        self._writing_thread = threading.get_ident()
        try:
            with self._lock:
                if self._closed:
                    raise SinkError(f"{self.describe()} is already closed")
                self._write(frame, image, outputs)
                self.frames_written += 1
        finally:
            self._writing_thread = None
            if self._close_deferred:
                self.close()

    def close(self) -> None:
        """Finalise the output; later calls do nothing."""
        if self._writing_thread == threading.get_ident():
            self._close_deferred = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close()

    def describe(self) -> str:
        """One short phrase naming the output, for messages."""
        return type(self).__name__

    @abstractmethod
    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        """Sink-specific handling of one frame (called under the lock)."""

    def _close(self) -> None:
        """Sink-specific finalisation (called once, under the lock)."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullSink(Sink):
    """Discards everything; counts frames (benchmarks, dry runs)."""

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        return None


def frame_name(frame: Frame) -> str:
    """File stem for a frame: its source name, or its zero-padded index when it has none."""
    name = str(frame.meta.get("name") or f"{frame.index:06d}")
    if "/" in name or os.sep in name or name in (".", ".."):
        raise SinkError(f"frame {frame.index} has a name unusable as a file name: {name!r}")
    return name


def prepare_directory(directory: Path, inputs: Iterable[str | os.PathLike[str]] = (),
                      overwrite: bool = False) -> Path:
    """Claim ``directory`` (see ``claim_output``), create it if needed and check that files can
    be written into it."""
    claim_output(directory, inputs, overwrite, folder=True)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise SinkError(f"cannot write into directory {directory}: {error.strerror or error}") from error
    return directory


def write_image(path: Path, image: np.ndarray, params: list[int]) -> None:
    """Encode ``image`` in the format its suffix names and write the whole file or fail."""
    try:
        encoded, data = cv2.imencode(path.suffix, image, params)
    except cv2.error as error:
        raise SinkError(f"cannot write {path}: {one_line(str(error))}") from error
    if not encoded:
        raise SinkError(f"cannot write {path}: OpenCV could not encode the image")
    write_file(path, data.tobytes())


def check_rgb(image: np.ndarray, where: str) -> np.ndarray:
    if not (is_array(image, ndim=3, dtype=np.uint8) and image.shape[2] == 3):
        raise SinkError(f"{where}: expected an H x W x 3 uint8 RGB image, got {array_summary(image)}")
    return np.ascontiguousarray(image)


def is_array(value: object, *, ndim: int, dtype: type) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == ndim and np.issubdtype(value.dtype, dtype)


def array_summary(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} of {value.dtype}"
    return type(value).__name__
