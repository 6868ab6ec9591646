"""The real dash-cam clip that sits beside CamVid in the shared data folder, read with OpenCV.
It is only ever evaluated on (never trained on); a clone without the shared folder has no clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nets.errors import NetsError

__all__ = ["ROAD_CLIP", "road_clip_path", "read_clip"]

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
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if not capture.isOpened() or total < 1:
            raise NetsError(f"cannot read video {path}")
        wanted = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())
        frames = []
        for index in range(max(wanted) + 1):
            if not capture.grab():
                break
            if index in wanted:
                frames.append(cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise NetsError(f"no frames could be decoded from {path}")
    return frames
