"""Raw predictions per frame: label maps, depth in millimetres or metres, track rows."""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stream.errors import SinkError
from stream.frames import Frame

from .base import Sink, array_summary, frame_name, is_array, prepare_directory, write_image
from .safety import write_file

DEPTH_FORMATS = ("png16", "npy", "both")
TRACKS_HEADER = "frame,x,y,w,h,score,lost\n"


class RawSink(Sink):
    """Raw predictions per frame, for evaluation and post-processing.

    - ``labels`` (H x W uint8 class ids) -> ``<name>_labels.png``, 8-bit, the ids themselves.
    - ``depth`` (H x W float metres) -> ``<name>_depth.png``: 16-bit, millimetres, rounded and
      clipped to 0..65535 (so 65.535 m saturates; NaN and negative depths become 0 = no depth),
      and/or ``<name>_depth.npy``: the exact float32 metres.
    - ``probs`` (C x H x W float class probabilities) -> ``<name>_probs.npy`` as float16.
    - ``box`` (x, y, w, h, score, lost) -> one row of ``tracks.csv``, flushed at once so a
      killed run keeps every row written.

    The folder is claimed as in ``claim_output`` (``inputs``: the run's input paths; a folder
    that is not empty needs ``overwrite``); each map file is written completely or not at all,
    and a write that fails (a full disk) raises ``SinkError``.
    """

    def __init__(self, directory: str | os.PathLike[str], depth_format: str = "png16", *,
                 inputs: Sequence[str | os.PathLike[str]] = (), overwrite: bool = False) -> None:
        super().__init__()
        if depth_format not in DEPTH_FORMATS:
            choices = ", ".join(DEPTH_FORMATS)
            raise SinkError(f"unknown depth format {depth_format!r}: use one of {choices}")
        self.depth_format = depth_format
        self.directory = prepare_directory(Path(directory), inputs, overwrite)
        self._tracks = None

    def describe(self) -> str:
        return f"raw output folder {self.directory}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        name = frame_name(frame)
        labels = outputs.get("labels")
        if labels is not None:
            write_image(self.directory / f"{name}_labels.png", _check_labels(labels), [])
        depth = outputs.get("depth")
        if depth is not None:
            depth = _check_depth(depth)
            if self.depth_format in ("png16", "both"):
                write_image(self.directory / f"{name}_depth.png", depth_to_millimetres(depth), [])
            if self.depth_format in ("npy", "both"):
                self._save_npy(self.directory / f"{name}_depth.npy", depth)
        probs = outputs.get("probs")
        if probs is not None:
            if not is_array(probs, ndim=3, dtype=np.floating):
                raise SinkError(f"probs must be a C x H x W float array, got {array_summary(probs)}")
            self._save_npy(self.directory / f"{name}_probs.npy", probs.astype(np.float16))
        box = outputs.get("box")
        if box is not None:
            self._append_track(frame.index, box)

    def _save_npy(self, path: Path, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array)
        write_file(path, buffer.getvalue())

    def _append_track(self, index: int, box: tuple) -> None:
        if len(box) != 6:
            raise SinkError(
                f"tracking box of frame {index} has {len(box)} values, "
                "expected (x, y, w, h, score, lost)"
            )
        x, y, w, h, score, lost = box
        row = [str(index), *(repr(float(v)) for v in (x, y, w, h, score)), str(int(bool(lost)))]
        path = self.directory / "tracks.csv"
        try:
            if self._tracks is None:
                self._tracks = open(path, "w", encoding="utf-8", newline="")
                self._tracks.write(TRACKS_HEADER)
            self._tracks.write(",".join(row) + "\n")
            self._tracks.flush()
        except OSError as error:
            raise SinkError(f"cannot write {path}: {error.strerror or error}") from error

    def _close(self) -> None:
        if self._tracks is not None:
            self._tracks.close()


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres to uint16 millimetres: rounded, clipped to 0..65535, NaN and -inf to 0, +inf to 65535."""
    millimetres = np.nan_to_num(depth.astype(np.float64) * 1000.0, nan=0.0, posinf=65535.0, neginf=0.0)
    return np.clip(np.rint(millimetres), 0, 65535).astype(np.uint16)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    if not is_array(labels, ndim=2, dtype=np.uint8):
        raise SinkError(
            f"labels must be an H x W uint8 array of class ids, got {array_summary(labels)}"
        )
    return np.ascontiguousarray(labels)


def _check_depth(depth: np.ndarray) -> np.ndarray:
    if not is_array(depth, ndim=2, dtype=np.floating):
        raise SinkError(f"depth must be an H x W float array in metres, got {array_summary(depth)}")
    return np.ascontiguousarray(depth, dtype=np.float32)
