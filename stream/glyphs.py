"""Host-side text rasterisation with OpenCV: legend, depth scale bar, score digits and the HUD.

Everything here runs on numpy arrays. The overlay renderer calls the patch builders once per
panel size and uploads the result; only :func:`draw_hud` runs per frame (in the sink thread).
Patches are returned as ``(rgb, alpha)``: ``rgb`` H x W x 3 uint8, ``alpha`` H x W uint8 (255 =
opaque).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
DIGIT_CHARS = "0123456789."
BACKDROP_ALPHA = 150
TEXT_COLOUR = (255, 255, 255)


def font_scale(height: int) -> float:
    """Font scale that keeps text readable on a panel ``height`` pixels tall (480p to 1080p+)."""
    return float(np.clip(height / 1000.0, 0.35, 1.6))


def font_thickness(scale: float) -> int:
    """Stroke thickness that matches ``scale``."""
    return max(1, round(scale * 1.6))


def text_box(text: str, scale: float) -> tuple[int, int, int]:
    """(width, ascent, descent) in pixels of ``text`` at ``scale``."""
    (width, ascent), baseline = cv2.getTextSize(text, FONT, scale, font_thickness(scale))
    return width, ascent, baseline


def _put(canvas: np.ndarray, text: str, x: int, y: int, scale: float, colour) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, colour, font_thickness(scale), cv2.LINE_AA)


def render_legend_rows(
    names: Sequence[str], colours: np.ndarray, panel_height: int
) -> tuple[np.ndarray, np.ndarray]:
    """One legend entry per class, all of one size, for the renderer to stack on the device.

    Entry ``i`` is a colour swatch and ``names[i]`` on a translucent dark backdrop with a margin
    all round, so entries stacked edge to edge read as one legend. Returns ``rgb`` C x h x w x 3
    and ``alpha`` C x h x w.
    """
    if len(names) != len(colours):
        raise ValueError(f"legend needs one colour per class: {len(names)} names, {len(colours)} colours")
    scale = font_scale(panel_height)
    _, ascent, descent = text_box("Ag", scale)
    pad = max(2, ascent // 3)
    swatch = ascent + descent
    height = swatch + pad
    width = pad + swatch + pad + max(text_box(name, scale)[0] for name in names) + pad
    rgb = np.zeros((len(names), height, width, 3), np.uint8)
    alpha = np.full((len(names), height, width), BACKDROP_ALPHA, np.uint8)
    top = pad // 2
    for i, name in enumerate(names):
        rgb[i, top : top + swatch, pad : pad + swatch] = colours[i]
        alpha[i, top : top + swatch, pad : pad + swatch] = 255
        _put(rgb[i], name, 2 * pad + swatch, top + ascent, scale, TEXT_COLOUR)
    alpha[rgb.max(axis=3) > 0] = 255
    return rgb, alpha


def render_scale_bar(
    bar_colours: np.ndarray, ticks: Sequence[tuple[int, str]], panel_height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical colour bar (``bar_colours`` rows top to bottom) with tick labels on its left.

    ``ticks`` are (row within the bar, label), most important first; a label too close to one
    already placed is dropped, so the caller may offer more ticks than fit.
    """
    scale = font_scale(panel_height)
    _, ascent, descent = text_box("0", scale)
    pad = max(2, ascent // 3)
    bar_h, bar_w = len(bar_colours), max(6, panel_height // 40)
    label_w = max((text_box(label, scale)[0] for _, label in ticks), default=0)
    tick_len = max(3, bar_w // 2)
    top = ascent // 2 + pad
    height = bar_h + 2 * top
    width = pad + label_w + pad + tick_len + bar_w + pad
    rgb = np.zeros((height, width, 3), np.uint8)
    alpha = np.full((height, width), BACKDROP_ALPHA, np.uint8)
    bar_x = width - pad - bar_w
    rgb[top : top + bar_h, bar_x : bar_x + bar_w] = bar_colours[:, None, :]
    alpha[top : top + bar_h, bar_x : bar_x + bar_w] = 255
    placed: list[int] = []
    for row, label in ticks:
        y = top + row
        if any(abs(y - other) < 2 * ascent for other in placed):
            continue
        placed.append(y)
        rgb[y, bar_x - tick_len : bar_x] = TEXT_COLOUR
        alpha[y, bar_x - tick_len : bar_x] = 255
        text_w = text_box(label, scale)[0]
        text_y = int(np.clip(y + ascent // 2, ascent, height - 1))
        _put(rgb, label, bar_x - tick_len - pad - text_w, text_y, scale, TEXT_COLOUR)
    alpha[rgb.max(axis=2) > 0] = 255
    return rgb, alpha


def render_digits(panel_height: int) -> np.ndarray:
    """Coverage atlas (11 x gh x gw uint8) of the glyphs ``0``-``9`` and ``.``, one fixed cell each."""
    scale = font_scale(panel_height) * 0.8
    cell_w = max(text_box(c, scale)[0] for c in DIGIT_CHARS)
    _, ascent, descent = text_box("0", scale)
    atlas = np.zeros((len(DIGIT_CHARS), ascent + descent, cell_w), np.uint8)
    for i, char in enumerate(DIGIT_CHARS):
        x = (cell_w - text_box(char, scale)[0]) // 2
        _put(atlas[i], char, x, ascent, scale, 255)
    return atlas


def draw_hud(image: np.ndarray, text: str) -> None:
    """Draw one line of status ``text`` in place on a dark translucent band at the bottom of ``image``.

    ``image`` is H x W x 3 uint8 (the sink's frame); the font scales with the height and shrinks
    further if the line would not fit the width. The bottom keeps the band clear of the legend,
    which the overlay puts in the top-left corner.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("draw_hud needs an H x W x 3 uint8 numpy image")
    if not image.flags.writeable or not image.flags.c_contiguous:
        raise ValueError("draw_hud draws in place and needs a writeable C-contiguous image")
    if "\n" in text:
        raise ValueError("draw_hud draws one line; the text contains a newline")
    height, width = image.shape[:2]
    scale = max(0.45, height / 900.0)
    pad = max(3, round(6 * scale))
    text_w = text_box(text, scale)[0]
    if text_w > width - 2 * pad:
        scale *= (width - 2 * pad) / text_w
    _, ascent, descent = text_box(text, scale)
    band_h = min(height, ascent + descent + 2 * pad)
    band = image[height - band_h :]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)
    _put(image, text, pad, height - band_h + pad + ascent, scale, TEXT_COLOUR)
