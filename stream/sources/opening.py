"""``open_source``: pick the kind of source from the spec's form and check its options."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from av.codec.hwaccel import HWAccel

from ..errors import SourceError
from .base import Source, safe_name
from .files import VideoFileSource
from .images import DEFAULT_IMAGE_FPS, IMAGE_SUFFIXES, ImageFolderSource, image_paths_in, image_paths_matching
from .live import CameraSession, LiveSource, NetworkSession, ReconnectPolicy
from .synthetic import SynthSource

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp"})
# An http(s) URL whose path ends in one of these is a finished file: read offline, losslessly.
FILE_URL_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
# Probe live streams for at most 1 s (FFmpeg's 5 s default delays the first frame).
LIVE_AV_OPTIONS = {"analyzeduration": "1000000"}


def _take_options(options: dict[str, Any], defaults: dict[str, Any], kind: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise SourceError(f"unknown option(s) for {kind}: {', '.join(unknown)} "
                          f"(expected: {', '.join(sorted(defaults)) or 'none'})")
    return {**defaults, **options}


def _policy(chosen: dict[str, Any]) -> ReconnectPolicy:
    return ReconnectPolicy(attempts=int(chosen["reconnect_attempts"]), max_outage=float(chosen["max_outage"]),
                           retry_delay=float(chosen["retry_delay"]), max_delay=float(chosen["retry_max_delay"]))


_RECONNECT_DEFAULTS = {"reconnect_attempts": 10, "max_outage": 60.0, "retry_delay": 0.5, "retry_max_delay": 8.0}


def _open_camera(device: int | str, options: dict[str, Any]) -> LiveSource:
    chosen = _take_options(options, {"width": None, "height": None, "fps": None, **_RECONNECT_DEFAULTS},
                           "a camera")
    label = f"camera {device}"

    def connect() -> CameraSession:
        return CameraSession(device, label, chosen["width"], chosen["height"], chosen["fps"])

    number = device if isinstance(device, int) else re.sub(r"\D", "", device)
    return LiveSource(connect, label=label, name=f"camera{number}", policy=_policy(chosen))


def _open_network(url: str, options: dict[str, Any]) -> Source:
    scheme = urlsplit(url).scheme.lower()
    name = safe_name(Path(urlsplit(url).path).stem or urlsplit(url).hostname or scheme)
    if scheme in ("http", "https") and Path(urlsplit(url).path).suffix.lower() in FILE_URL_SUFFIXES:
        chosen = _take_options(options, {"av_options": None, "timeout": 10.0}, "a video file URL")
        return VideoFileSource(url, name=name, av_options=chosen["av_options"], timeout=chosen["timeout"])
    chosen = _take_options(options, {"av_options": None, "open_timeout": 5.0, "read_timeout": 5.0,
                                     "rtsp_transport": "tcp", **_RECONNECT_DEFAULTS}, "a network stream")
    av_options = {**LIVE_AV_OPTIONS, **(chosen["av_options"] or {})}
    if scheme in ("rtsp", "rtsps"):
        av_options.setdefault("rtsp_transport", chosen["rtsp_transport"])

    def connect() -> NetworkSession:
        return NetworkSession(url, url, av_options, float(chosen["open_timeout"]), float(chosen["read_timeout"]))

    return LiveSource(connect, label=url, name=name, policy=_policy(chosen))


def _open_path(path: Path, text: str, options: dict[str, Any], hwaccel: HWAccel | None) -> Source:
    if path.is_dir():
        chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image folder")
        return ImageFolderSource(image_paths_in(path), label=text, name=path.resolve().name, fps=chosen["fps"],
                                 folders=(path,))
    if not path.exists():
        if any(char in text for char in "*?["):
            chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image glob")
            return ImageFolderSource(image_paths_matching(text), label=text,
                                     name=Path(text).parent.resolve().name, fps=chosen["fps"])
        raise SourceError(f"{text}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image")
        return ImageFolderSource([path], label=text, name=path.stem, fps=chosen["fps"])
    if path.stat().st_size == 0:
        raise SourceError(f"{text}: file is empty")
    chosen = _take_options(options, {"av_options": None}, "a video file")
    return VideoFileSource(str(path), name=safe_name(path.stem), av_options=chosen["av_options"],
                           hwaccel=hwaccel)


def open_source(spec: str | int | os.PathLike, **options: Any) -> Source:
    """Open a video file, camera, image folder/glob, network URL or synth:// scene.

    Spec forms: ``clip.mp4`` (any FFmpeg input), ``0`` / ``"0"`` / ``/dev/video0`` (camera),
    ``frames/`` or ``frames/*.png`` or ``one.png`` (images), ``rtsp://…`` ``rtmp://…``
    ``http(s)://…`` ``udp://…`` ``tcp://…`` ``srt://…`` (live stream; an http(s) URL ending in
    .mp4/.mkv/.mov/… is a file read offline), ``synth://pattern?frames=120&size=320x240&fps=25&seed=0&live=0``.

    Options by kind: files ``av_options`` (FFmpeg demuxer options); images ``fps`` (default 25);
    cameras ``width``, ``height``, ``fps``; network ``open_timeout``, ``read_timeout`` (seconds),
    ``rtsp_transport`` (default tcp), ``av_options``; cameras and network ``reconnect_attempts``,
    ``max_outage``, ``retry_delay`` (first backoff), ``retry_max_delay`` (backoff cap), all seconds.
    Every kind: ``live`` (True/False) overrides the drop policy, see the module docstring;
    ``hwaccel`` (a PyAV ``HWAccel``, see ``stream.hwcodecs.pick_decoder_accel``) decodes video
    files in hardware and is ignored by the other kinds.
    """
    live = options.pop("live", None)
    if live is not None and not isinstance(live, bool):
        raise SourceError(f"live must be True, False or None, got {live!r}")
    source = _open(spec, options, options.pop("hwaccel", None))
    if live is not None:
        source._use_live_policy(live)
    return source


def _open(spec: str | int | os.PathLike, options: dict[str, Any], hwaccel: HWAccel | None) -> Source:
    """Pick the kind of source from the spec's form."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int, os.PathLike)):
        raise SourceError(f"cannot open {spec!r}: expected a path, URL, camera index or synth:// spec")
    if isinstance(spec, int):
        if spec < 0:
            raise SourceError(f"camera {spec}: camera index must not be negative")
        return _open_camera(spec, options)
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise SourceError("empty source: give a file, folder, camera index, URL or synth:// spec")
    if text.isdigit():
        return _open_camera(int(text), options)
    if re.fullmatch(r"/dev/video\d+", text):
        return _open_camera(text, options)
    scheme = urlsplit(text).scheme.lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) else ""
    if scheme == "synth":
        _take_options(options, {}, "a synth:// source (put settings in the query string)")
        return SynthSource(text)
    if scheme in NETWORK_SCHEMES:
        return _open_network(text, options)
    if scheme == "file":
        return _open_path(Path(urlsplit(text).path), urlsplit(text).path, options, hwaccel)
    if scheme:
        raise SourceError(f"{text}: unsupported URL scheme {scheme!r}")
    return _open_path(Path(text), text, options, hwaccel)
