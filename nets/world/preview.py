"""Side-by-side picture of a frame (RGB, colour-mapped depth, CamVid-coloured labels) and contact
sheets of several."""

from __future__ import annotations

import cv2
import numpy as np

from .labels import CLASS_COLOURS
from .render import SKY_DEPTH
from .world import WorldFrame

_DEPTH_STOPS = np.array([
    (252, 253, 191), (252, 137, 97), (183, 55, 121), (81, 18, 124), (0, 0, 4),
], dtype=np.float64)


def colour_depth(depth: np.ndarray, near: float = 1.0, far: float = 200.0) -> np.ndarray:
    """Map depth (metres) to RGB uint8 on a log scale: near is bright, far dark, sky black."""
    span = np.log(far / near)
    x = np.clip(np.log(np.clip(depth, near, far) / near) / span, 0.0, 1.0) * (len(_DEPTH_STOPS) - 1)
    i = np.minimum(x.astype(np.int64), len(_DEPTH_STOPS) - 2)
    f = (x - i)[..., None]
    rgb = _DEPTH_STOPS[i] * (1 - f) + _DEPTH_STOPS[i + 1] * f
    rgb[depth >= SKY_DEPTH] = 0
    return rgb.astype(np.uint8)


def colour_labels(labels: np.ndarray) -> np.ndarray:
    """CamVid palette colours for a label map."""
    return np.asarray(CLASS_COLOURS, dtype=np.uint8)[labels]


def draw_boxes(rgb: np.ndarray, frame: WorldFrame) -> np.ndarray:
    """A copy of ``rgb`` with each agent's box outlined in its class colour."""
    out = rgb.copy()
    for b in frame.boxes:
        colour = np.asarray(CLASS_COLOURS[b.cls], dtype=np.uint8)
        x1, y1 = b.x + b.w - 1, b.y + b.h - 1
        out[b.y, b.x:x1 + 1] = colour
        out[y1, b.x:x1 + 1] = colour
        out[b.y:y1 + 1, b.x] = colour
        out[b.y:y1 + 1, x1] = colour
    return out


def panel(frame: WorldFrame, boxes: bool = False) -> np.ndarray:
    """RGB | depth | labels, side by side (H x 3W x 3 uint8)."""
    rgb = draw_boxes(frame.rgb, frame) if boxes else frame.rgb
    return np.concatenate([rgb, colour_depth(frame.depth), colour_labels(frame.labels)], axis=1)


def caption(picture: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``picture`` with ``text`` written small in its top-left corner, white on black."""
    out = np.ascontiguousarray(picture).copy()
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, thickness, cv2.LINE_AA)
    return out


def sheet(pictures: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Equal-width pictures stacked top to bottom with ``gap`` black rows between them."""
    spacer = np.zeros((gap, pictures[0].shape[1], 3), dtype=np.uint8)
    rows = [part for p in pictures for part in (spacer, p)][1:]
    return np.concatenate(rows, axis=0)
