"""Video sources: ``open_source(spec)`` turns a file, camera, image folder, network URL or
``synth://`` scene into an iterable of :class:`~stream.frames.Frame`.

Offline sources (video files, image folders, synth) are lossless: every frame, in order, with
the container's own timestamps. Live sources (cameras, network streams) hand over only the
newest frame and stamp frames on one strictly increasing microsecond timeline that survives
reconnects. The ``live`` option overrides the policy: an offline input made live is paced in
real time by its timestamps; a live input made offline hands over every frame. Every failure
is a :class:`~stream.errors.SourceError` whose message names the input.
"""
from .base import Source
from .files import VideoFileSource
from .images import ImageFolderSource, natural_key
from .live import LiveSource, ReconnectPolicy
from .opening import open_source
from .synthetic import SYNTH_SCENES, SynthSource

__all__ = ["SYNTH_SCENES", "ImageFolderSource", "LiveSource", "ReconnectPolicy", "Source", "SynthSource",
           "VideoFileSource", "natural_key", "open_source"]
