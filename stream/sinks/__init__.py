"""Sinks: where each processed frame goes (video file, window, image folder, raw outputs, nowhere).

Every sink takes ``write(frame, image, outputs)`` once per frame, where ``image`` is the composed
overlay (H' x W' x 3 uint8 RGB, constant size over a run) and ``outputs`` the raw host-side
predictions (``labels``, ``depth``, ``box``; all optional). ``close()`` finalises and may be called
any number of times, after an error, from another thread or from a signal handler.
Output locations are checked when the sink is built, so a bad path fails before any work is done.
"""
from .base import NullSink, Sink, hurry
from .images import ImageFolderSink
from .opening import open_sink
from .raw import RawSink, depth_to_millimetres
from .video import VideoSink
from .window import WindowSink

__all__ = ["ImageFolderSink", "NullSink", "RawSink", "Sink", "VideoSink", "WindowSink", "depth_to_millimetres",
           "hurry", "open_sink"]
