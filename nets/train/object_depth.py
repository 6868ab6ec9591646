"""Checks of predicted depth on real labelled frames that have no true depth, by the objects in
them: a car or a building stands on the road, so its depth should match the depth of the road
just below it; cars are about one size, so a car's depth should rise as its image width falls.
Each check is also run on a content-free prior (each image row's median depth over the split)
so that a smooth near-to-far ramp cannot pass for depth."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from nets.train.data import CamVidSplit
from nets.train.evaluate import Normaliser, predict_at, spearman
from nets.train.geometry import plane_residuals

__all__ = ["StandingObject", "standing_objects", "object_depth_checks"]

_GROUND = (3, 4)  # Road, Pavement
_CHECKED = {"car": 8, "building": 1}


class StandingObject:
    """One labelled thing touching the ground: its pixels, the ground pixels just below it and
    its bounding-box width in pixels."""

    def __init__(self, pixels: np.ndarray, ground: np.ndarray, width: int) -> None:
        self.pixels, self.ground, self.width = pixels, ground, width


def standing_objects(labels: np.ndarray, cls: int, min_area: int = 150, min_contact: int = 4,
                     reach: int = 3) -> list[StandingObject]:
    """Connected regions of class ``cls`` whose lowest pixel in at least ``min_contact`` columns
    has road or pavement within ``reach`` pixels below it."""
    ground = np.isin(labels, _GROUND)
    count, regions, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8), connectivity=8)
    found = []
    for region in range(1, count):
        if stats[region, cv2.CC_STAT_AREA] < min_area:
            continue
        mask = regions == region
        below = np.zeros_like(ground)
        columns = np.nonzero(mask.any(axis=0))[0]
        bottoms = mask.shape[0] - 1 - np.argmax(mask[::-1, columns], axis=0)
        for column, bottom in zip(columns, bottoms):
            rows = slice(bottom + 1, min(mask.shape[0], bottom + 1 + reach))
            below[rows, column] = ground[rows, column]
        if below.any(axis=0).sum() >= min_contact:
            found.append(StandingObject(mask, below, int(stats[region, cv2.CC_STAT_WIDTH])))
    return found


def _ratios(depths: Sequence[np.ndarray], objects: Sequence[Sequence[StandingObject]]) -> np.ndarray:
    return np.array([float(np.median(d[o.pixels]) / max(1e-3, float(np.median(d[o.ground]))))
                     for d, frame in zip(depths, objects) for o in frame])


def _summary(name: str, ratios: np.ndarray) -> dict[str, float]:
    if ratios.size == 0:
        return {}
    error = np.abs(np.log(ratios))
    return {f"{name}_within_25": float(np.mean(error <= np.log(1.25))), f"{name}_log_error": float(np.median(error))}


@torch.inference_mode()
def object_depth_checks(model: nn.Module, split: CamVidSplit, size: tuple[int, int], normalise: Normaliser,
                        device: torch.device) -> dict[str, float]:
    """For cars and buildings standing on the road in the split's true labels: the share whose
    median predicted depth is within 25 % of the road's just below them (``*_within_25``) and the
    median |log ratio|; for cars, the rank correlation of depth with 1 / box width
    (``car_size_spearman``); the median over frames of how far 1/depth on the true road and
    pavement is from a plane (``ground_plane_residual``, see ``geometry.plane_residuals``).
    ``prior_*`` give the same for the row prior."""
    model.eval()
    depths = [predict_at(model, image, size, normalise, device)[1][0, 0].cpu().numpy() for image in split.images]
    prior_rows = np.median(np.stack(depths), axis=(0, 2))
    prior = np.repeat(prior_rows[:, None], depths[0].shape[1], axis=1)
    results: dict[str, float] = {}
    for label, maps in (("ground_plane_residual", depths), ("prior_ground_plane_residual", [prior] * len(depths))):
        residuals = plane_residuals(torch.from_numpy(np.stack(maps)),
                                    torch.from_numpy(np.isin(np.stack(split.labels), _GROUND)))
        if residuals.numel():
            results[label] = float(residuals.median())
    for name, cls in _CHECKED.items():
        objects = [standing_objects(labels, cls) for labels in split.labels]
        results.update(_summary(f"{name}_contact", _ratios(depths, objects)))
        results.update(_summary(f"prior_{name}_contact", _ratios([prior] * len(depths), objects)))
        if name == "car":
            inverse_width = [1.0 / o.width for frame in objects for o in frame]
            for label, maps in (("car_size_spearman", depths), ("prior_car_size_spearman", [prior] * len(depths))):
                medians = [float(np.median(d[o.pixels])) for d, frame in zip(maps, objects) for o in frame]
                results[label] = spearman(np.array(medians), np.array(inverse_width)) if medians else 0.0
            results["car_count"] = float(len(inverse_width))
    return results
