"""What cameras this machine has and what each can do, as far as OpenCV can tell."""
from __future__ import annotations

import glob
import re
import sys
from dataclasses import dataclass, field

import cv2

COMMON_SIZES = ((640, 480), (1280, 720), (1920, 1080), (3840, 2160))
PROBED_INDICES = range(5)


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
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
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
