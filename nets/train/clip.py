"""The real dash-cam clip that sits beside CamVid in the shared data folder, read with OpenCV.
It is only ever evaluated on (never trained on); a clone without the shared folder has no clip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from nets.errors import NetsError

__all__ = ["ROAD_CLIP", "road_clip_path", "read_clip", "read_clip_frames"]

ROAD_CLIP = "solidWhiteRight.mp4"


def road_clip_path(camvid_root: str | Path) -> Path:
    """Where the dash-cam clip lies for a CamVid root: ``<shared>/data/video/solidWhiteRight.mp4``
    when CamVid is ``<shared>/data/camvid``."""
    return Path(camvid_root).parent / "video" / ROAD_CLIP


def read_clip(path: str | Path, count: int = 20) -> list[np.ndarray]:
    """``count`` frames spread evenly over a video, first and last included, as RGB uint8."""
    if count < 1:
        raise NetsError(f"read_clip needs at least one frame, got {count}")
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    if total < 1:
        raise NetsError(f"cannot read video {path}")
    wanted = np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()
    return list(read_clip_frames(path, wanted).values())


def read_clip_frames(path: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """The frames at ``indices`` (0-based, in decoding order) of a video, as RGB uint8, keyed by
    index; indices past the end are missing from the result."""
    wanted = set(int(i) for i in indices)
    capture = cv2.VideoCapture(str(path))
    frames: dict[int, np.ndarray] = {}
    try:
        if not capture.isOpened():
            raise NetsError(f"cannot read video {path}")
        for index in range(max(wanted, default=-1) + 1):
            if not capture.grab():
                break
            if index in wanted:
                frames[index] = cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    if wanted and not frames:
        raise NetsError(f"no frames could be decoded from {path}")
    return frames
