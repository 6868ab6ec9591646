"""The siamfc-synth recipe: training pairs, a short resumable run and the one-pass evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nets.errors import NetsError
from nets.train.loop import train
from nets.train.objectives import make_objective
from nets.train.recipes import recipe
from nets.world.frames import SyntheticFrames
from nets.train.tracking import (EXEMPLAR_SIZE, SEARCH_SIZE, PairJitter, region_pair,
                                 response_labels, synthetic_pair, tracker_crop)
from nets import zoo

STILL = PairJitter(stretch=0.0, max_shift=0.0, colour=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_camvid(root: Path, count: int = 2, size: tuple[int, int] = (96, 72)) -> Path:
    """CamVid-shaped train/val folders of random-block images (labels are only read, not used)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(count):
            blocks = rng.integers(0, 256, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
            image = cv2.resize(blocks, size, interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(root / split / "images" / f"f{i}.png"), image)
            cv2.imwrite(str(root / split / "labels" / f"f{i}.png"), np.zeros(size[::-1], np.uint8))
    return root


def tiny_recipe(camvid: Path, **changes):
    options = {**recipe("siamfc-synth").options, "train_towns": [1], "frames_per_town": 3, "frame_step": 2,
               "max_gap": 1, "min_side": 4, "val_towns": list(range(8100, 8110)), "val_sequences": 1,
               "test_towns": list(range(9100, 9110)), "test_sequences": 2, "sequence_frames": 3,
               "lost_thresholds": [0.2], **changes}
    return recipe("siamfc-synth", camvid_root=str(camvid), size=(160, 120), eval_size=(160, 120), batch=2,
                  steps=2, warmup=0, checkpoint_every=1, log_every=1, options=options)


def test_labels_are_a_centred_disc_of_radius_16_pixels():
    labels = response_labels(16.0)
    assert labels.shape == (17, 17)
    assert labels[8, 8] == 1 and labels[8, 10] == 1 and labels[8, 11] == 0 and labels.sum() == 13
    assert np.array_equal(labels, labels[::-1, ::-1])


def test_region_pair_puts_the_exemplar_at_the_centre_of_the_search_crop():
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.integers(0, 256, size=(18, 24, 3), dtype=np.uint8), (240, 180))
    exemplar, search = region_pair(image, (40.0, 60.0), STILL, rng)
    assert exemplar.shape == (EXEMPLAR_SIZE, EXEMPLAR_SIZE, 3) and search.shape == (SEARCH_SIZE, SEARCH_SIZE, 3)
    assert exemplar.dtype == search.dtype == np.uint8
    start = (SEARCH_SIZE - EXEMPLAR_SIZE) // 2
    middle = search[start:start + EXEMPLAR_SIZE, start:start + EXEMPLAR_SIZE].astype(float)
    assert np.abs(middle - exemplar).mean() < 3
    off_centre = search[start + 24:start + 24 + EXEMPLAR_SIZE, start:start + EXEMPLAR_SIZE].astype(float)
    assert np.abs(off_centre - exemplar).mean() > 20


def test_crops_outside_the_frame_are_padded_with_its_mean_colour():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 200
    crop = tracker_crop(image, (0.0, 0.0), 60.0, 64)
    assert np.array_equal(crop[0, 0], np.full(3, 100, np.uint8))
    with pytest.raises(NetsError, match="uint8"):
        tracker_crop(image.astype(np.float32), (0.0, 0.0), 60.0, 64)


def test_synthetic_pairs_come_from_one_track(tmp_path):
    frames = SyntheticFrames([1], 3, (160, 120), 2, tmp_path)
    pair = synthetic_pair(frames, 1, 4, PairJitter(), np.random.default_rng(0))
    assert pair is not None
    assert pair[0].shape == (EXEMPLAR_SIZE, EXEMPLAR_SIZE, 3) and pair[1].shape == (SEARCH_SIZE, SEARCH_SIZE, 3)
    assert len(list(tmp_path.glob("town1_f*_160x120.npz"))) >= 1
    assert synthetic_pair(frames, 1, 500, PairJitter(), np.random.default_rng(0)) is None
    with pytest.raises(NetsError, match="at least 2 frames per town"):
        synthetic_pair(SyntheticFrames([1], 1, (160, 120)), 1, 4, PairJitter(), np.random.default_rng(0))


def test_objective_samples_and_refuses_shared_towns(tmp_path):
    camvid = write_camvid(tmp_path / "camvid")
    chosen = tiny_recipe(camvid, camvid_share=1.0)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")
    batch = objective.batches()[0]
    assert batch["exemplar"].shape == (2, 3, EXEMPLAR_SIZE, EXEMPLAR_SIZE)
    assert batch["search"].shape == (2, 3, SEARCH_SIZE, SEARCH_SIZE) and batch["labels"].shape == (2, 17, 17)
    leaky = tiny_recipe(camvid, test_towns=[8100])
    with pytest.raises(NetsError, match="val_towns and test_towns share towns"):
        make_objective(leaky, zoo.spec(leaky.model), torch.device("cpu"), tmp_path / "cache")


def test_two_step_run_resumes_and_reports_both_trackers(tmp_path):
    torch.manual_seed(0)
    camvid = write_camvid(tmp_path / "camvid")
    chosen = tiny_recipe(camvid)
    lines: list[str] = []
    assert train(chosen, tmp_path / "run", until=1, log=lines.append) is None
    record = train(chosen, tmp_path / "run", log=lines.append)
    assert any(line.startswith("resuming siamfc-synth at step 1") for line in lines)
    assert any(line.startswith("step 2/2 | loss") for line in lines)
    metrics = record["metrics"]
    assert 0 <= metrics["auc"] <= 1 and 0 <= metrics["mil_auc"] <= 1 and 0 <= metrics["val_auc"] <= 1
    assert metrics["lost_threshold"] == 0.2 and metrics["test_frames"] == 2 * 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["score"] == "val_auc"


def test_tracker_fps_times_updates_on_a_480x360_frame():
    from nets.siamese import SiamFCNet
    from nets.train.evaluate import tracker_fps

    torch.manual_seed(0)
    assert tracker_fps(SiamFCNet(), frames=1) > 0
    with pytest.raises(ValueError, match="at least one"):
        tracker_fps(SiamFCNet(), frames=0)


def test_export_speed_probe_runs_the_tracker_not_a_single_input_forward():
    from nets import zoo
    from nets.train.export import cpu_fps

    torch.manual_seed(0)
    fps = cpu_fps(zoo.build("siamfc-alexnet"), zoo.spec("siamfc-alexnet"), frames=1)
    assert fps > 0
