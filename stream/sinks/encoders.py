"""Per-encoder settings for video files: constant quality (CRF), speed preset, or a bitrate.

Every encoder runs without delay (no B-frames, no look-ahead): a frame's packet comes out of
the encoder with the frame, so a crash-safe recording (``stream.sinks.fragments``) holds every
frame encoded so far.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import av

from stream.errors import SinkError

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)
"""Speed presets by name, fastest first; every encoder takes these names."""
DEFAULT_PRESET = "veryfast"


@dataclass(frozen=True)
class _Encoder:
    """How one FFmpeg encoder spells quality, presets and profile."""

    codec: str
    quality: tuple[int, int, int]  # lowest, highest, default
    presets: tuple[str, ...] | None = None  # the encoder's own value per X264_PRESETS name
    default_preset: str = DEFAULT_PRESET
    nvenc: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    tag: str | None = None
    low_delay: dict[str, str] = field(default_factory=dict)  # options that drop the encoder's delay


_NVENC_PRESETS = ("p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p7", "p7")
_ZERO_LATENCY = {"tune": "zerolatency"}
_NVENC_ZERO_LATENCY = {"bf": "0", "delay": "0", "zerolatency": "1"}
SVT_LOW_DELAY = "pred-struct=1"
"""SVT-AV1's low-delay prediction structure; with a bitrate it needs constant bitrate (rc=2)."""
ENCODERS = {
    "libx264": _Encoder("h264", (0, 51, 20), extra={"profile": "high"}, low_delay=_ZERO_LATENCY),
    "libx265": _Encoder("hevc", (0, 51, 24), extra={"profile": "main", "x265-params": "log-level=error"},
                        tag="hvc1", low_delay=_ZERO_LATENCY),
    "libsvtav1": _Encoder("av1", (1, 63, 32), presets=("12", "11", "10", "9", "8", "6", "4", "3", "2", "1"),
                          low_delay={"svtav1-params": SVT_LOW_DELAY}),
    "h264_nvenc": _Encoder("h264", (0, 51, 20), _NVENC_PRESETS, "fast", True, {"profile": "high"},
                           low_delay=_NVENC_ZERO_LATENCY),
    "hevc_nvenc": _Encoder("hevc", (0, 51, 24), _NVENC_PRESETS, "fast", True, {"profile": "main"}, tag="hvc1",
                           low_delay=_NVENC_ZERO_LATENCY),
    "av1_nvenc": _Encoder("av1", (0, 51, 30), _NVENC_PRESETS, "fast", True, low_delay=_NVENC_ZERO_LATENCY),
}
"""Encoders densestream drives, by FFmpeg name (software first, then NVIDIA's)."""


@dataclass(frozen=True)
class EncoderSettings:
    """What a video stream is opened with: codec options, target bits per second, codec tag."""

    options: dict[str, str]
    bit_rate: int | None = None
    tag: str | None = None


def parse_bitrate(text: str | int) -> int:
    """Bits per second from ``4M``, ``800k`` or ``2500000``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
    if not match or float(match[1]) <= 0:
        raise SinkError(f"bitrate {text!r} is not a positive number of bits per second, e.g. 4M or 800k")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
    return round(float(match[1]) * factor)


def encoder_settings(encoder: str, crf: int | None = None, preset: str | None = None,
                     bitrate: str | int | None = None) -> EncoderSettings:
    """Validated settings for ``encoder``: constant quality ``crf`` (the encoder's default when
    None), or, when ``bitrate`` is given, that average rate instead; ``preset`` an x264 speed name,
    mapped onto the encoder's own scale (SVT-AV1 12..1, NVENC p1..p7)."""
    if encoder not in ENCODERS:
        raise SinkError(f"unsupported video encoder {encoder!r}: use one of {', '.join(ENCODERS)}")
    spec = ENCODERS[encoder]
    if encoder not in av.codecs_available:
        raise SinkError(f"this FFmpeg build has no {encoder} encoder, so it cannot write --codec {spec.codec}; "
                        "choose another codec (h264 always works with PyAV's wheels from PyPI)")
    low, high, default = spec.quality
    crf = default if crf is None else crf
    if isinstance(crf, bool) or not isinstance(crf, int) or not low <= crf <= high:
        raise SinkError(f"quality (crf) for {encoder} must be an integer from {low} (best) to {high} (worst), "
                        f"got {crf!r}")
    preset = spec.default_preset if preset is None else preset
    if preset not in X264_PRESETS:
        raise SinkError(f"unknown preset {preset!r}: use one of {', '.join(X264_PRESETS)}")
    if encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr unless told errors only
    options = {**spec.extra, **spec.low_delay}
    options["preset"] = spec.presets[X264_PRESETS.index(preset)] if spec.presets else preset
    rate = None if bitrate is None else parse_bitrate(bitrate)
    if spec.nvenc:
        options["rc"] = "vbr"
        if rate is None:
            options["cq"] = str(crf)
    elif rate is None:
        options["crf"] = str(crf)
    elif encoder == "libsvtav1":
        options["svtav1-params"] = f"{SVT_LOW_DELAY}:rc=2"
    return EncoderSettings(options, rate, spec.tag)
