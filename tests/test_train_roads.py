"""Training for real roads anywhere: IDD-lite group labels, photometric augmentation, the
label-implied depth geometry, the checks on real frames, and fine-tuning from shipped weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nets import zoo
from nets.errors import NetsError
from nets.train.export import export
from nets.train.confusion import markdown_rows
from nets.train.data import VOID, SegAugment, augment_pair
from nets.train.geometry import (GROUND, NO_ANCHOR, column_anchors, geometry_loss, ground_plane_log_loss,
                                 ground_plane_loss, plane_residuals, surface_from_groups, surface_from_labels)
from nets.train.idd import IDD_GROUPS, IDD_IGNORE, IddLiteSplit, group_members, group_of_class
from nets.train.loop import train
from nets.train.losses import group_loss
from nets.train.object_depth import standing_objects
from nets.train.objectives import make_objective
from nets.train.photometric import Photometric, photometric
from nets.train.recipes import recipe
from nets.train.roads import CLIP_SKY_REGION, infer_size
from tests.test_train import TINY_SEG, write_tiny_camvid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHARED_IDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "idd-lite"


def write_tiny_idd(root: Path, sequences: int = 5, per_sequence: int = 2, size: tuple[int, int] = (64, 48)) -> Path:
    """IDD-lite-like frames: sky on top (group 6), vehicles in the middle (3), road below (0)."""
    width, height = size
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for seq in range(sequences):
        for i in range(per_sequence):
            groups = np.full((height, width), 0, np.uint8)
            groups[:height // 3] = 6
            groups[height // 3:height // 2, 10:30] = 3
            groups[-1] = IDD_IGNORE
            palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
            name = f"{seq}_{i:06d}"
            cv2.imwrite(str(root / "train" / "images" / f"{name}.jpg"), palette[groups][..., ::-1].copy())
            cv2.imwrite(str(root / "train" / "labels" / f"{name}.png"), groups)
    return root


def test_group_table_covers_every_class_and_maps_predictions_to_groups():
    members = group_members()
    assert members.shape == (11, len(IDD_GROUPS)) and (members.sum(1) >= 1).all()
    assert members[10].sum() == 2  # Bicyclist: a living thing and a vehicle
    assert list(group_of_class()) == [6, 5, 4, 0, 1, 5, 4, 4, 3, 2, 3]


def test_group_loss_is_the_likelihood_of_the_summed_member_probabilities():
    logits = torch.randn(2, 11, 3, 4)
    groups = torch.full((2, 3, 4), 5, dtype=torch.uint8)  # far objects: Building or Tree
    groups[0, 0, 0] = IDD_IGNORE
    offsets = torch.linspace(-1, 1, 11)
    p = torch.softmax(logits - offsets.view(1, -1, 1, 1), 1)
    expected = -(p[:, 1] + p[:, 5]).log()
    mask = groups != IDD_IGNORE
    assert group_loss(logits, groups, group_members(), offsets, IDD_IGNORE).item() == pytest.approx(
        expected[mask].mean().item(), rel=1e-5)
    confident = torch.full((1, 11, 2, 2), -20.0)
    confident[:, 3] = 20.0  # all mass on Road
    assert group_loss(confident, torch.zeros(1, 2, 2), group_members(), torch.zeros(11), IDD_IGNORE) < 1e-6
    assert group_loss(confident, torch.full((1, 2, 2), 6), group_members(), torch.zeros(11), IDD_IGNORE) > 10
    assert group_loss(logits, torch.full((2, 3, 4), IDD_IGNORE), group_members(), offsets, IDD_IGNORE) == 0


def test_idd_split_keeps_whole_sequences_on_one_side(tmp_path):
    root = write_tiny_idd(tmp_path / "idd", sequences=6)
    train_part, val_part = IddLiteSplit(root, "train"), IddLiteSplit(root, "val")
    assert len(train_part) + len(val_part) == 12
    assert val_part.sequences == ["0", "5"] and not set(val_part.sequences) & set(train_part.sequences)
    with pytest.raises(NetsError, match="'train' or 'val'"):
        IddLiteSplit(root, "test")


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_IDD.is_dir(), reason="needs ../shared/data/idd-lite")
def test_real_idd_lite_split_is_by_sequence():
    val_part = IddLiteSplit(SHARED_IDD, "val")
    names = {p.stem for p in (SHARED_IDD / "train" / "images").glob("*.jpg")}
    assert len(val_part) > 200 and len(names) == 1403
    assert all(name.split("_")[0] in val_part.sequences for name in val_part.names)


def test_photometric_changes_colours_but_not_shape_and_is_seeded():
    image = np.zeros((24, 32, 3), np.uint8)
    image[:12] = (90, 150, 230)  # blue sky
    image[12:] = (100, 100, 100)
    settings = Photometric(p=1.0)
    outs = [photometric(image, settings, np.random.default_rng(seed)) for seed in range(6)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outs)
    assert np.array_equal(outs[0], photometric(image, settings, np.random.default_rng(0)))
    sky_colours = np.array([o[:6].reshape(-1, 3).mean(0) for o in outs])
    assert np.ptp(sky_colours, axis=0).max() > 40  # the sky no longer has one colour


def test_aspect_augmentation_stretches_width_against_height():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 255
    labels = np.zeros((40, 40), np.uint8)
    labels[:, 20:] = 1
    augment = SegAugment((40, 40), scale=(1.0, 1.0), flip=False, jitter=0.0, aspect=0.5)
    out_image, out_labels = augment_pair(image, labels, augment, np.random.default_rng(3), fill=IDD_IGNORE)
    assert out_labels.shape == (40, 40)
    known = out_labels != IDD_IGNORE  # padding is ignored in the labels
    assert ((out_labels == 1) != (out_image[..., 0] > 127))[known].sum() <= 40  # aligned but for one edge column
    stretched = [augment_pair(image, labels, augment, np.random.default_rng(s))[1] for s in range(8)]
    assert len({int((m == 1).sum()) for m in stretched}) > 1 or any((m == IDD_IGNORE).any() for m in stretched)


def _ground_plane_depth(height: int, width: int, horizon: float, scale: float) -> np.ndarray:
    rows = np.arange(height, dtype=np.float64)[:, None] + 0.5
    return np.repeat(scale / np.maximum(rows - horizon, 0.5), width, axis=1).astype(np.float32)


def _geometry(depth: np.ndarray, labels: np.ndarray) -> float:
    surface = surface_from_labels(labels)
    return geometry_loss(torch.from_numpy(depth)[None, None], torch.from_numpy(surface)[None],
                         torch.from_numpy(column_anchors(surface))[None], margin=0.004).item()


def test_column_anchors_point_at_the_ground_a_thing_stands_on():
    labels = np.zeros((10, 3), np.uint8)
    labels[6:] = 3  # road
    labels[2:6, 0] = 8  # a car standing on the road: its run ends at row 5, the road is at row 6
    labels[2:5, 1] = 5  # a tree crown ending on sky: anchored to its own bottom, row 4
    labels[5, 1] = 0
    anchors = column_anchors(surface_from_labels(labels))
    assert anchors[2:6, 0].tolist() == [6, 6, 6, 6] and anchors[2:5, 1].tolist() == [4, 4, 4]
    assert (anchors[6:] == NO_ANCHOR).all() and (anchors[:2] == NO_ANCHOR).all()


def test_geometry_loss_is_zero_for_a_scene_that_obeys_it_and_not_for_a_ramp():
    labels = np.zeros((30, 20), np.uint8)  # sky
    labels[12:] = 3  # road below row 12
    labels[14:22, 5:12] = 8  # a car standing on the road at row 22
    truth = _ground_plane_depth(30, 20, horizon=10.0, scale=40.0)
    truth[14:22, 5:12] = truth[22, 5]  # the car is as far as the road at its wheels
    ramp = _ground_plane_depth(30, 20, horizon=10.0, scale=40.0)  # the car reads like the road behind it
    assert _geometry(truth, labels) < 1e-6
    assert _geometry(ramp, labels) > 0.05
    assert _geometry(np.full((30, 20), 10.0, np.float32), labels) > 0.003  # a flat road is wrong too


def test_contact_held_to_the_ground_moves_only_the_thing_standing_on_it():
    labels = np.zeros((30, 20), np.uint8)
    labels[12:] = 3
    labels[14:22, 5:12] = 8
    surface = surface_from_labels(labels)
    anchors = torch.from_numpy(column_anchors(surface))[None]
    gradients = {}
    for moves in (True, False):
        depth = torch.from_numpy(_ground_plane_depth(30, 20, horizon=10.0, scale=40.0))[None, None].requires_grad_()
        depth.data[0, 0, 14:22, 5:12] = 2.0  # the car reads far too near
        geometry_loss(depth, torch.from_numpy(surface)[None], anchors, margin=0.0, contact_moves_ground=moves).backward()
        gradients[moves] = depth.grad[0, 0]
    wheels = (slice(22, 23), slice(5, 12))  # the road pixels the car's columns are anchored to
    assert gradients[True][wheels].abs().sum() > gradients[False][wheels].abs().sum()
    assert torch.equal(gradients[True][14:22, 5:12], gradients[False][14:22, 5:12])


def _tilted_plane_depth(height: int, width: int, pitch: float, roll: float, scale: float) -> torch.Tensor:
    """Depth along the optical axis of a plane seen with some pitch and roll: 1/depth affine in x, y."""
    ys = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    xs = torch.arange(width, dtype=torch.float64)[None].expand(height, width)
    inverse = (pitch * (ys - height / 3) + roll * (xs - width / 2)) / scale
    return torch.where(inverse > 0, 1.0 / inverse.clamp(min=1e-6), torch.full_like(inverse, 500.0))


def test_ground_plane_residual_is_zero_for_any_plane_and_not_for_a_bent_road():
    ground = torch.zeros(40, 30, dtype=torch.bool)
    ground[20:] = True
    for pitch, roll, scale in ((1.0, 0.0, 40.0), (0.7, 0.1, 12.0), (1.3, -0.2, 300.0)):
        plane = _tilted_plane_depth(40, 30, pitch, roll, scale)
        assert plane_residuals(plane[None], ground[None]).item() < 1e-6
    plane = _tilted_plane_depth(40, 30, 1.0, 0.0, 40.0)
    rows = torch.arange(40, dtype=torch.float64)[:, None]
    bent = plane * (1 + 0.3 * torch.sin(rows / 4))  # a road that rises and falls: not one plane
    assert plane_residuals(bent[None], ground[None]).item() > 0.05
    assert plane_residuals(bent[None], torch.zeros_like(ground)[None]).numel() == 0  # no ground, no verdict
    depth = bent[None, None].float().requires_grad_()
    loss = ground_plane_loss(depth, ground[None].long() * GROUND)
    loss.backward()
    assert loss.item() > 0.05 and depth.grad[0, 0, 20:].abs().sum() > 0 and depth.grad[0, 0, :20].abs().sum() == 0


def test_ground_plane_log_loss_pulls_a_compressed_far_road_out_to_its_plane():
    ground = torch.zeros(40, 30, dtype=torch.bool)
    ground[16:] = True
    surface = ground[None].long() * GROUND
    for pitch, roll, scale in ((1.0, 0.0, 400.0), (0.7, 0.1, 120.0)):
        plane = _tilted_plane_depth(40, 30, pitch, roll, scale)
        assert ground_plane_log_loss(plane[None, None].float(), surface, 80.0).item() < 1e-4
    plane = _tilted_plane_depth(40, 30, 1.0, 0.0, 400.0)
    squeezed = plane.clamp(max=float(plane[30, 0])).float()[None, None].requires_grad_()  # far road no farther than row 30
    loss = ground_plane_log_loss(squeezed, surface, 80.0)
    loss.backward()
    assert loss.item() > 0.05
    assert (squeezed.grad[0, 0, 16:23] < 0).all()  # descending the loss makes the far road deeper
    assert squeezed.grad[0, 0, :16].abs().sum() == 0
    assert ground_plane_log_loss(squeezed, torch.zeros_like(surface), 80.0).item() == 0.0
    log_depth = squeezed.detach().log()
    flatter = (0.3 * log_depth + 0.7 * log_depth[:, :, 16:].mean()).exp()  # the same road, its ramp cut to 30 %
    assert ground_plane_log_loss(flatter, surface, 80.0).item() > 0.6 * loss.item()  # flattening buys little


def test_surface_maps_mark_ground_and_standing_things():
    assert surface_from_labels(np.array([[3, 4, 8, 0, VOID]], np.uint8))[0, :2].tolist() == [GROUND, GROUND]
    assert surface_from_labels(np.array([[0, VOID]], np.uint8)).tolist() == [[0, 0]]
    groups = surface_from_groups(np.array([[0, 1, 3, 6, IDD_IGNORE]], np.uint8))
    assert groups[0, :2].tolist() == [GROUND, GROUND] and groups[0, 2] >= 2 and groups[0, 3:].tolist() == [0, 0]


def test_standing_objects_need_ground_below_them():
    labels = np.zeros((40, 40), np.uint8)
    labels[20:] = 3
    labels[10:25, 5:20] = 8  # a car on the road
    labels[2:8, 25:38] = 8  # a car-coloured blob in the sky: not standing on anything
    found = standing_objects(labels, 8, min_area=20)
    assert len(found) == 1 and found[0].width == 15 and found[0].ground[25:28, 5:20].all()


def test_infer_size_matches_the_products_auto_rule():
    assert infer_size(960, 540, 360) == (640, 360) and infer_size(320, 227, 360) == (320, 227)
    x, y, w, h = CLIP_SKY_REGION
    assert 0 <= x and x + w <= 960 and 0 <= y and y + h <= 540


def test_road_segmentation_trains_on_camvid_and_idd_groups(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid")
    write_tiny_idd(tmp_path / "idd-lite")
    chosen = recipe("seg-roads", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=3, steps=2,
                    warmup=0, model_kwargs=TINY_SEG, init="", eval_every=0)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")
    samples = [objective.sample(np.random.default_rng(s), s) for s in range(12)]
    assert any((s["groups"] != IDD_IGNORE).any() and (s["labels"] == VOID).all() for s in samples)
    assert any((s["labels"] != VOID).any() and (s["groups"] == IDD_IGNORE).all() for s in samples)
    record = train(chosen, tmp_path / "run", log=lambda line: None)
    metrics = record["metrics"]
    assert {"miou", "idd_group_miou", "idd_sky_iou", "road_score", "idd_sky_to_far_objects"} <= set(metrics)
    assert metrics["road_score"] == pytest.approx((metrics["miou"] + metrics["idd_group_miou"]) / 2)


def test_joint_roads_mixes_synthetic_depth_with_real_geometry(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    write_tiny_idd(tmp_path / "idd-lite")
    options = {**recipe("joint-roads").options, "train_towns": [1], "frames_per_town": 2, "frame_step": 3,
               "eval_towns": [2], "eval_frames_per_town": 1, "synth_share": 0.5, "plane_weight": 1.0,
               "plane_log_weight": 1.0}
    chosen = recipe("joint-roads", camvid_root=str(camvid), size=(32, 24), eval_size=(32, 24), batch=2, steps=2,
                    warmup=0, model_kwargs=TINY_SEG, options=options, init="", eval_every=0)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "run" / "cache")
    samples = [objective.sample(np.random.default_rng(s), s) for s in range(10)]
    assert any((s["depth"] > 0).any() for s in samples) and any((s["surface"] == GROUND).any() for s in samples)
    assert all(set(s) == {"image", "labels", "groups", "depth", "surface", "anchors"} for s in samples)
    record = train(chosen, tmp_path / "run", log=lambda line: None)
    assert {"joint_score", "synth_abs_rel", "idd_group_miou", "car_contact_within_25",
            "prior_car_contact_within_25", "ground_plane_residual"} <= set(record["metrics"])
    with pytest.raises(NetsError, match="also training towns"):
        make_objective(dataclasses.replace(chosen, options={**options, "eval_towns": [1]}),
                       zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")


def test_fine_tuning_from_shipped_weights_undoes_and_redoes_the_prior_correction(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid")
    chosen = recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=1, steps=1,
                    warmup=0, init="zoo:lwrefinenet-mbv2-camvid", eval_every=0)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")
    shipped, _ = zoo.load(chosen.model)
    round_trip = objective.deployed(objective.undeployed(shipped))
    assert torch.allclose(round_trip.classifier.bias, shipped.classifier.bias, atol=1e-5)
    assert not torch.allclose(objective.undeployed(shipped).classifier.bias, shipped.classifier.bias)
    lines: list[str] = []
    assert train(chosen, tmp_path / "run", until=0, log=lines.append) is None
    assert any("starting seg-camvid from the shipped weights zoo:lwrefinenet-mbv2-camvid" in line for line in lines)
    with pytest.raises(NetsError, match="'joint-mbv2-camvid' is another network"):
        train(dataclasses.replace(chosen, init="zoo:joint-mbv2-camvid"), tmp_path / "other", log=lambda line: None)
    # another shipped model of the same network is a valid start (e.g. the CamVid-only weights)
    sibling = dataclasses.replace(chosen, init="zoo:lwrefinenet-mbv2-camvid-only")
    assert train(sibling, tmp_path / "sibling", until=0, log=lines.append) is None
    assert any("from the shipped weights zoo:lwrefinenet-mbv2-camvid-only" in line for line in lines)


def test_same_layout_tells_one_network_from_another():
    assert zoo.same_layout("joint-mbv2-camvid", "joint-mbv2-camvid-480")
    assert zoo.same_layout("lwrefinenet-mbv2-camvid", "lwrefinenet-mbv2-camvid-only")
    assert not zoo.same_layout("joint-mbv2-camvid", "joint-mbv2-kitti")  # other classes
    assert not zoo.same_layout("rednet-jpeg", "rednet20-jpeg")  # other depth
    with pytest.raises(NetsError, match="unknown model"):
        zoo.same_layout("joint-mbv2-camvid", "nope")


def test_a_run_started_from_shipped_weights_ships_with_their_history(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=1,
                    warmup=0, init="zoo:lwrefinenet-mbv2-camvid", eval_every=0)
    shipped = zoo.spec(chosen.model)
    train(chosen, tmp_path / "run", command="train stage 2", log=lambda line: None)
    entry = export(tmp_path / "run", tmp_path / "weights", fps_frames=1)
    before = json.loads((zoo.WEIGHTS_DIR / "manifest.json").read_text())["models"][chosen.model]
    assert entry["command"] == f"{before['command']} && {before['export_command']} && train stage 2"
    assert entry["steps"] == before["steps"] + 1 and entry["started_from"] == {
        "model": chosen.model, "sha256": shipped.sha256}


def test_confusion_rows_are_percentages_of_each_true_class():
    counts = torch.tensor([[3, 1, 0], [0, 0, 4], [1, 1, 2]])
    table = markdown_rows(counts, ["a", "b", "c"], ["a", "b"]).splitlines()
    assert table[2] == "| a | 75.0 | 25.0 | 0.0 |" and table[3] == "| b | 0.0 | 0.0 | 100.0 |" and len(table) == 4


def test_confusion_command_prints_camvid_and_idd_rows(tmp_path, capsys):
    from nets.train.__main__ import main

    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    write_tiny_idd(tmp_path / "idd-lite")
    assert main(["confusion", "seg-roads", "--camvid", str(camvid)]) == 0
    out = capsys.readouterr().out
    assert "| Sky |" in out and "| sky |" in out and "IDD-lite held-out sequences (2 frames)" in out
    assert main(["confusion", "rednet-jpeg", "--camvid", str(camvid)]) == 1


def test_a_later_stage_of_a_run_started_from_shipped_weights_still_names_them(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    first = recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=1,
                   warmup=0, init="zoo:lwrefinenet-mbv2-camvid", eval_every=0)
    train(first, tmp_path / "stage1", command="train stage 1", log=lambda line: None)
    second = dataclasses.replace(first, init=str(tmp_path / "stage1"))
    train(second, tmp_path / "stage2", command="train stage 2", log=lambda line: None)
    entry = export(tmp_path / "stage2", tmp_path / "weights", fps_frames=1)
    assert entry["started_from"]["model"] == "lwrefinenet-mbv2-camvid"
    assert entry["command"].endswith("&& train stage 1 && train stage 2")


def test_clip_car_share_scores_the_centre_of_each_marked_car():
    from nets.train.roads import CLIP_CARS, clip_car_share

    class Painter(torch.nn.Module):
        """Scores Car inside the marked boxes of the frames it is told, Road elsewhere."""

        def __init__(self, boxes):
            super().__init__()
            self.boxes = boxes

        def forward(self, x):
            scores = torch.zeros(x.shape[0], 11, x.shape[2], x.shape[3])
            scores[:, 3] = 1.0
            sx, sy = x.shape[3] / 960, x.shape[2] / 540
            for x0, y0, x1, y1 in self.boxes:
                scores[:, 8, round(y0 * sy):round(y1 * sy), round(x0 * sx):round(x1 * sx)] = 2.0
            return scores

    frames = {index: np.zeros((540, 960, 3), np.uint8) for index in CLIP_CARS}
    normalise = lambda batch: batch  # noqa: E731
    everything = [box for boxes in CLIP_CARS.values() for box in boxes]
    found = clip_car_share(Painter(everything), frames, 360, normalise, torch.device("cpu"))
    assert found["clip_car_share"] == pytest.approx(1.0) and found["clip_cars_checked"] == len(everything)
    first = CLIP_CARS[0][0]
    one = clip_car_share(Painter([first]), {0: frames[0]}, 360, normalise, torch.device("cpu"))
    assert one["clip_cars_checked"] == len(CLIP_CARS[0]) and one["clip_car_worst"] == 0.0
    assert one["clip_cars_found"] == pytest.approx(1 / len(CLIP_CARS[0]))
    assert clip_car_share(Painter([]), {}, 360, normalise, torch.device("cpu")) == {}
