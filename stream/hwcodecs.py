"""NVIDIA hardware video decode (NVDEC) and encode (NVENC) through PyAV's FFmpeg.

Each falls back to software (FFmpeg's decoders, libx264) with a one-line warning when the
FFmpeg build, the driver or the GPU cannot do it, so a run never fails for want of them.
``auto`` uses them when the run's device is CUDA, ``on`` asks for them on any device (and
warns when they are missing), ``off`` never uses them.
"""

from __future__ import annotations

import functools
import warnings
from fractions import Fraction

import av
import torch
from av.codec.hwaccel import HWAccel, hwdevices_available

from .errors import DenseStreamError, describe_error

__all__ = ["CODECS", "HW_CHOICES", "NVENC", "SOFTWARE_ENCODER", "wants_hardware", "nvenc_unavailable",
           "pick_encoder", "pick_decoder_accel"]

HW_CHOICES = ("auto", "on", "off")
NVENC = "h264_nvenc"
SOFTWARE_ENCODER = "libx264"
ENCODERS = {"h264": (SOFTWARE_ENCODER, NVENC), "hevc": ("libx265", "hevc_nvenc"), "av1": ("libsvtav1", "av1_nvenc")}
"""Per ``--codec``: the software encoder and NVIDIA's."""
CODECS = tuple(ENCODERS)


def wants_hardware(choice: str, device: torch.device) -> bool:
    """Whether ``choice`` ('auto', 'on', 'off') asks for hardware codecs on ``device``."""
    if choice not in HW_CHOICES:
        raise DenseStreamError(f"unknown hardware codec choice {choice!r} (choose from {', '.join(HW_CHOICES)})")
    return choice == "on" or (choice == "auto" and device.type == "cuda")


@functools.cache
def nvenc_unavailable(encoder: str = NVENC) -> str | None:
    """Why the NVENC ``encoder`` cannot encode here, or None when a small test encoder opens."""
    if encoder not in av.codecs_available:
        return f"this FFmpeg build has no {encoder} encoder"
    try:
        context = av.CodecContext.create(encoder, "w")
        context.width, context.height = 256, 144
        context.pix_fmt = "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
    except (av.FFmpegError, OSError, ValueError) as error:
        return f"{encoder} does not open: {describe_error(error)}"
    return None


def pick_encoder(choice: str, device: torch.device, codec: str = "h264") -> str:
    """The encoder for ``codec`` (see ``CODECS``) in a run: NVENC when asked for and working, else
    the software one (with a warning when NVENC was asked for but does not work)."""
    if codec not in ENCODERS:
        raise DenseStreamError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")
    software, hardware = ENCODERS[codec]
    if not wants_hardware(choice, device):
        return software
    reason = nvenc_unavailable(hardware)
    if reason:
        warnings.warn(f"hardware encode (NVENC) unavailable: {reason}; encoding with {software}")
        return software
    return hardware


def pick_decoder_accel(choice: str, device: torch.device) -> HWAccel | None:
    """CUDA decode acceleration (NVDEC) for video files when asked for and built in, else None
    (with a warning when it was asked for). Frames still arrive in host memory; a stream the
    hardware cannot decode falls back to software inside FFmpeg."""
    if not wants_hardware(choice, device):
        return None
    if "cuda" not in hwdevices_available():
        warnings.warn("hardware decode (NVDEC) unavailable: this FFmpeg build has no CUDA device type; "
                      "decoding in software")
        return None
    return HWAccel(device_type="cuda", allow_software_fallback=True)
