"""``open_sink``: build the sink that a CLI-style target names."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from stream.errors import SinkError
from stream.frames import StreamInfo

from .base import NullSink, Sink
from .images import ImageFolderSink
from .video import VIDEO_FORMATS, VideoSink
from .window import WindowSink


def open_sink(target: str, info: StreamInfo, codec: str | None = None, *, overwrite: bool = False,
              **options) -> Sink:
    """Build the sink a CLI-style target names.

    ``null`` -> NullSink; ``window`` or ``show`` -> WindowSink (title defaults to the stream name);
    ``*.mp4|*.mkv|*.mov`` -> VideoSink; an existing directory, a path ending in a slash or a path
    without extension -> ImageFolderSink. ``codec`` (the encoder, see
    ``stream.hwcodecs.pick_encoder``) applies to video files and is ignored by the others;
    ``overwrite`` lets files and folders replace existing ones (never the inputs named in
    ``info.inputs``); ``options`` go to the chosen sink's constructor.
    """
    if target == "null":
        return _build(NullSink, **options)
    if target in ("window", "show"):
        return _build(WindowSink, options.pop("title", info.name), **options)
    path = Path(target)
    suffix = path.suffix.lower()
    if target.endswith(("/", os.sep)) or path.is_dir() or not suffix:
        return _build(ImageFolderSink, path, inputs=info.inputs, overwrite=overwrite, **options)
    if suffix in VIDEO_FORMATS:
        return _build(VideoSink, path, info, overwrite=overwrite, **({"codec": codec} if codec else {}),
                      **options)
    raise SinkError(
        f"unknown output extension {suffix!r} in {target!r}: use a .mp4, .mkv or .mov file, "
        "a directory, 'null' or 'window'"
    )


def _build(cls: type[Sink], *args, **options) -> Sink:
    """Construct ``cls``, turning options it does not take into a SinkError."""
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as error:
        message = f"{cls.__name__} does not accept the options {sorted(options)}: {error}"
        raise SinkError(message) from error
    return cls(*args, **options)
