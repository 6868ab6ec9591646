"""Metric depth truth for the real dash-cam clip from its lane markings, and a check of predicted
depth against it.

The clip (960x540) is a level camera on a straight, flat highway. Over a flat road seen by a
pinhole camera with no roll, depth depends on the image row alone: ``Z(v) = K * P / (v - v0)``,
with ``v0`` the horizon row and ``P`` the period of the dashed lane line (dash plus gap). Both
come from the clip itself (``measure_lane_geometry``): ``v0`` is where the dashed line left of
the car meets the solid edge line on the right (the median over the frames where both are
found), ``K`` the median over pairs of consecutive dashes of ``1 / (1/(v_far - v0) - 1/(v_near -
v0))`` between their near ends (their far ends agree within 3 %). US lane dashes repeat every
40 ft (``P`` = 12.19 m), which sets the metric scale; the checks that matter are scale-free
(every frame's prediction is first scaled by its median ratio on the road, as the LiDAR protocol
does), so they do not depend on ``P``.

Cars ahead (``roads.CLIP_CARS``) stand on the same road, so each is as far as the road at the
bottom row of its box. The joint weights shipped until session 15 read the near road well (5.7 m
where the lanes say 5.2 m at the bottom row, 12.5 against 12.5 m at row 400) but compressed the
far road (19 m against 33 m at row 340), and the cars, 25-65 m away, with it: a third of their
distance. The weights shipped since (trained on cropped synthetic views) read 25 and 21.5 m in
the 20-row bands around rows 330 and 350, where the lanes say 46 and 26 m, and the cars at half.

Where a model puts the road's vanishing row says whether it reads the scene or recalls a row: a
crop of the frame moves the true horizon (and nothing else the law depends on), so
``clip_lane_depth`` also crops the frames at ``CLIP_LANE_CROPS``, finds the row where the affine
fit of the predicted 1/depth over the road region reaches zero and scores the road against the
law moved with the crop. The joint weights shipped until session 15 move their horizon with the
crop (medians 0.45-0.62 of the height where the truth is 0.48-0.66) but put it 0.02-0.05 too
high in each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from nets.train.evaluate import Normaliser, predict_at
from nets.train.roads import CLIP_CARS, car_centre, infer_size

__all__ = ["CLIP_HORIZON_ROW", "CLIP_LANE_K", "CLIP_DASH_PERIOD_M", "CLIP_ROAD_ROWS", "CLIP_LANE_LINES",
           "CLIP_LANE_CROPS", "LANE_FRAMES", "lane_depth", "measure_lane_geometry", "clip_lane_depth",
           "score_lane_depths"]

CLIP_HORIZON_ROW = 303.7
CLIP_LANE_K = 98.4
CLIP_DASH_PERIOD_M = 12.19
CLIP_ROAD_ROWS = (335, 535)  # rows of the road region the check scores (20-5 m by the lanes)
CLIP_LANE_LINES = ((-1.350, 887.9), (1.612, -9.8))  # x = a*y + b of the car's lane lines in frame 0
CLIP_LANE_CROPS = ((0, 540), (80, 540), (0, 460), (120, 500))  # (top, bottom) rows: true horizon at 0.48-0.66
LANE_FRAMES = tuple(sorted(set(CLIP_CARS) | set(range(0, 221, 10))))  # every 10th frame and the car frames
_MARGIN = 12  # pixels kept off each lane line


def lane_depth(rows: np.ndarray | float) -> np.ndarray:
    """Metres to the flat road at image row(s) ``rows`` of the 960x540 clip (below the horizon)."""
    return CLIP_DASH_PERIOD_M * CLIP_LANE_K / (np.asarray(rows, dtype=np.float64) - CLIP_HORIZON_ROW)


def _white_parts(frame_bgr: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hsv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2HSV)
    white = ((hsv[..., 2] > 190) & (hsv[..., 1] < 50)).astype(np.uint8)
    white[:top] = 0
    _, parts, stats, centres = cv2.connectedComponentsWithStats(white, connectivity=8)
    return parts, stats, centres


def _line(mask: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(mask)
    return np.polyfit(rows, columns, 1)  # x = a*y + b


def measure_lane_geometry(frames_bgr: Sequence[np.ndarray], left_line: tuple[float, float] = CLIP_LANE_LINES[0],
                          top: int = 320) -> tuple[float, float]:
    """(horizon row, K) of a flat straight road from its lane markings: white parts below ``top``
    within a few pixels of ``left_line`` are dashes, the largest white part right of the image
    centre is the solid edge line. Needs at least two frames with two whole dashes."""
    horizons, dashes = [], []
    for frame in frames_bgr:
        parts, stats, centres = _white_parts(frame, top)
        height, width = frame.shape[:2]
        mine = []
        for part in range(1, len(stats)):
            x, y, w, h, area = stats[part]
            cx, cy = centres[part]
            near_line = abs(cx - (left_line[0] * cy + left_line[1])) <= 6 + 0.04 * max(0.0, cy - top)
            if area >= 12 and near_line and y + h < height:
                mine.append((y, y + h - 1, part))
        edge = [p for p in range(1, len(stats)) if stats[p][4] > 800 and centres[p][0] > width / 2]
        if edge and len(mine) >= 2:
            right = _line(np.isin(parts, edge))
            left = _line(np.isin(parts, [p for _, _, p in mine]))
            horizons.append((right[1] - left[1]) / (left[0] - right[0]))
        dashes.append(sorted(mine, key=lambda dash: -dash[1]))
    if not horizons:
        raise ValueError("no frame shows both the dashed and the solid lane line")
    horizon = float(np.median(horizons))
    ks = []
    for frame_dashes in dashes:
        whole = [d for d in frame_dashes if d[0] - horizon > 8]
        for near, far in zip(whole, whole[1:]):
            ks.append(1.0 / (1.0 / (far[1] - horizon) - 1.0 / (near[1] - horizon)))
    if len(ks) < 2:
        raise ValueError("too few pairs of consecutive dashes")
    return horizon, float(np.median(ks))


def _road_mask(height: int, width: int) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    rows_960, columns_960 = rows * 540.0 / height, columns * 960.0 / width
    (la, lb), (ra, rb) = CLIP_LANE_LINES
    return ((rows_960 >= CLIP_ROAD_ROWS[0]) & (rows_960 <= CLIP_ROAD_ROWS[1])
            & (columns_960 > la * rows_960 + lb + _MARGIN) & (columns_960 < ra * rows_960 + rb - _MARGIN))


def score_lane_depths(depths: Mapping[int, np.ndarray], prefix: str = "clip_lane_") -> dict[str, float]:
    """The ``clip_lane_depth`` scores (named from ``prefix``) of depth maps of the clip's frames
    (index -> H x W metres, any size with the clip's aspect)."""
    height, width = next(iter(depths.values())).shape
    road = _road_mask(height, width)
    truth = lane_depth(np.nonzero(road)[0] * 540.0 / height)
    far_rows = road & (np.arange(height)[:, None] * 540.0 / height < CLIP_ROAD_ROWS[0] + 15)
    far_truth = lane_depth(np.nonzero(far_rows)[0] * 540.0 / height)
    metric, scaled, far, cars = [], [], [], []
    for index, depth in depths.items():
        predicted = depth[road]
        scale = float(np.median(truth) / max(1e-6, np.median(predicted)))
        metric.append(float(np.mean(np.abs(predicted - truth) / truth)))
        scaled.append(float(np.mean(np.abs(predicted * scale - truth) / truth)))
        far.append(float(np.median(depth[far_rows] * scale / far_truth)))
        for box in CLIP_CARS.get(index, ()):
            centre = depth[car_centre(box, width, height)]
            cars.append(float(np.median(centre)) * scale / float(lane_depth(box[3])))
    ratios = np.array(cars)
    results = {f"{prefix}road_abs_rel": float(np.mean(scaled)), f"{prefix}road_metric_abs_rel": float(np.mean(metric)),
               f"{prefix}far_road_ratio": float(np.median(far))}
    if ratios.size:
        results.update({f"{prefix}car_ratio": float(np.median(ratios)),
                        f"{prefix}car_abs_rel": float(np.mean(np.abs(ratios - 1.0))),
                        f"{prefix}cars_within_25": float(np.mean(np.abs(np.log(ratios)) <= np.log(1.25)))})
    return results


def _predicted_depths(model: nn.Module, frames: Mapping[int, np.ndarray], rows: tuple[int, int], trained_rows: int,
                      normalise: Normaliser, device: torch.device) -> dict[int, np.ndarray]:
    """Predicted depth (metres, at the crop's size) of the ``rows`` (top, bottom) crop of each
    frame, run at the product's ``--infer-size auto`` size."""
    top, bottom = rows
    depths = {}
    for index, frame in frames.items():
        crop = np.ascontiguousarray(frame[top:bottom])
        size = infer_size(crop.shape[1], crop.shape[0], trained_rows)
        depths[index] = predict_at(model, crop, size, normalise, device)[1][0, 0].abs().cpu().numpy()
    return depths


def _road_horizon(depth: np.ndarray, road: np.ndarray) -> float | None:
    """The row where the least-squares line of 1/depth against the row, over ``road``, is zero;
    None when 1/depth does not grow down the image."""
    rows = np.nonzero(road)[0].astype(np.float64)
    slope, intercept = np.polyfit(rows, 1.0 / np.maximum(depth[road], 1e-3), 1)
    return float(-intercept / slope) if slope > 0 else None


def _crop_scores(crop_depths: Mapping[tuple[int, int], Mapping[int, np.ndarray]]) -> dict[str, float]:
    """The horizon and road scores of ``clip_lane_depth`` over depth maps of 960-wide crops
    ((top, bottom) -> index -> map at the crop's size)."""
    full_road = _road_mask(540, 960)
    errors, abs_rels = [], []
    for (top, bottom), depths in crop_depths.items():
        road = full_road[top:bottom]
        true_depth = lane_depth(top + np.nonzero(road)[0])
        truth = (CLIP_HORIZON_ROW - top) / (bottom - top)
        for depth in depths.values():
            horizon = _road_horizon(depth, road)
            errors.append(1.0 if horizon is None else horizon / (bottom - top) - truth)
            predicted = depth[road] * float(np.median(true_depth) / max(1e-6, np.median(depth[road])))
            abs_rels.append(float(np.mean(np.abs(predicted - true_depth) / true_depth)))
    errors = np.array(errors)
    return {"clip_lane_horizon_error": float(np.median(np.abs(errors))),
            "clip_lane_horizon_bias": float(np.median(errors)), "clip_lane_crop_road_abs_rel": float(np.mean(abs_rels))}


@torch.inference_mode()
def clip_lane_depth(model: nn.Module, frames: Mapping[int, np.ndarray], trained_rows: int, normalise: Normaliser,
                    device: torch.device) -> dict[str, float]:
    """Predicted depth of the clip's ``frames`` (index -> RGB 960x540 frame, run at the product's
    ``--infer-size auto`` size) against the lane geometry, each frame scaled by its median ratio
    on the road region: the road's AbsRel (``clip_lane_road_abs_rel``; ``..._metric_abs_rel``
    unscaled, in metres as the 40 ft dash period sets them), the median scaled/true ratio on its
    farthest 15 rows (``clip_lane_far_road_ratio``, 1 is right, below 1 compressed) and, for the
    marked cars, the median ratio of their depth to the road's at the bottom of their box, the
    mean |ratio - 1| and the share within 25 %. ``clip_lane_prior_*`` score the row prior (each
    row's median prediction over the frames) the same way.

    Over the crops ``CLIP_LANE_CROPS`` of the frames, against the lane law moved with each crop:
    the road's vanishing row against the true one, as shares of the crop's height, as the median
    absolute error (``clip_lane_horizon_error``; a map with no road horizon counts 1) and the
    median signed one (``clip_lane_horizon_bias``, negative when the model puts it too high,
    which compresses the far road); and the road's AbsRel after scaling each crop by its median
    (``clip_lane_crop_road_abs_rel``, the mean over frames and crops)."""
    model.eval()
    if not frames:
        return {}
    crop_depths = {rows: _predicted_depths(model, frames, rows, trained_rows, normalise, device)
                   for rows in CLIP_LANE_CROPS}
    depths = crop_depths[(0, 540)]
    rows = np.median(np.stack(list(depths.values())), axis=(0, 2))
    prior = np.repeat(rows[:, None], next(iter(depths.values())).shape[1], axis=1)
    results = score_lane_depths(depths)
    results.update(score_lane_depths({index: prior for index in depths}, "clip_lane_prior_"))
    results.update(_crop_scores(crop_depths))
    return results
