"""Exact 7-bit fixed-point blending of uint8 images (weights 0..128 in int16), the same on every device."""
from __future__ import annotations

import torch

ONE = 128
_SHIFT = 7


def check_images(images: torch.Tensor, name: str = "image") -> tuple[int, int, int]:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"{name} must be a uint8 tensor, got {getattr(images, 'dtype', type(images))}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be N x 3 x H x W, got shape {tuple(images.shape)}")
    return images.shape[0], images.shape[2], images.shape[3]


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gather rows of a K x 4 RGBA table by an N x H x W index: returns planar N x 4 x H x W.

    One gather per channel keeps every plane contiguous, so the blends that follow vectorise.
    """
    flat = index.reshape(-1)
    planes = torch.empty((4, flat.numel()), dtype=table.dtype, device=table.device)
    for channel in range(4):
        torch.index_select(table[:, channel], 0, flat, out=planes[channel])
    return planes.reshape(4, *index.shape).permute(1, 0, 2, 3)


def mix(base: torch.Tensor, top: torch.Tensor, weight: torch.Tensor | int) -> torch.Tensor:
    """(base * (128 - w) + top * w) / 128 rounded half up, as base + ((top - base) * w + 64) >> 7
    in int16 (weights 0..128; the arithmetic shift floors negative values as required)."""
    if isinstance(weight, torch.Tensor):
        weight = weight.to(torch.int16)
    low = base.to(torch.int16)
    mixed = (top.to(torch.int16) - low).mul_(weight).add_(ONE // 2).bitwise_right_shift_(_SHIFT)
    return mixed.add_(low).to(torch.uint8)


def paint_where(image: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """``colour`` where the 0/1 uint8 ``mask`` is 1, else ``image``: (colour - image) * mask +
    image in wrapping uint8 arithmetic, which is exact and much faster than ``torch.where``."""
    return (colour - image).mul_(mask).add_(image)


def blend(
    image: torch.Tensor, colour: torch.Tensor, alpha: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``image * (1 - alpha) + colour * alpha`` (uint8, rounded half up); pixels where the
    N x H x W ``mask`` is False keep the image. Alpha is quantised to 1/128."""
    check_images(image)
    if colour.dtype != torch.uint8 or colour.shape != image.shape:
        raise ValueError(
            f"colour must be uint8 with the image's shape {tuple(image.shape)}, got {colour.dtype} {tuple(colour.shape)}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    mixed = mix(image, colour, round(alpha * ONE))
    if mask is None:
        return mixed
    if mask.dtype != torch.bool or mask.shape != (image.shape[0], *image.shape[2:]):
        raise ValueError(f"mask must be a bool N x H x W tensor matching the image, got {mask.dtype} {tuple(mask.shape)}")
    return paint_where(image, mask.unsqueeze(1).to(torch.uint8), mixed)
