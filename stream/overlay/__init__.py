"""Device-side rendering: palettes, blending, depth colour maps, boxes, legend and layouts.

Every per-frame operation is a batched torch op on the frames' own device (CUDA or CPU); text
(legend names, scale-bar labels, score digits) is rasterised once per panel size on the host by
:mod:`stream.glyphs`, uploaded, and only composited per frame. Blending uses 7-bit fixed point
(weights 0..128 in int16), so results are exact and identical on every device.

Conventions: images are N x 3 x H x W uint8 RGB in any memory format; boxes are (x, y, w, h) in
pixels and cover columns x .. x+w-1 and rows y .. y+h-1 after rounding; depth is in metres and
the colour map runs from warm (red, near) to cool (blue, far); non-finite or non-positive depth
means "no measurement" and is drawn black (full map) or left untouched (blended).
"""
from stream.glyphs import draw_hud

from .autorange import AutoDepthRange
from .boxes import digit_atlas, draw_boxes, draw_scores
from .depth import DEPTH_CMAPS, colorize_depth, depth_lut, depth_valid
from .labels import (CAMVID_CLASSES, CAMVID_COLOURS, CONTRAST_COLOURS, PALETTES, camvid_palette, class_ids,
                     colorize_labels, distinct_palette, label_mask, named_palette)
from .mixing import blend
from .renderer import LAYOUTS, LEGENDS, OverlayRenderer

__all__ = [
    "AutoDepthRange",
    "CAMVID_CLASSES",
    "CAMVID_COLOURS",
    "CONTRAST_COLOURS",
    "DEPTH_CMAPS",
    "LAYOUTS",
    "LEGENDS",
    "OverlayRenderer",
    "PALETTES",
    "blend",
    "camvid_palette",
    "class_ids",
    "colorize_depth",
    "colorize_labels",
    "depth_lut",
    "depth_valid",
    "digit_atlas",
    "distinct_palette",
    "draw_boxes",
    "draw_hud",
    "draw_scores",
    "label_mask",
    "named_palette",
]
