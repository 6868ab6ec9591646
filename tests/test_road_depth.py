"""The real-clip road-depth check of the joint model: band medians, Spearman, the clip reader and
its wiring into the joint objective (skipped cleanly without the clip)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from nets import zoo
from nets.errors import NetsError
from nets.train.clip import read_clip, road_clip_path
from nets.train.evaluate import ROAD, Normaliser, road_band_medians, road_depth_profile, spearman
from nets.train.recipes import recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
UNIT = Normaliser((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


class FakeJoint(nn.Module):
    """Road on the lower half (or nowhere), sky elsewhere; depth grows or shrinks with height.
    ``stray`` adds a small patch of road in the top-left corner of the sky."""

    def __init__(self, road: bool = True, deeper_upwards: bool = True, stray: bool = False) -> None:
        super().__init__()
        self.road = road
        self.deeper_upwards = deeper_upwards
        self.stray = stray

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, _, height, width = x.shape
        rows = torch.arange(height, dtype=torch.float32).view(1, 1, height, 1).expand(n, 1, height, width)
        depth = height - rows if self.deeper_upwards else rows + 1
        logits = torch.zeros(n, 11, height, width)
        logits[:, 0] = 1.0
        if self.road:
            logits[:, ROAD, height // 2:] = 2.0
        if self.stray:
            logits[:, ROAD, :height // 8, :width // 8] = 2.0
        return logits, depth


def frames(count: int = 3, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    return [np.full((size[1], size[0], 3), 30 * i, np.uint8) for i in range(count)]


def write_clip(path: Path, count: int, size: tuple[int, int] = (64, 48)) -> None:
    """An mp4v clip whose frame i is grey level 20 * i, with a red left half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    for i in range(count):
        image = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        image[:, :size[0] // 2] = (220, 20, 20)
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()


def test_depth_growing_towards_the_top_of_the_road_scores_one():
    result = road_depth_profile(FakeJoint(), frames(), (64, 48), UNIT, CPU)
    assert result["clip_road_frames"] == 3
    assert result["clip_road_spearman"] == pytest.approx(1.0)
    assert result["clip_road_monotone"] == 1.0
    bands = [result[f"clip_road_band_m_{k}"] for k in range(6)]
    assert bands == sorted(bands) and bands[0] < bands[-1]


def test_stray_road_in_the_sky_does_not_move_the_bands():
    clean = road_depth_profile(FakeJoint(), frames(), (64, 48), UNIT, CPU)
    assert road_depth_profile(FakeJoint(stray=True), frames(), (64, 48), UNIT, CPU) == clean


def test_depth_shrinking_towards_the_top_scores_minus_one():
    result = road_depth_profile(FakeJoint(deeper_upwards=False), frames(), (32, 24), UNIT, CPU, bands=4)
    assert result["clip_road_spearman"] == pytest.approx(-1.0)
    assert result["clip_road_monotone"] == 0.0
    assert {f"clip_road_band_m_{k}" for k in range(4)} <= set(result)


def test_no_road_gives_no_usable_frame_and_strict_json():
    result = road_depth_profile(FakeJoint(road=False), frames(), (64, 48), UNIT, CPU)
    assert result == {"clip_road_frames": 0.0}
    json.dumps(result, allow_nan=False)


def test_segmentation_only_model_is_refused():
    class SegOnly(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return torch.zeros(x.shape[0], 11, *x.shape[-2:])

    with pytest.raises(NetsError, match="joint model"):
        road_depth_profile(SegOnly(), frames(1), (64, 48), UNIT, CPU)


def test_bands_span_the_road_rows_and_skip_sparse_bands():
    road = np.zeros((40, 10), bool)
    road[10:40] = True
    road[10:20, 2:] = False  # the top band (rows 10-19) keeps 20 pixels
    depth = np.broadcast_to(np.arange(40, 0, -1, dtype=np.float32)[:, None], (40, 10))
    medians = road_band_medians(road, depth, bands=3, min_pixels=50)
    assert np.isnan(medians[2])
    assert medians[:2] == pytest.approx([5.5, 15.5])  # rows 30-39 and 20-29, bottom first
    assert np.isnan(road_band_medians(np.zeros((4, 4), bool), depth[:4, :4], 3, 1)).all()


def test_spearman_ranks_ties_by_their_mean():
    assert spearman(np.arange(4), np.array([1.0, 5.0, 2.0, 9.0])) == pytest.approx(0.8)
    assert spearman(np.arange(4), np.array([10.0, 20.0, 20.0, 40.0])) == pytest.approx(0.9486833)
    assert spearman(np.arange(3), np.full(3, 7.0)) == 0.0


def test_clip_reader_spreads_rgb_frames_over_the_clip(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, 10)
    chosen = read_clip(path, 4)
    assert len(chosen) == 4 and chosen[0].shape == (48, 64, 3) and chosen[0].dtype == np.uint8
    greys = [float(frame[:, 40:].mean()) for frame in chosen]
    assert greys == pytest.approx([0, 60, 120, 180], abs=8)  # frames 0, 3, 6, 9
    red, _, blue = chosen[0][:, :20].reshape(-1, 3).mean(0)
    assert red > 150 and blue < 60  # RGB, not OpenCV's BGR
    assert len(read_clip(path, 50)) == 10
    with pytest.raises(NetsError, match="cannot read video"):
        read_clip(tmp_path / "missing.mp4")


def test_joint_evaluation_adds_the_clip_metrics_only_when_the_clip_exists(tmp_path, monkeypatch):
    from nets.train.objectives import make_objective

    camvid = tmp_path / "data" / "camvid"
    assert road_clip_path(camvid) == tmp_path / "data" / "video" / "solidWhiteRight.mp4"
    chosen = recipe("joint-camvid-synth", camvid_root=str(camvid))
    monkeypatch.setattr("nets.train.objectives.evaluate_joint", lambda *args: {"miou": 0.5})

    def evaluate() -> dict[str, float]:
        objective = make_objective(chosen, zoo.spec(chosen.model), CPU, tmp_path / "cache")
        objective.__dict__.update(val_split=None, eval_frames=None)  # evaluate_joint is stubbed
        return objective.evaluate(FakeJoint())

    assert evaluate() == {"miou": 0.5}
    write_clip(road_clip_path(camvid), 3)
    metrics = evaluate()
    assert metrics["clip_road_frames"] == 3 and metrics["clip_road_spearman"] == pytest.approx(1.0)
