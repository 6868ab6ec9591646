"""The dash-cam clip's depth truth from its lane markings, and the check of predicted depth
against it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nets.train.lane_depth import (CLIP_HORIZON_ROW, CLIP_LANE_K, CLIP_LANE_LINES, LANE_FRAMES, clip_lane_depth,
                                   lane_depth, measure_lane_geometry)
from nets.train.roads import CLIP_CARS

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "solidWhiteRight.mp4"


def _lines(horizon: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The clip's two lane lines' slopes, moved to meet at column 480 of ``horizon``."""
    (la, _), (ra, _) = CLIP_LANE_LINES
    return (la, 480 - la * horizon), (ra, 480 - ra * horizon)


def _road_frame(horizon: float, k: float, offset: float) -> np.ndarray:
    """A grey 960x540 road under a level camera: a solid edge line on the right and, on the
    left lane line, dashes a quarter of a period long every period, ``offset`` periods in."""
    frame = np.full((540, 960, 3), 90, np.uint8)
    frame[:290] = (200, 150, 100)  # a blue sky (BGR) well above the road
    (la, lb), (ra, rb) = _lines(horizon)
    for row in range(320, 540):
        x = int(ra * row + rb)
        frame[row, x - 3:x + 4] = 255
    distance = lambda row: k / (row - horizon)  # noqa: E731  # in periods
    for row in range(320, 539):
        phase = (distance(row) - offset) % 1.0
        if phase < 0.25:
            x = int(la * row + lb)
            frame[row, x - 3:x + 4] = 255
    return frame


def test_lane_geometry_is_recovered_from_a_drawn_road():
    frames = [_road_frame(300.0, 100.0, offset) for offset in (0.0, 0.3, 0.6)]
    horizon, k = measure_lane_geometry(frames, left_line=_lines(300.0)[0])
    assert horizon == pytest.approx(300.0, abs=1.5)
    assert k == pytest.approx(100.0, rel=0.06)


def test_lane_depth_grows_towards_the_horizon_as_the_flat_road_law_says():
    rows = np.array([535.0, 450.0, 400.0, 340.0])
    depth = lane_depth(rows)
    assert np.all(np.diff(depth) > 0)
    assert depth[0] * (rows[0] - CLIP_HORIZON_ROW) == pytest.approx(depth[3] * (rows[3] - CLIP_HORIZON_ROW))
    assert 3.0 < depth[0] < 8.0 and depth[3] > 25.0


class _DepthPainter(torch.nn.Module):
    """A joint model whose depth is the lane law (or that law cut off at ``ceiling`` metres), with
    each marked car at the road depth of its box's bottom row in the frames it is given."""

    def __init__(self, ceiling: float = np.inf, cars: bool = True) -> None:
        super().__init__()
        self.ceiling, self.cars = ceiling, cars

    def forward(self, x):
        height, width = x.shape[-2:]
        rows = (torch.arange(height, dtype=torch.float64) + 0.5) * 540.0 / height
        depth = torch.from_numpy(lane_depth(np.maximum(rows.numpy(), CLIP_HORIZON_ROW + 1))).float()
        depth = depth.clamp(max=self.ceiling)[:, None].expand(height, width).clone()
        if self.cars:
            for x0, y0, x1, y1 in CLIP_CARS[int(x[0, 0, 0, 0].round())]:
                depth[round(y0 * height / 540):round(y1 * height / 540),
                      round(x0 * width / 960):round(x1 * width / 960)] = float(lane_depth(y1))
        return torch.zeros(x.shape[0], 11, height, width), depth[None, None].expand(x.shape[0], 1, height, width)


def _frames() -> dict[int, np.ndarray]:
    frames = {}
    for index in LANE_FRAMES:
        frame = np.zeros((540, 960, 3), np.uint8)
        frame[..., 0] = index if index in CLIP_CARS else 0  # the painter reads the frame index here
        frames[index] = frame
    return frames


def _score(model: torch.nn.Module) -> dict[str, float]:
    frames = {index: frame for index, frame in _frames().items() if index in CLIP_CARS}
    identity = lambda batch: batch * 255.0  # noqa: E731  # back to pixel values, so the index survives
    return clip_lane_depth(model, frames, 540, identity, torch.device("cpu"))


def test_depth_that_follows_the_lanes_scores_right_and_a_compressed_one_does_not():
    right = _score(_DepthPainter())
    assert right["clip_lane_road_abs_rel"] < 0.01 and right["clip_lane_far_road_ratio"] == pytest.approx(1, abs=0.02)
    assert right["clip_lane_car_ratio"] == pytest.approx(1, abs=0.03) and right["clip_lane_cars_within_25"] == 1.0
    squeezed = _score(_DepthPainter(ceiling=15.0))
    assert squeezed["clip_lane_far_road_ratio"] < 0.8
    assert squeezed["clip_lane_road_abs_rel"] > right["clip_lane_road_abs_rel"] + 0.015
    no_cars = _score(_DepthPainter(cars=False))
    assert no_cars["clip_lane_car_ratio"] > 1.1  # a car painted as the road behind it reads too far
    assert {"clip_lane_prior_car_ratio", "clip_lane_prior_road_abs_rel"} <= set(right)


class _HorizonPainter(torch.nn.Module):
    """A joint model whose depth is a flat road's below its horizon: read from the row the frame
    marks (as a model that sees the scene would), or always at half its input's height."""

    def __init__(self, reads_scene: bool) -> None:
        super().__init__()
        self.reads_scene = reads_scene

    def forward(self, x):
        height, width = x.shape[-2:]
        marked = torch.nonzero(x[0, 1].amax(dim=1) > 128)[:, 0].double()
        horizon = float(marked.mean()) if self.reads_scene else height / 2
        rows = torch.arange(height, dtype=torch.float64)
        depth = (100.0 / (rows - horizon).clamp(min=0.5)).float()[:, None].expand(height, width)
        return torch.zeros(x.shape[0], 11, height, width), depth[None, None].expand(x.shape[0], 1, height, width)


def test_the_horizon_check_tells_a_model_that_reads_the_road_from_one_that_recalls_a_row():
    frame = np.zeros((540, 960, 3), np.uint8)
    frame[round(CLIP_HORIZON_ROW), :, 1] = 255  # the horizon, for the painter that reads it
    frames = {0: frame, 10: frame}
    identity = lambda batch: batch * 255.0  # noqa: E731
    reader = clip_lane_depth(_HorizonPainter(reads_scene=True), frames, 540, identity, torch.device("cpu"))
    recaller = clip_lane_depth(_HorizonPainter(reads_scene=False), frames, 540, identity, torch.device("cpu"))
    assert reader["clip_lane_horizon_error"] < 0.005 and reader["clip_lane_crop_road_abs_rel"] < 0.01
    assert recaller["clip_lane_horizon_error"] > 0.03 and recaller["clip_lane_horizon_bias"] < -0.01
    assert recaller["clip_lane_crop_road_abs_rel"] > 0.05


@pytest.mark.shared
@pytest.mark.skipif(not CLIP.is_file(), reason="shared data (solidWhiteRight.mp4) is absent")
def test_the_clips_lane_constants_are_what_its_frames_measure():
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    horizon, k = measure_lane_geometry(frames)
    assert horizon == pytest.approx(CLIP_HORIZON_ROW, abs=0.5) and k == pytest.approx(CLIP_LANE_K, rel=0.02)
