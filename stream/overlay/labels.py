"""Class palettes and label maps drawn as colours."""
from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import torch

from .mixing import lookup

CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
CAMVID_COLOURS = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)

CONTRAST_COLOURS = (
    (0, 255, 238), (102, 17, 0), (255, 0, 85), (255, 0, 255), (0, 17, 255), (0, 255, 0),
    (255, 119, 0), (255, 153, 221), (255, 255, 34), (255, 238, 187), (34, 0, 102),
)
"""High-contrast colours for the CamVid classes (same order): picked by a greedy farthest-point
search over an RGB grid for the largest smallest CIELAB distance between any two classes, and
between each class and the background, after blending at opacity 0.5 over grey road, blue sky,
green foliage and dark shadow (see ``tests/test_palette.py``); then assigned by meaning (sky
cyan, tree green, road magenta, car yellow, far from road)."""

PALETTES = ("contrast", "camvid")


def camvid_palette(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 11-class CamVid palette as an 11 x 3 uint8 tensor."""
    return torch.tensor(CAMVID_COLOURS, dtype=torch.uint8, device=device)


def distinct_palette(count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` visually distinct colours (count x 3 uint8), deterministic for a given count.

    Hues step by the golden angle so neighbouring ids differ strongly; saturation and value
    cycle through three levels so large class counts stay distinguishable.
    """
    if count < 1:
        raise ValueError(f"a palette needs at least one class, got {count}")
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    colours = []
    for i in range(count):
        hue = (0.03 + i * golden) % 1.0
        saturation = (0.9, 0.65, 0.8)[i % 3]
        value = (0.95, 0.8, 0.6)[(i // 3) % 3]
        colours.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)])
    return torch.tensor(colours, dtype=torch.uint8, device=device)


def named_palette(name: str, classes: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """The palette ``name`` ('contrast' or 'camvid') for ``classes``: 'contrast' is
    ``CONTRAST_COLOURS`` for the CamVid classes and ``distinct_palette`` for any other list;
    'camvid' exists only for the CamVid classes."""
    is_camvid = [c.lower() for c in classes] == [c.lower() for c in CAMVID_CLASSES]
    if name == "camvid":
        if not is_camvid:
            raise ValueError(f"the camvid palette is for the 11 CamVid classes; this model has {len(classes)} "
                             "other classes (use --palette contrast)")
        return camvid_palette(device)
    if name != "contrast":
        raise ValueError(f"unknown palette {name!r} (choose from {', '.join(PALETTES)})")
    if is_camvid:
        return torch.tensor(CONTRAST_COLOURS, dtype=torch.uint8, device=device)
    return distinct_palette(len(classes), device)


def class_ids(selection: str | Sequence[str | int], classes: Sequence[str]) -> list[int]:
    """Class ids for a selection of names (any case) or ids, e.g. 'Road,car,8'; sorted, unique."""
    items = selection.split(",") if isinstance(selection, str) else list(selection)
    lowered = [c.lower() for c in classes]
    ids = set()
    for item in items:
        text = str(item).strip()
        if text.lower() in lowered:
            ids.add(lowered.index(text.lower()))
        elif text.isdigit() and int(text) < len(classes):
            ids.add(int(text))
        else:
            raise ValueError(f"unknown class {text!r}: use names or ids 0-{len(classes) - 1} of "
                             f"{', '.join(classes)}")
    if not ids:
        raise ValueError("no classes selected")
    return sorted(ids)


def check_palette(palette: torch.Tensor) -> None:
    if palette.dtype != torch.uint8 or palette.dim() != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise ValueError(f"palette must be a C x 3 uint8 tensor, got {palette.dtype} {tuple(palette.shape)}")


def label_mask(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """True where a label is a real class id (0 <= id < num_classes); void/ignore ids are False."""
    return (labels >= 0) & (labels < num_classes)


def label_rgba(labels: torch.Tensor, palette: torch.Tensor, weight: int | torch.Tensor,
               dtype: torch.dtype) -> torch.Tensor:
    """N x 4 x H x W ``dtype``: palette colour and blend ``weight`` per class id (one weight, or
    one per class); void ids get weight 0.

    Blending asks for int16 so the gathered planes need no further conversion."""
    check_palette(palette)
    if labels.dim() != 3 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an N x H x W integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    if palette.device != labels.device:
        raise ValueError(f"labels are on {labels.device} but the palette is on {palette.device}")
    count = len(palette)
    weights = torch.as_tensor(weight, device=palette.device).to(torch.uint8).expand(count).reshape(count, 1)
    rgba = torch.cat([palette, weights], dim=1).to(dtype)
    void = rgba.new_zeros(1, 4)
    if labels.dtype == torch.uint8:
        table = torch.cat([rgba, void.expand(max(0, 256 - count), 4)])[:256]
        return lookup(table, labels.int())
    table = torch.cat([void, rgba, void])
    return lookup(table, (labels.clamp(-1, count) + 1).int())


def colorize_labels(labels: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Map N x H x W class ids to N x 3 x H x W uint8 colours; void ids (255, >= C, < 0) become black."""
    return label_rgba(labels, palette, 0, torch.uint8)[:, :3]
