"""Depth in metres drawn with a turbo-like colour map (warm near, cool far; no measurement black)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from .mixing import lookup

OPENCV_MAPS = {"viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA, "inferno": cv2.COLORMAP_INFERNO,
               "plasma": cv2.COLORMAP_PLASMA}
DEPTH_CMAPS = ("turbo", *OPENCV_MAPS, "gray")
"""Depth colour maps; in each, far is the low end (cool or dark) and near the high end."""


def depth_lut(device: torch.device | str = "cpu", name: str = "turbo") -> torch.Tensor:
    """256 x 3 uint8 colour map ``name`` (see ``DEPTH_CMAPS``), index 255 drawn for the nearest
    depth: 'turbo' (our own, below), OpenCV's perceptually uniform 'viridis', 'magma', 'inferno'
    and 'plasma' (dark far, bright near), or 'gray' (black far, white near)."""
    if name == "turbo":
        return turbo_lut(device)
    ramp = np.arange(256, dtype=np.uint8)
    if name == "gray":
        return torch.from_numpy(np.repeat(ramp[:, None], 3, axis=1)).to(device)
    if name not in OPENCV_MAPS:
        raise ValueError(f"unknown depth colour map {name!r} (choose from {', '.join(DEPTH_CMAPS)})")
    bgr = cv2.applyColorMap(ramp[:, None], OPENCV_MAPS[name])[:, 0]
    return torch.from_numpy(np.ascontiguousarray(bgr[:, ::-1])).to(device)


def turbo_lut(device: torch.device | str = "cpu") -> torch.Tensor:
    """Turbo-like 256 x 3 uint8 colour map: index 0 dark blue (cool) .. 255 dark red (warm).

    Each channel is a Gaussian bump of equal width (blue, green, red centred at 0.18, 0.5,
    0.82), so the channel ratios, and hence the hue, change monotonically along the map; a
    shared brightness profile then darkens both ends and keeps the middle bright.
    """
    t = torch.linspace(0.0, 1.0, 256, dtype=torch.float64)
    centres = torch.tensor([0.82, 0.5, 0.18], dtype=torch.float64)
    bumps = torch.exp(-(((t[:, None] - centres) / 0.25) ** 2))
    floor = 0.25 + 0.25 * t
    brightness = floor + (1.0 - floor) * torch.sin(math.pi * t) ** 0.5
    rgb = bumps / bumps.amax(dim=1, keepdim=True) * brightness[:, None]
    return (rgb * 255).round().to(torch.uint8).to(device)


def check_depth_range(near: float, far: float, log: bool) -> None:
    if not (math.isfinite(near) and math.isfinite(far) and far > near):
        raise ValueError(f"depth range must satisfy near < far (finite), got near={near}, far={far}")
    if log and near <= 0:
        raise ValueError(f"a logarithmic depth range needs near > 0, got near={near}")


def depth_fraction(depth: torch.Tensor, near: float, far: float, log: bool) -> torch.Tensor:
    """Position of each depth in [0 (near), 1 (far)], clipped to the range."""
    d = depth.float().clamp(near, far)
    if log:
        return (torch.log(d) - math.log(near)) / (math.log(far) - math.log(near))
    return (d - near) / (far - near)


def depth_valid(depth: torch.Tensor) -> torch.Tensor:
    """True where depth is a measurement (finite and positive; NaN fails both tests)."""
    return (depth > 0) & (depth < math.inf)


def depth_rgba(
    depth: torch.Tensor, near: float, far: float, log: bool, lut: torch.Tensor, weight: int, dtype: torch.dtype
) -> torch.Tensor:
    """N x 4 x H x W ``dtype``: colour-map entry and blend ``weight`` per pixel; invalid depth is
    black with weight 0."""
    check_depth_range(near, far, log)
    if depth.dim() != 3 or not depth.dtype.is_floating_point:
        raise ValueError(f"depth must be an N x H x W float tensor, got {depth.dtype} {tuple(depth.shape)}")
    if lut.device != depth.device:
        raise ValueError(f"depth is on {depth.device} but the colour map is on {lut.device}")
    table = torch.cat([torch.cat([lut, lut.new_full((256, 1), weight)], dim=1), lut.new_zeros(1, 4)]).to(dtype)
    index = ((1.0 - depth_fraction(depth, near, far, log)) * 255).round()
    index = torch.where(depth_valid(depth), index, 256.0).int()
    return lookup(table, index)


def colorize_depth(
    depth: torch.Tensor, near: float, far: float, log: bool = True, lut: torch.Tensor | None = None
) -> torch.Tensor:
    """Map N x H x W depth in metres to N x 3 x H x W uint8: near (and closer) red, far (and
    beyond) blue, log-spaced by default; invalid depth is black."""
    table = depth_lut(depth.device) if lut is None else lut
    return depth_rgba(depth, near, far, log, table, 0, torch.uint8)[:, :3]
