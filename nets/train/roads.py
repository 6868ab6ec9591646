"""Checks of segmentation on real roads outside CamVid: coarse-group mIoU on held-out IDD-lite
sequences (with where the sky goes), and the share of a fixed sky region of the real dash-cam
clip that the model labels Sky, and of its hand-marked cars that the model labels Car."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nets.train.evaluate import Normaliser, predict_at
from nets.train.idd import GROUP_SKY, IDD_GROUPS, IddLiteSplit, group_of_class
from nets.train.metrics import ConfusionMatrix
from nets.zoo import CAMVID_CLASSES

__all__ = ["CLIP_SKY_REGION", "CLIP_CARS", "infer_size", "evaluate_idd_groups", "clip_sky_share", "clip_car_share", "car_centre"]

CLIP_SKY_REGION = (150, 10, 480, 150)
"""(x, y, w, h) in the 960x540 dash-cam clip: open blue sky in all 221 frames (left of the
billboard and the roadside trees, above the hills)."""

CLIP_CARS = {
    0: ((293, 299, 328, 323), (357, 303, 388, 322), (405, 299, 437, 319), (0, 290, 38, 355)),
    30: ((0, 288, 113, 350), (307, 300, 338, 322), (363, 303, 390, 321), (411, 300, 440, 321)),
    60: ((72, 288, 165, 345), (318, 301, 347, 323), (365, 304, 392, 323), (405, 302, 440, 323)),
    90: ((135, 297, 212, 342), (331, 303, 358, 322), (377, 305, 402, 322), (412, 302, 440, 323), (0, 292, 60, 352)),
    120: ((0, 297, 145, 350), (187, 297, 250, 335), (345, 304, 370, 322), (385, 306, 410, 322),
          (415, 302, 445, 323)),
    150: ((82, 300, 203, 350), (229, 300, 281, 332), (352, 305, 375, 323), (393, 308, 415, 321),
          (421, 303, 448, 323), (0, 298, 75, 350)),
    180: ((30, 303, 145, 352), (140, 304, 245, 352), (253, 302, 302, 332), (362, 305, 382, 322)),
    210: ((95, 305, 185, 348), (188, 305, 270, 350), (274, 303, 317, 327), (373, 306, 393, 322),
          (407, 308, 425, 322), (423, 303, 450, 323)),
}
"""Frame index -> boxes (x0, y0, x1, y1) in the 960x540 dash-cam clip, marked by hand: every car
ahead at least 18 pixels wide in 8 frames spread over the clip (the lanes to the left and ahead,
including cars cut by the frame's left edge)."""

SKY = CAMVID_CLASSES.index("Sky")
CAR = CAMVID_CLASSES.index("Car")


def infer_size(width: int, height: int, trained_rows: int) -> tuple[int, int]:
    """The size the product's ``--infer-size auto`` runs a frame at: shrunk to ``trained_rows``
    rows when taller, the aspect kept, else the frame's own size."""
    if height <= trained_rows:
        return width, height
    return max(8, round(width * trained_rows / height)), trained_rows


@torch.inference_mode()
def evaluate_idd_groups(model: nn.Module, split: IddLiteSplit, trained_rows: int, normalise: Normaliser,
                        device: torch.device) -> dict[str, float]:
    """Group mIoU and sky IoU over the split (11-class predictions mapped to the 7 groups), and
    the share of true-sky pixels predicted as each group (``idd_sky_to_<group>``)."""
    model.eval()
    to_group = torch.from_numpy(group_of_class())
    confusion = ConfusionMatrix(len(IDD_GROUPS))
    for image, labels in zip(split.images, split.labels):
        size = infer_size(image.shape[1], image.shape[0], trained_rows)
        logits, _ = predict_at(model, image, size, normalise, device)
        confusion.update(to_group[logits.argmax(1)[0].cpu()], torch.from_numpy(labels.astype(np.int64)))
    iou = confusion.iou()
    sky_row = confusion.counts[GROUP_SKY].double()
    results = {"idd_group_miou": confusion.miou(), "idd_sky_iou": float(iou[GROUP_SKY])}
    for group, name in enumerate(IDD_GROUPS):
        results[f"idd_iou_{name.replace(' ', '_')}"] = float(iou[group])
        results[f"idd_sky_to_{name.replace(' ', '_')}"] = float(sky_row[group] / sky_row.sum().clamp(min=1))
    return results


@torch.inference_mode()
def clip_sky_share(model: nn.Module, frames: Sequence[np.ndarray], trained_rows: int, normalise: Normaliser,
                   device: torch.device) -> dict[str, float]:
    """Mean and worst per-frame share of ``CLIP_SKY_REGION`` labelled Sky, the share of the whole
    frame labelled Sky, and the region's shares of Building and Tree (the usual confusions)."""
    model.eval()
    x, y, w, h = CLIP_SKY_REGION
    sky, building, tree, frame_sky = [], [], [], []
    for image in frames:
        scale_x, scale_y = image.shape[1] / 960.0, image.shape[0] / 540.0
        size = infer_size(image.shape[1], image.shape[0], trained_rows)
        labels = predict_at(model, image, size, normalise, device)[0].argmax(1)[0].cpu().numpy()
        region = labels[round(y * scale_y):round((y + h) * scale_y), round(x * scale_x):round((x + w) * scale_x)]
        sky.append(float((region == SKY).mean()))
        building.append(float((region == CAMVID_CLASSES.index("Building")).mean()))
        tree.append(float((region == CAMVID_CLASSES.index("Tree")).mean()))
        frame_sky.append(float((labels == SKY).mean()))
    return {"clip_sky_share": float(np.mean(sky)), "clip_sky_worst": float(np.min(sky)),
            "clip_sky_frames_95": float(np.mean(np.array(sky) >= 0.95)),
            "clip_region_building": float(np.mean(building)), "clip_region_tree": float(np.mean(tree)),
            "clip_frame_sky": float(np.mean(frame_sky)), "clip_sky_checked": float(len(frames))}


def car_centre(box: tuple[int, int, int, int], width: int, height: int) -> tuple[slice, slice]:
    """Rows and columns of the centre half of a ``CLIP_CARS`` box (a quarter trimmed off each
    side, so a hand-marked edge cannot decide a check) in a width x height map of the clip."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
    scale_x, scale_y = width / 960.0, height / 540.0
    return (slice(round((y0 + dy) * scale_y), round((y1 - dy) * scale_y)),
            slice(round((x0 + dx) * scale_x), round((x1 - dx) * scale_x)))


@torch.inference_mode()
def clip_car_share(model: nn.Module, frames: dict[int, np.ndarray], trained_rows: int, normalise: Normaliser,
                   device: torch.device) -> dict[str, float]:
    """For each car of ``CLIP_CARS`` in ``frames`` (index -> RGB frame), the share of the
    ``car_centre`` of its box labelled Car: the mean and the worst over the cars, and the share of cars with most of that
    centre labelled Car (``clip_cars_found``)."""
    model.eval()
    shares = []
    for index, boxes in CLIP_CARS.items():
        if index not in frames:
            continue
        image = frames[index]
        size = infer_size(image.shape[1], image.shape[0], trained_rows)
        labels = predict_at(model, image, size, normalise, device)[0].argmax(1)[0].cpu().numpy()
        for box in boxes:
            shares.append(float((labels[car_centre(box, labels.shape[1], labels.shape[0])] == CAR).mean()))
    if not shares:
        return {}
    return {"clip_car_share": float(np.mean(shares)), "clip_car_worst": float(np.min(shares)),
            "clip_cars_found": float(np.mean(np.array(shares) > 0.5)), "clip_cars_checked": float(len(shares))}
