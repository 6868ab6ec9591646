"""An on-screen OpenCV window that the user can close or quit with q or Esc."""
from __future__ import annotations

import logging
import os
import sys
import threading

import cv2
import numpy as np

from stream.errors import SinkError, one_line
from stream.frames import Frame

from .base import Sink, check_rgb

log = logging.getLogger(__name__)

QUIT_KEYS = (ord("q"), ord("Q"), 27)


class WindowSink(Sink):
    """On-screen OpenCV window; q, Q or Esc (or closing the window) sets ``stop_requested``.

    OpenCV's GUI (Qt) must be driven from one thread, so the window is created by the first
    ``write`` (the sink's thread) and destroyed only when ``close`` runs in that same thread;
    a window left open by a close from elsewhere goes away with the process.
    """

    hud_by_default = True
    """A person watches this output, so the run's status line is drawn unless asked otherwise."""

    def __init__(self, title: str = "densestream") -> None:
        super().__init__()
        self.title = title
        _require_display()
        self._gui_thread: int | None = None

    def describe(self) -> str:
        return f"window {self.title!r}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = check_rgb(image, self.describe())
        try:
            if self._gui_thread is None:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                self._gui_thread = threading.get_ident()
            cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(1) & 0xFF
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error as error:
            raise SinkError(f"cannot show frame {frame.index}: {one_line(str(error))}") from error
        if key in QUIT_KEYS or visible < 1:
            self.stop_requested = True

    def _close(self) -> None:
        if self._gui_thread != threading.get_ident():
            return
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            log.debug("window %r was already gone", self.title)


def _require_display() -> None:
    """Fail clearly without GUI support or, on Linux, without X11/Wayland (Qt would abort)."""
    if _opencv_gui_backend() == "NONE":
        raise SinkError(
            "cannot open a window: this OpenCV build has no GUI support "
            "(opencv-python-headless?); install opencv-python or write to a file"
        )
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display:
        raise SinkError(
            "cannot open a window: no display ($DISPLAY and $WAYLAND_DISPLAY are unset); "
            "write to a file instead, e.g. out.mp4"
        )


def _opencv_gui_backend() -> str:
    """The GUI backend OpenCV was built with ("QT5", "GTK3", "WIN32UI", "NONE", ...)."""
    for line in cv2.getBuildInformation().splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "GUI":
            return value.strip().upper()
    return "UNKNOWN"
