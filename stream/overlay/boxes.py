"""Tracking boxes and their score digits drawn into the frames."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from stream.glyphs import render_digits

from .mixing import ONE, check_images, mix, paint_where

BOX_COLOUR = (64, 255, 64)
LOST_COLOUR = (255, 96, 64)


def _box_edges(boxes: torch.Tensor, height: int, width: int, margin: int) -> tuple[torch.Tensor, ...]:
    """Inclusive integer edges (x0, y0, x1, y1), each of shape N, clamped just outside the frame
    so that edges off-screen stay off-screen; non-finite boxes become empty (x1 < x0)."""
    finite = torch.isfinite(boxes).all(dim=1)
    x, y, w, h = boxes.unbind(dim=1)
    corners = (x.round(), y.round(), (x + w).round() - 1, (y + h).round() - 1)
    blanks = (1.0, 1.0, 0.0, 0.0)
    limits = (width, height, width, height)
    return tuple(
        torch.where(finite, edge, blank).clamp(-margin - 1, limit + margin).long()
        for edge, blank, limit in zip(corners, blanks, limits)
    )


Colours = torch.Tensor | Sequence[int]


def _colour_rows(colours: Colours, count: int, device: torch.device) -> torch.Tensor:
    table = torch.as_tensor(colours, dtype=torch.uint8, device=device).reshape(-1, 3)
    if len(table) not in (1, count):
        raise ValueError(f"colours must be one RGB triple or one per frame ({count}), got {len(table)}")
    return table.expand(count, 3)


def check_boxes(boxes: torch.Tensor, count: int) -> None:
    if not boxes.dtype.is_floating_point or boxes.shape != (count, 4):
        raise ValueError(f"boxes must be a float N x 4 (x, y, w, h) tensor with N={count}, got {boxes.dtype} {tuple(boxes.shape)}")


def draw_boxes(
    image: torch.Tensor,
    boxes: torch.Tensor,
    colours: Colours = BOX_COLOUR,
    thickness: int = 2,
    lost: torch.Tensor | None = None,
    lost_colour: Colours = LOST_COLOUR,
) -> torch.Tensor:
    """Draw one box outline per frame (drawn inside the box, ``thickness`` pixels wide).

    ``colours`` (and ``lost_colour``) are one RGB triple or an N x 3 uint8 tensor.
    Frames whose ``lost`` flag is set get a dashed outline in ``lost_colour``. Boxes partly
    outside the frame are clipped; boxes fully outside, empty or non-finite draw nothing.
    """
    count, height, width = check_images(image)
    check_boxes(boxes, count)
    if thickness < 1:
        raise ValueError(f"box thickness must be >= 1, got {thickness}")
    x0, y0, x1, y1 = (edge[:, None] for edge in _box_edges(boxes, height, width, thickness))
    ys = torch.arange(height, device=image.device, dtype=torch.int32)
    xs = torch.arange(width, device=image.device, dtype=torch.int32)
    outer = ((ys >= y0) & (ys <= y1)).to(torch.uint8)[:, :, None] * ((xs >= x0) & (xs <= x1))[:, None, :]
    rows_in = (ys >= y0 + thickness) & (ys <= y1 - thickness)
    inner = rows_in.to(torch.uint8)[:, :, None] * ((xs >= x0 + thickness) & (xs <= x1 - thickness))[:, None, :]
    ring = outer - inner  # 0/1: the inner rectangle lies within the outer one
    paint = _colour_rows(colours, count, image.device)
    if lost is not None:
        if lost.dtype != torch.bool or lost.shape != (count,):
            raise ValueError(f"lost must be a bool tensor of shape ({count},), got {lost.dtype} {tuple(lost.shape)}")
        dash = 3 * thickness + 2
        gaps = (((ys[:, None] + xs[None, :]) // dash) % 2).to(torch.uint8)
        ring = ring * (1 - lost.to(torch.uint8)[:, None, None] * gaps)
        paint = torch.where(lost[:, None], _colour_rows(lost_colour, count, image.device), paint)
    return paint_where(image, ring.unsqueeze(1), paint[:, :, None, None])


def digit_atlas(panel_height: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Glyph weights (11 x gh x gw, int16 0..128) for ``0``-``9`` and ``.``, sized for a panel."""
    coverage = torch.from_numpy(render_digits(panel_height)).to(torch.int16)
    return ((coverage * ONE + 127) // 255).to(device)


def draw_scores(
    image: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, atlas: torch.Tensor, colours: Colours = BOX_COLOUR
) -> torch.Tensor:
    """Write each frame's score as ``d.dd`` on a dark tag above its box's top-left corner.

    The digits are looked up on the device from ``atlas`` (see :func:`digit_atlas`), so no score
    ever travels to the host. Frames with a non-finite score or an off-screen box get no tag;
    frames too small to hold a tag are returned unchanged. ``colours``: one RGB or one per frame.
    """
    count, height, width = check_images(image)
    check_boxes(boxes, count)
    if not scores.dtype.is_floating_point or scores.shape != (count,):
        raise ValueError(f"scores must be a float tensor of shape ({count},), got {scores.dtype} {tuple(scores.shape)}")
    glyph_h, glyph_w = atlas.shape[1:]
    pad = max(1, glyph_h // 5)
    tag_h, tag_w = glyph_h + 2 * pad, 4 * glyph_w + 2 * pad
    if tag_h > height or tag_w > width:
        return image
    x0, y0, x1, y1 = _box_edges(boxes, height, width, 1)
    visible = (x1 >= x0.clamp_min(0)) & (y1 >= y0.clamp_min(0)) & (x0 < width) & (y0 < height)
    show = visible & torch.isfinite(scores)
    hundredths = (scores.nan_to_num(0.0).clamp(0.0, 1.0) * 100).round().long()
    dot = torch.full_like(hundredths, 10)
    chars = torch.stack([hundredths // 100, dot, (hundredths // 10) % 10, hundredths % 10], dim=1)
    text = atlas[chars].permute(0, 2, 1, 3).reshape(count, glyph_h, 4 * glyph_w)
    text = F.pad(text, (pad, pad, pad, pad))
    left = x0.clamp(0, width - tag_w)
    top = (y0 - tag_h).clamp(0, height - tag_h)
    rows = (top[:, None] + torch.arange(tag_h, device=image.device))[:, :, None]
    cols = (left[:, None] + torch.arange(tag_w, device=image.device))[:, None, :]
    frames = torch.arange(count, device=image.device)[:, None, None]
    region = image[frames, :, rows, cols]
    backdrop = mix(region, torch.zeros_like(region), ONE * 3 // 4)
    paint = _colour_rows(colours, count, image.device)[:, None, None, :].expand_as(region)
    tagged = mix(backdrop, paint, text.unsqueeze(-1))
    out = image.clone()
    out[frames, :, rows, cols] = torch.where(show[:, None, None, None], tagged, region)
    return out
