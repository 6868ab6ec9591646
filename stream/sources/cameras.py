"""What cameras this machine has and what each can do, as far as OpenCV can tell."""
from __future__ import annotations

import glob
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2

COMMON_SIZES = ((640, 480), (1280, 720), (1920, 1080), (3840, 2160))
PROBED_INDICES = range(5)
# OpenCV's bundled FFmpeg reads this when it first starts; -8 is FFmpeg's AV_LOG_QUIET.
FFMPEG_LOG_VARIABLE = "OPENCV_FFMPEG_LOGLEVEL"
_quiet_lock = threading.Lock()


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV while a capture opens: a missing camera otherwise makes every backend it
    tries print its own complaint (V4L2, FFmpeg, obsensor) above our one error line. Left
    alone when the user sets OPENCV_LOG_LEVEL."""
    if "OPENCV_LOG_LEVEL" in os.environ:
        yield
        return
    with _quiet_lock:
        level = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        ffmpeg_level = os.environ.get(FFMPEG_LOG_VARIABLE)
        os.environ[FFMPEG_LOG_VARIABLE] = "-8"
        try:
            yield
        finally:
            cv2.utils.logging.setLogLevel(level)
            if ffmpeg_level is None:
                del os.environ[FFMPEG_LOG_VARIABLE]
            else:
                os.environ[FFMPEG_LOG_VARIABLE] = ffmpeg_level


def open_capture(device: int | str) -> cv2.VideoCapture:
    """``cv2.VideoCapture(device)`` without OpenCV's log lines (see ``quiet_opencv``)."""
    with quiet_opencv():
        return cv2.VideoCapture(device)


@dataclass
class CameraInfo:
    """One capture device: how to name it as a SOURCE, its default mode, the common sizes it took."""

    source: str
    opens: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def line(self) -> str:
        if not self.opens:
            return f"{self.source}: does not open for capture (in use, no permission, or a metadata node)"
        sizes = ", ".join(f"{w}x{h}" for w, h in self.sizes) or "none of the common sizes"
        rate = f" at {self.fps:g} fps" if self.fps > 0 else ""
        return f"{self.source}: {self.width}x{self.height}{rate} by default; takes {sizes}"


def camera_sources() -> list[str]:
    """SOURCE arguments that may be cameras: /dev/videoN nodes on Linux, indices 0-4 elsewhere."""
    if sys.platform.startswith("linux"):
        nodes = glob.glob("/dev/video*")
        return sorted((n for n in nodes if re.fullmatch(r"/dev/video\d+", n)), key=lambda n: int(n[10:]))
    return [str(index) for index in PROBED_INDICES]


def probe_camera(source: str) -> CameraInfo:
    """Open ``source``, read its default mode, and try each of ``COMMON_SIZES``."""
    capture = open_capture(int(source) if source.isdigit() else source)
    try:
        if not capture.isOpened():
            return CameraInfo(source, opens=False)
        info = CameraInfo(source, True, int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                          int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), float(capture.get(cv2.CAP_PROP_FPS) or 0.0))
        for width, height in COMMON_SIZES:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (width, height):
                info.sizes.append((width, height))
        return info
    finally:
        capture.release()


def list_cameras() -> list[CameraInfo]:
    """Every camera found; on Linux nodes that do not open are listed too, elsewhere left out."""
    found = [probe_camera(source) for source in camera_sources()]
    return found if sys.platform.startswith("linux") else [camera for camera in found if camera.opens]
