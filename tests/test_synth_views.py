"""Random views of synthetic frames: the horizon moves, depth and labels stay exact and aligned."""

from __future__ import annotations

import numpy as np

from nets.train.synth_views import synthetic_view


def _road_frame(height: int = 180, width: int = 240, horizon: float = 80.0):
    rows = np.arange(height, dtype=np.float64)[:, None].repeat(width, axis=1)
    depth = np.where(rows > horizon + 1, 100.0 / np.maximum(rows - horizon, 1e-3), 1000.0).astype(np.float32)
    labels = np.where(rows > horizon + 1, 3, 0).astype(np.uint8)  # road below, sky above
    image = np.dstack([labels * 60] * 3).astype(np.uint8)
    return image, labels, depth


def _horizon_share(depth: np.ndarray, labels: np.ndarray) -> float:
    rows = np.nonzero(labels == 3)[0].astype(np.float64)
    slope, intercept = np.polyfit(rows, 1.0 / depth[labels == 3], 1)
    return -intercept / slope / depth.shape[0]


def test_views_keep_size_and_exact_aligned_depth_and_labels():
    image, labels, depth = _road_frame()
    for seed in range(10):
        view_image, view_labels, view_depth = synthetic_view(image, labels, depth, 0.6, np.random.default_rng(seed))
        assert view_image.shape == image.shape and view_labels.shape == labels.shape and view_depth.shape == depth.shape
        assert np.isin(view_depth, depth).all()  # nearest pixels: no depth made up across an edge
        assert ((view_labels == 3) == (view_depth < 1000.0)).all()


def test_views_move_the_horizon_over_the_frame_and_a_full_share_keeps_it():
    image, labels, depth = _road_frame()
    shares = [_horizon_share(*synthetic_view(image, labels, depth, 0.6, np.random.default_rng(seed))[2:0:-1])
              for seed in range(40)]
    assert max(shares) - min(shares) > 0.3
    kept = synthetic_view(image, labels, depth, 1.0, np.random.default_rng(0))
    assert np.array_equal(kept[2], depth) and abs(_horizon_share(kept[2], kept[1]) - 80.0 / 180) < 0.01
