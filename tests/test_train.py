"""Training infrastructure: metrics by the published protocols, resumable training, export."""

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
from nets.train.data import VOID, SegAugment, StepBatches, augment_pair, class_weights
from nets.train.degrade import add_noise, downscale_bicubic, jpeg_roundtrip
from nets.train.export import export
from nets.zoo import sha256_of
from nets.train.losses import balanced_logistic_loss, berhu_loss, siamfc_labels
from nets.train.loop import build_model, train
from nets.train.metrics import ConfusionMatrix, DepthErrors, box_iou, median_scaled, psnr, psnr_y, success_auc
from nets.train.recipes import parse_size, recipe

TINY_SEG = {"width_mult": 0.25, "decoder_channels": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_tiny_camvid(root: Path, train: int = 4, val: int = 2, size: tuple[int, int] = (64, 48)) -> Path:
    """CamVid-like folders of blocky scenes whose labels follow the colours, with a void border."""
    rng = np.random.default_rng(0)
    width, height = size
    for split, count in (("train", train), ("val", val)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(count):
            labels = np.zeros((height, width), np.uint8)
            labels[height // 2:] = 3
            x = int(rng.integers(0, width - 16))
            labels[height // 3:height - 4, x:x + 16] = 8
            labels[:2] = VOID
            palette = rng.integers(0, 256, size=(12, 3), dtype=np.uint8)
            image = palette[labels]
            cv2.imwrite(str(root / split / "images" / f"f{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / split / "labels" / f"f{i}.png"), labels)
    return root


def test_miou_accumulates_over_the_split_and_ignores_void():
    confusion = ConfusionMatrix(3)
    confusion.update(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 1, 3]]))
    confusion.update(torch.tensor([[2, 0]]), torch.tensor([[2, 2]]))
    # class 0: hits 2, union 3; class 1: hits 1, union 1; class 2: hits 1, union 2 (void pixel dropped)
    assert confusion.miou() == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    per_image_mean = ((2 / 2 + 1 / 1) / 2 + (1 / 2 + 0) / 2) / 2
    assert confusion.miou() != pytest.approx(per_image_mean)
    assert confusion.pixel_accuracy() == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion.update(torch.zeros(2), torch.zeros(3))


def test_depth_errors_on_valid_pixels():
    errors = DepthErrors()
    truth = torch.tensor([1.0, 2.0, 4.0, 1000.0])
    prediction = torch.tensor([1.0, 3.0, 4.0, 1.0])
    errors.update(prediction, truth, truth < 1000)
    result = errors.result()
    assert result["abs_rel"] == pytest.approx(0.5 / 3)
    assert result["rmse"] == pytest.approx((1 / 3) ** 0.5)
    assert result["delta1"] == pytest.approx(2 / 3)


def test_median_scaling_removes_the_global_scale_only():
    truth = torch.tensor([1.0, 2.0, 4.0, 1000.0])
    valid = truth < 1000
    doubled = median_scaled(truth * 2, truth, valid)
    assert torch.allclose(doubled[valid], truth[valid])
    shape_wrong = median_scaled(torch.tensor([4.0, 2.0, 1.0, 5.0]), truth, valid)
    assert shape_wrong[1] == pytest.approx(2.0) and shape_wrong[0] == pytest.approx(4.0)
    assert torch.equal(median_scaled(truth, truth, torch.zeros(4, dtype=torch.bool)), truth)


def test_psnr_on_known_arrays():
    reference = np.zeros((4, 4, 3), np.uint8)
    estimate = reference.copy()
    estimate[0, 0, 0] = 255
    assert psnr(estimate, reference) == pytest.approx(10 * np.log10(48))
    assert psnr(reference, reference) == float("inf")
    grey = np.full((8, 8, 3), 100, np.uint8)
    shifted = grey.copy()
    shifted[2:6, 2:6] += 10
    shifted[0] = 0
    y_step = 10 * (65.481 + 128.553 + 24.966) / 255
    assert psnr_y(shifted, grey, border=2) == pytest.approx(10 * np.log10(255 ** 2 / y_step ** 2))
    with pytest.raises(ValueError, match="equal shapes"):
        psnr(grey, grey[:4])


def test_success_auc_on_known_ious():
    assert success_auc([1.0, 1.0]) == pytest.approx(20 / 21)
    assert success_auc([0.0, 0.0]) == 0.0
    assert success_auc([0.5]) == pytest.approx(10 / 21)
    assert box_iou((0, 0, 2, 2), (1, 0, 2, 2)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        success_auc([])


def test_class_weights_balance_rare_classes():
    labels = [np.array([[0, 0, 0, 1]], np.uint8), np.array([[0, 0, VOID, VOID]], np.uint8)]
    median = class_weights(labels, num_classes=3)
    assert median[2] == 0 and median[1] > median[0] > 0
    log = class_weights(labels, num_classes=3, method="log")
    assert log[1] > log[0] > 0
    with pytest.raises(NetsError, match="median"):
        class_weights(labels, method="sqrt")


def test_augmentation_keeps_labels_aligned_and_pads_with_void():
    image = np.zeros((20, 30, 3), np.uint8)
    labels = np.zeros((20, 30), np.uint8)
    image[:, 15:] = 200
    labels[:, 15:] = 5
    augment = SegAugment(crop=(40, 32), scale=(1.0, 1.0), flip=True, jitter=0.0)
    out_image, out_labels = augment_pair(image, labels, augment, np.random.default_rng(1))
    assert out_image.shape == (32, 40, 3) and out_labels.shape == (32, 40)
    real = out_labels != VOID
    assert (out_labels == VOID).any()
    assert np.array_equal(out_image[real][:, 0] == 200, out_labels[real] == 5)


def test_batches_depend_only_on_seed_and_step():
    batches = StepBatches(lambda rng, step: {"x": rng.integers(0, 1000, size=3)}, batch=2, seed=7, steps=10)
    assert torch.equal(batches[3]["x"], batches[3]["x"])
    assert not torch.equal(batches[3]["x"], batches[4]["x"])


def test_losses():
    truth = torch.tensor([1.0, 2.0, 3.0, 9.0])
    assert berhu_loss(truth, truth, torch.ones(4, dtype=torch.bool)) == 0
    prediction = torch.tensor([1.0, 2.0, 4.0, 0.0])
    valid = torch.tensor([True, True, True, False])
    assert berhu_loss(prediction, truth, valid) == pytest.approx((1 + 0.04) / 0.4 / 3)
    labels = siamfc_labels(17, 2)
    assert labels[8, 8] == 1 and labels[0, 0] == 0 and labels.sum() == 13
    perfect = (labels * 2 - 1)[None, None] * 50
    assert balanced_logistic_loss(perfect, labels) < 1e-6 < balanced_logistic_loss(-perfect, labels)


def test_degradations():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    noisy = add_noise(image, 25.0, rng)
    assert noisy.dtype == np.uint8 and 15 < np.std(noisy.astype(float) - image) < 30
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert np.array_equal(downscale_bicubic(flat, 4), np.full((2, 2, 3), 77, np.uint8))
    assert jpeg_roundtrip(image, 10).shape == image.shape
    with pytest.raises(NetsError, match="multiple of the scale"):
        downscale_bicubic(image[:30], 4)


def test_recipes_and_sizes():
    assert parse_size("240x180") == (240, 180)
    with pytest.raises(NetsError, match="WIDTHxHEIGHT"):
        parse_size("240")
    assert recipe("seg-camvid", gpu=True).size == (480, 360)
    with pytest.raises(NetsError, match="unknown recipe"):
        recipe("nope")
    with pytest.raises(NetsError, match="no setting"):
        recipe("seg-camvid", colour=1)
    for name in ("seg-camvid", "joint-camvid-synth", "rednet-sr4"):
        zoo.spec(recipe(name).model)


def _tiny_seg_recipe(camvid: Path, steps: int):
    return recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=steps,
                  warmup=1, model_kwargs=TINY_SEG, checkpoint_every=1, log_every=1, eval_every=0)


def test_resumed_training_matches_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    camvid = write_tiny_camvid(tmp_path / "camvid")
    chosen = _tiny_seg_recipe(camvid, steps=4)
    lines: list[str] = []
    assert train(chosen, tmp_path / "split", until=2, log=lines.append) is None
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["step"] == 2
    resumed = train(chosen, tmp_path / "split", log=lines.append)
    whole = train(chosen, tmp_path / "whole", log=lines.append)
    assert any(line.startswith("resuming seg-camvid at step 2") for line in lines)
    assert any(line.startswith("step 4/4 | loss") for line in lines)
    split_state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    whole_state = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(split_state[k], whole_state[k]) for k in whole_state)
    assert resumed["metrics"] == whole["metrics"] and 0 <= whole["metrics"]["miou"] <= 1
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["steps"] == 4
    with pytest.raises(NetsError, match="different recipe"):
        train(dataclasses.replace(chosen, lr=0.5), tmp_path / "split")


def test_a_moving_average_of_the_weights_is_evaluated_kept_as_best_and_resumed(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid")
    plain = _tiny_seg_recipe(camvid, steps=4)
    averaged = dataclasses.replace(plain, ema=0.5)
    train(averaged, tmp_path / "split", until=2, log=lambda line: None)
    train(averaged, tmp_path / "split", log=lambda line: None)
    whole = train(averaged, tmp_path / "whole", log=lambda line: None)
    raw = train(plain, tmp_path / "raw", log=lambda line: None)
    split_best = torch.load(tmp_path / "split" / "best.pt", weights_only=True)["model"]
    whole_best = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["model"]
    whole_last = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    raw_last = torch.load(tmp_path / "raw" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(split_best[k], whole_best[k]) for k in whole_best)
    assert all(torch.equal(whole_last["model"][k], raw_last[k]) for k in raw_last)  # the average never steers training
    averaged_weights = {k[len("module."):]: v for k, v in whole_last["average"].items() if k.startswith("module.")}
    assert all(torch.equal(averaged_weights[k], whole_best[k]) for k in whole_best)
    moved = [k for k in raw_last if raw_last[k].is_floating_point() and not torch.equal(raw_last[k], whole_best[k])]
    assert moved and whole["metrics"] != raw["metrics"]
    with pytest.raises(NetsError, match="ema must be in"):
        dataclasses.replace(plain, ema=1.0)


def test_extending_a_finished_run_trains_on_and_records_every_command(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid")
    run = tmp_path / "run"
    first = train(_tiny_seg_recipe(camvid, steps=2), run, command="train --steps 2", log=lambda line: None)
    assert first["steps"] == 2
    longer = train(_tiny_seg_recipe(camvid, steps=3), run, command="train --steps 3", log=lambda line: None)
    assert longer["steps"] == 3 and torch.load(run / "last.pt", weights_only=True)["step"] == 3
    train(_tiny_seg_recipe(camvid, steps=3), run, command="train --steps 3", log=lambda line: None)
    assert (run / "command.txt").read_text().splitlines() == ["train --steps 2", "train --steps 3"]


def test_export_writes_fp16_weights_that_zoo_loads(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = recipe("rednet-denoise", camvid_root=str(camvid), size=(16, 16), batch=2, steps=1,
                    options={**recipe("rednet-denoise").options, "eval_images": 1})
    train(chosen, tmp_path / "run", command="python -m nets.train train rednet-denoise", log=lambda line: None)
    weights = tmp_path / "weights"
    entry = export(tmp_path / "run", weights, fps_frames=1)
    path = weights / entry["file"]
    assert entry["sha256"] == sha256_of(path)
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    manifest = json.loads((weights / "manifest.json").read_text())["models"]["rednet-denoise"]
    assert manifest["command"] == "python -m nets.train train rednet-denoise" and manifest["fps_cpu_480x360"] > 0
    assert set(manifest["metrics"]) == {"psnr", "baseline_psnr", "gain_db"}
    model, model_spec = zoo.load("rednet-denoise", weights)
    assert model_spec.sha256 == entry["sha256"]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], best[k].half().float()) for k in best)


def _prior_offsets(camvid: Path) -> torch.Tensor:
    """log of the median-frequency class weights of the tiny train split (0 for absent classes)."""
    labels = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in sorted((camvid / "train" / "labels").iterdir())]
    weights = torch.from_numpy(class_weights(labels, method="median"))
    return torch.where(weights > 0, weights.log(), torch.zeros_like(weights))


def test_deployed_segmentation_scores_drop_the_class_weights_prior(tmp_path):
    from nets.train.objectives import make_objective

    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = _tiny_seg_recipe(camvid, steps=1)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")
    torch.manual_seed(0)
    model = build_model(chosen).eval()
    offsets = _prior_offsets(camvid)
    assert offsets.abs().max() > 0.1  # the two classes of the tiny split have different frequencies
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        raw = model(x)
        shipped = objective.deployed(model)(x)
        assert torch.equal(model(x), raw)  # the trained model itself is left alone
    assert torch.allclose(shipped, raw - offsets.view(1, -1, 1, 1), atol=1e-5)


def test_exported_segmentation_weights_carry_the_prior_correction(tmp_path):
    from nets.train.commands import eval_command

    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=1,
                    warmup=0, eval_every=0)
    train(chosen, tmp_path / "run", log=lambda line: None)
    # Scores 1.5 x the offsets everywhere: the trained net says the rare class, the deployed one
    # (0.5 x) too, and one corrected twice (-0.5 x) would say the frequent class.
    offsets = _prior_offsets(camvid)
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    best["model"]["segm.weight"].zero_()
    best["model"]["segm.bias"] = 1.5 * offsets
    torch.save(best, tmp_path / "run" / "best.pt")
    export(tmp_path / "run", tmp_path / "weights", fps_frames=1)
    model, _ = zoo.load(chosen.model, tmp_path / "weights")
    assert torch.equal(model.classifier.bias.detach(), (0.5 * offsets).half().float())
    from_run = eval_command(chosen, str(tmp_path / "run"), None, "cpu")
    shipped = eval_command(chosen, None, str(tmp_path / "weights"), "cpu")
    assert shipped == pytest.approx(from_run) and from_run["miou"] > 0


def test_source_scale_shrinks_the_frame_before_cutting_the_clean_patch(tmp_path):
    from nets.train.objectives import make_objective

    camvid = write_tiny_camvid(tmp_path / "camvid", train=1, val=1, size=(48, 48))
    chosen = recipe("rednet-sr2", camvid_root=str(camvid), size=(24, 24),
                    options={**recipe("rednet-sr2").options, "source_scale": (0.5, 0.5)})
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "cache")
    shrunk = cv2.resize(objective.train_split.images[0], (24, 24), interpolation=cv2.INTER_AREA)
    views = [np.rot90(shrunk, k) for k in range(4)]
    views += [view[:, ::-1] for view in views]
    for seed in range(4):
        sample = objective.sample(np.random.default_rng(seed), 0)
        assert any(np.array_equal(sample["target"], view) for view in views)
        assert sample["input"].shape == (12, 12, 3)
    tiny = dataclasses.replace(chosen, options={**chosen.options, "source_scale": (0.1, 0.1)})
    objective = make_objective(tiny, zoo.spec(tiny.model), torch.device("cpu"), tmp_path / "cache")
    assert objective.sample(np.random.default_rng(0), 0)["target"].shape == (24, 24, 3)  # never below the patch


def _tiny_denoise_recipe(camvid: Path, steps: int, **changes):
    settings = {"size": (16, 16), **changes}
    return recipe("rednet-denoise", camvid_root=str(camvid), batch=2, steps=steps,
                  options={**recipe("rednet-denoise").options, "eval_images": 1}, **settings)


def test_a_run_can_start_from_an_earlier_runs_best_weights_and_ships_with_its_history(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    parent, child = tmp_path / "parent", tmp_path / "child"
    train(_tiny_denoise_recipe(camvid, 2), parent, command="train parent", log=lambda line: None)
    fine_tune = _tiny_denoise_recipe(camvid, 1, init=str(parent), lr=1e-5, size=(24, 24))
    lines: list[str] = []
    assert train(fine_tune, child, until=0, command="train child", log=lines.append) is None
    assert lines[0] == f"starting rednet-denoise from the best weights of {parent}"
    received = torch.load(child / "last.pt", weights_only=True)["model"]
    best = torch.load(parent / "best.pt", weights_only=True)
    assert all(torch.equal(received[k], best["model"][k]) for k in received)
    train(fine_tune, child, command="train child", log=lines.append)
    assert any(line.startswith("resuming rednet-denoise at step 0") for line in lines)
    entry = export(child, tmp_path / "weights", fps_frames=1)
    assert entry["command"] == "train parent && train child"
    (parent / "recipe.json").write_text("{not json")
    with pytest.raises(NetsError, match="cannot read the recipe of run"):
        export(child, tmp_path / "weights", fps_frames=1)
    assert (entry["steps"], entry["best_step"], entry["train_size"]) == (best["step"] + 1, best["step"] + 1, "24x24")


def test_starting_from_a_missing_or_different_run_is_one_clear_error(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    with pytest.raises(NetsError, match="cannot start from run"):
        train(_tiny_denoise_recipe(camvid, 1, init=str(tmp_path / "absent")), tmp_path / "a", log=lambda line: None)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "recipe.json").write_text(json.dumps(_tiny_denoise_recipe(camvid, 1).to_dict()))
    (tmp_path / "broken" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NetsError, match="cannot start from run .*broken: ") as error:
        train(_tiny_denoise_recipe(camvid, 1, init=str(tmp_path / "broken")), tmp_path / "c", log=lambda line: None)
    assert "\n" not in str(error.value)
    train(_tiny_denoise_recipe(camvid, 1), tmp_path / "denoise", log=lambda line: None)
    other = dataclasses.replace(_tiny_seg_recipe(camvid, 1), init=str(tmp_path / "denoise"))
    with pytest.raises(NetsError, match="trained 'rednet-denoise'"):
        train(other, tmp_path / "b", log=lambda line: None)


def test_a_deeper_red_net_starts_from_a_shallower_run_with_the_same_output(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    shallow_recipe = _tiny_denoise_recipe(camvid, 1, model_kwargs={"depth": 4, "width": 4})
    train(shallow_recipe, tmp_path / "shallow", log=lambda line: None)
    deeper = _tiny_denoise_recipe(camvid, 1, init=str(tmp_path / "shallow"), model_kwargs={"depth": 8, "width": 4})
    train(deeper, tmp_path / "deep", until=0, log=lambda line: None)
    shallow, deep = build_model(shallow_recipe), build_model(deeper)
    shallow.load_state_dict(torch.load(tmp_path / "shallow" / "best.pt", weights_only=True)["model"])
    deep.load_state_dict(torch.load(tmp_path / "deep" / "last.pt", weights_only=True)["model"])
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), shallow(x), rtol=0, atol=1e-6)
    for changed in ({"depth": 8, "width": 6}, {"depth": 4, "width": 4, "mode": "jpeg"}):
        other = _tiny_denoise_recipe(camvid, 1, init=str(tmp_path / "shallow"), model_kwargs=changed)
        with pytest.raises(NetsError, match="or a shallower RED-Net of it"):
            train(other, tmp_path / "other", log=lambda line: None)


def test_runs_saved_before_a_recipe_field_existed_still_resume(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = _tiny_denoise_recipe(camvid, 2)
    train(chosen, tmp_path / "run", until=1, log=lambda line: None)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    saved = json.loads(state["recipe"])
    del saved["init"]
    state["recipe"] = json.dumps(saved)
    torch.save(state, tmp_path / "run" / "last.pt")
    assert train(chosen, tmp_path / "run", log=lambda line: None)["steps"] == 2


def test_export_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(NetsError, match="not a finished run"):
        export(tmp_path, tmp_path / "weights")


def test_cli_commands_report_bad_input_in_one_line(tmp_path):
    from click.testing import CliRunner

    from nets.train.__main__ import main as module_main
    from stream.train_cli import evaluate, train as train_cmd

    result = CliRunner().invoke(train_cmd, ["seg-camvid", "--run", str(tmp_path), "--size", "12"])
    assert result.exit_code == 1 and "WIDTHxHEIGHT" in result.output
    result = CliRunner().invoke(evaluate, ["seg-camvid", "--run", str(tmp_path)])
    assert result.exit_code == 1 and "best.pt" in result.output
    assert module_main(["export", "--run", str(tmp_path)]) == 1


def test_command_line_overrides_reach_the_recipe():
    from nets.train.commands import make_recipe

    chosen = make_recipe("rednet-jpeg", size="32x24", steps=7, batch=3, seed=5, lr=2e-3, init="runs/jpeg")
    assert (chosen.size, chosen.steps, chosen.batch, chosen.seed, chosen.lr) == ((32, 24), 7, 3, 5, 2e-3)
    assert chosen.init == "runs/jpeg" and make_recipe("rednet-jpeg").init == ""
    assert make_recipe("rednet-jpeg").lr == recipe("rednet-jpeg").lr
    assert make_recipe("rednet-jpeg", ema=0.99).ema == 0.99 and make_recipe("rednet-jpeg").ema == 0.0
    resized = make_recipe("joint-roads", size="480x360", eval_size="480x360")
    assert (resized.size, resized.eval_size) == ((480, 360), (480, 360))
    assert make_recipe("joint-roads", size="480x360").eval_size == recipe("joint-roads").eval_size == (240, 180)
    with pytest.raises(NetsError, match="WIDTHxHEIGHT"):
        make_recipe("joint-roads", eval_size="480")
    with pytest.raises(NetsError, match="lr must be positive"):
        make_recipe("rednet-jpeg", lr=0.0)


def test_option_flags_set_recipe_options_and_reject_unknown_keys(tmp_path, capsys):
    from click.testing import CliRunner

    from nets.train.__main__ import main as module_main
    from nets.train.commands import make_recipe
    from stream.train_cli import train as train_cmd

    chosen = make_recipe("rednet-jpeg", gpu=True, options=["quality=[10, 30]", "eval_quality=10"])
    assert chosen.options == {**recipe("rednet-jpeg", gpu=True).options, "quality": [10, 30], "eval_quality": 10}
    assert make_recipe("rednet-sr2", options=["source_scale=[0.5, 1.0]"]).options["source_scale"] == [0.5, 1.0]
    with pytest.raises(NetsError, match="KEY one of"):
        make_recipe("seg-camvid", options=["source_scale=[0.5, 1.0]"])  # only restoration reads it
    with pytest.raises(NetsError, match="not a JSON value"):
        make_recipe("rednet-jpeg", options=["quality=[10, 30"])
    assert module_main(["train", "rednet-jpeg", "--run", str(tmp_path), "--option", "qualty=[10, 30]"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    result = CliRunner().invoke(train_cmd, ["rednet-jpeg", "--run", str(tmp_path), "--option", "quality"])
    assert result.exit_code == 1 and "KEY=VALUE" in result.output
    assert module_main(["train", "rednet-jpeg", "--run", str(tmp_path), "--ema", "1.5"]) == 1
    assert "ema must be in [0, 1)" in capsys.readouterr().err
    result = CliRunner().invoke(train_cmd, ["rednet-jpeg", "--run", str(tmp_path), "--ema", "1.5"])
    assert result.exit_code == 1 and "ema must be in [0, 1)" in result.output


def test_joint_training_mixes_camvid_and_synthetic_depth(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    options = {**recipe("joint-camvid-synth").options, "train_towns": [1], "frames_per_town": 2, "frame_step": 3,
               "eval_towns": [2], "eval_frames_per_town": 1}
    chosen = recipe("joint-camvid-synth", camvid_root=str(camvid), size=(32, 24), eval_size=(32, 24), batch=2,
                    steps=2, warmup=0, model_kwargs=TINY_SEG, options=options)
    record = train(chosen, tmp_path / "run", log=lambda line: None)
    assert {"miou", "synth_abs_rel", "synth_rmse", "synth_delta1", "synth_miou", "synth_scaled_abs_rel",
            "synth_scaled_delta1"} <= set(record["metrics"])
    assert record["metrics"]["synth_abs_rel"] > 0 and record["metrics"]["synth_scaled_abs_rel"] > 0
    assert len(list((tmp_path / "run" / "cache").glob("town*.npz"))) >= 2
    leaky = dataclasses.replace(chosen, options={**options, "eval_towns": [1]})
    with pytest.raises(NetsError, match="also training towns"):
        train(leaky, tmp_path / "leaky", log=lambda line: None)


def test_bundled_photos_are_rgb_uint8_colour_photographs():
    import importlib.util

    if importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image is not installed (pip install -e '.[train]')")
    from nets.train.photos import bundled_photos

    photos = dict(bundled_photos())
    assert set(photos) == {"astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
                           "motorcycle_right.png", "rocket.jpg"}
    assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for image in photos.values())
    assert photos["astronaut.png"].shape == (512, 512, 3)
    red, green, blue = photos["coffee.png"][:200].reshape(-1, 3).mean(0)
    assert red > blue  # RGB order: the red-brown coffee scene, not OpenCV's BGR


def test_sharp_grey_images_are_the_grey_photographs_as_rgb():
    import importlib.util

    if importlib.util.find_spec("skimage") is None:
        pytest.skip("scikit-image is not installed (pip install -e '.[train]')")
    from nets.train.photos import SHARP_GREY, bundled_photos, sharp_grey_images

    images = dict(sharp_grey_images())
    assert tuple(images) == SHARP_GREY and not set(images) & {name for name, _ in bundled_photos()}
    assert images["camera.png"].shape == (512, 512, 3) and images["camera.png"].dtype == np.uint8
    assert all(np.array_equal(image[..., 0], image[..., 2]) for image in images.values())


def test_bundled_photos_without_scikit_image_name_the_install_command(monkeypatch):
    from nets.train.photos import bundled_photos

    monkeypatch.setattr("nets.train.photos.find_spec", lambda name: None)
    with pytest.raises(NetsError, match=r"pip install scikit-image") as error:
        bundled_photos()
    assert "\n" not in str(error.value)


def _restoration_objective(name: str, camvid: Path):
    from nets.train.objectives import make_objective

    chosen = recipe(name, camvid_root=str(camvid), options={**recipe(name).options, "eval_images": 2})
    return make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), camvid / "cache"), chosen


def test_sr_evaluation_adds_metrics_on_the_bundled_photos(tmp_path, monkeypatch):
    from nets.train.degrade import crop_to_multiple, upscale_bicubic
    from nets.train.evaluate import evaluate_restoration, restore_image

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in ((21, 30, 3), (16, 17, 3))]
    sharp = [np.repeat(rng.integers(0, 256, size=(18, 24, 1), dtype=np.uint8), 3, axis=2)]
    monkeypatch.setattr("nets.train.objectives.bundled_photos", lambda: [("a.png", photos[0]), ("b.png", photos[1])])
    monkeypatch.setattr("nets.train.objectives.sharp_grey_images", lambda: [("c.png", sharp[0])])
    objective, chosen = _restoration_objective("rednet-sr2", write_tiny_camvid(tmp_path / "camvid", train=1))
    model = build_model(chosen)
    metrics = objective.evaluate(model)
    with torch.inference_mode():
        sharp_only = evaluate_restoration(model, sharp, "sr", 2.0, torch.device("cpu"))
        assert metrics["sharp_gain_db"] == pytest.approx(sharp_only["gain_db"])
        assert metrics["sharp_psnr"] == pytest.approx(sharp_only["psnr"])
        assert abs(metrics["sharp_psnr"] - metrics["photos_psnr"]) > 1e-3  # a set of its own
        references = [crop_to_multiple(photo, 2) for photo in photos]
        lows = [downscale_bicubic(reference, 2) for reference in references]
        ours = np.mean([psnr_y(restore_image(model, low, torch.device("cpu")), ref, 2)
                        for low, ref in zip(lows, references)])
        bicubic = np.mean([psnr_y(upscale_bicubic(low, 2), ref, 2) for low, ref in zip(lows, references)])
        camvid_only = evaluate_restoration(model, objective.val_split.images[:2], "sr", 2.0, torch.device("cpu"))
    assert metrics["photos_psnr"] == pytest.approx(ours)
    assert metrics["photos_baseline_psnr"] == pytest.approx(bicubic)
    assert metrics["photos_gain_db"] == pytest.approx(ours - bicubic)
    assert {key: metrics[key] for key in camvid_only} == camvid_only


def test_sr_evaluation_without_scikit_image_warns_and_leaves_the_photo_metrics_out(tmp_path, monkeypatch):

    monkeypatch.setattr("nets.train.photos.find_spec", lambda name: None)
    objective, chosen = _restoration_objective("rednet-sr2", write_tiny_camvid(tmp_path / "camvid", train=1))
    with pytest.warns(UserWarning, match="sharp_\\* metrics left out.*pip install scikit-image"):
        metrics = objective.evaluate(build_model(chosen))
    assert set(metrics) == {"psnr", "baseline_psnr", "gain_db"}


def test_jpeg_evaluation_adds_quality_10_metrics(tmp_path):
    from nets.train.evaluate import restore_image

    objective, chosen = _restoration_objective("rednet-jpeg", write_tiny_camvid(tmp_path / "camvid", train=1))
    model = build_model(chosen)
    metrics = objective.evaluate(model)
    images = objective.val_split.images[:2]
    with torch.inference_mode():
        decoded = [jpeg_roundtrip(image, 10) for image in images]
        ours = np.mean([psnr(restore_image(model, jpeg, torch.device("cpu")), image)
                        for jpeg, image in zip(decoded, images)])
    baseline = np.mean([psnr(jpeg, image) for jpeg, image in zip(decoded, images)])
    assert metrics["q10_psnr"] == pytest.approx(ours)
    assert metrics["q10_baseline_psnr"] == pytest.approx(baseline)
    assert metrics["q10_gain_db"] == pytest.approx(ours - baseline)
    assert metrics["q10_baseline_psnr"] < metrics["baseline_psnr"]  # quality 10 is worse than the recipe's 20


def test_finishing_a_run_again_re_evaluates_its_best_weights(tmp_path):
    from nets.train.objectives import make_objective

    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = _tiny_seg_recipe(camvid, steps=2)
    run = tmp_path / "run"
    first = train(chosen, run, device="cpu", log=lambda line: None)
    initial = build_model(chosen).state_dict()
    torch.save({"model": initial, "step": 1, "metrics": {"miou": 99.0, "pixel_accuracy": 99.0}}, run / "best.pt")
    (run / "metrics.json").unlink()
    train(chosen, run, device="cpu", log=lambda line: None)
    record = json.loads((run / "metrics.json").read_text())
    model = build_model(chosen)
    model.load_state_dict(initial)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), run / "cache")
    assert record["best_step"] == 1 and 0 <= record["metrics"]["miou"] <= 1
    assert record["metrics"] == pytest.approx(objective.evaluate(objective.deployed(model)))
    assert record["final_metrics"] == pytest.approx(first["final_metrics"])


def _first_moment(kernel: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[:kernel.shape[0], :kernel.shape[1]]
    rows, cols = rows - kernel.shape[0] // 2, cols - kernel.shape[1] // 2
    return float((kernel * cols).sum()), float((kernel * rows).sum())


def test_blur_kernels_sum_to_one_and_are_centred():
    from nets.train.degrade import gaussian_kernel, motion_kernel, random_blur_kernel

    rng = np.random.default_rng(0)
    kernels = [gaussian_kernel(0.5), gaussian_kernel(3.0), motion_kernel(3, 0), motion_kernel(4.3, 45),
               motion_kernel(15, 117.5)] + [random_blur_kernel(rng) for _ in range(20)]
    for kernel in kernels:
        assert kernel.ndim == 2 and kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1 and kernel.min() >= 0
        assert kernel.sum() == pytest.approx(1.0)
        assert _first_moment(kernel) == pytest.approx((0.0, 0.0), abs=1e-9)
    with pytest.raises(NetsError, match="sigma must be positive"):
        gaussian_kernel(0.0)


def test_motion_kernel_is_a_line_of_the_given_length_and_angle():
    from nets.train.degrade import motion_kernel

    horizontal = motion_kernel(9, 0)
    middle = horizontal.shape[0] // 2
    assert np.count_nonzero(horizontal) == np.count_nonzero(horizontal[middle]) == 9
    assert np.allclose(horizontal[middle][horizontal[middle] > 0], 1 / 9)
    assert np.array_equal(motion_kernel(9, 90), horizontal.T)
    for length, angle in ((9, 30), (12.5, 135)):
        kernel = motion_kernel(length, angle)
        rows, cols = np.mgrid[:kernel.shape[0], :kernel.shape[1]] - kernel.shape[0] // 2
        points = np.stack([cols.ravel(), -rows.ravel()])  # y up, so angles turn anticlockwise
        variances, axes = np.linalg.eigh((points * kernel.ravel()) @ points.T)
        major = axes[:, -1] * np.sign(axes[1, -1] or 1)
        assert np.degrees(np.arctan2(major[1], major[0])) == pytest.approx(angle, abs=1.0)
        assert np.sqrt(12 * variances[-1]) == pytest.approx(length, abs=0.5)  # a uniform bar of that length


def test_blur_keeps_flat_images_and_spreads_edges_along_the_motion():
    from nets.train.degrade import blur, gaussian_kernel, motion_kernel

    flat = np.full((20, 24, 3), 77, np.uint8)
    for kernel in (gaussian_kernel(2.0), motion_kernel(7.5, 20)):
        assert np.array_equal(blur(flat, kernel), flat)
    step = np.zeros((20, 24, 3), np.uint8)
    step[:, 12:] = 255
    across = blur(step, motion_kernel(9, 0))
    assert np.array_equal(blur(step, motion_kernel(9, 90)), step)  # motion along the edge changes nothing
    assert np.count_nonzero((across[10, :, 0] > 0) & (across[10, :, 0] < 255)) == 8
    assert np.all(np.diff(across[10, :, 0].astype(int)) >= 0)
    smooth = blur(step, gaussian_kernel(2.0))[10, :, 0]
    assert smooth[0] == 0 and smooth[-1] == 255 and 0 < smooth[11] < 128 < smooth[12] < 255
    with pytest.raises(NetsError, match="odd sides"):
        blur(step, np.ones((2, 2)) / 4)


def test_deblur_recipe_trains_and_scores_against_blur_and_unsharp_masking(tmp_path):
    from nets.train.degrade import blur, random_blur_kernel
    from nets.train.evaluate import restore_image, unsharp_mask

    objective, chosen = _restoration_objective("rednet-deblur", write_tiny_camvid(tmp_path / "camvid", train=1))
    assert zoo.spec(chosen.model).kwargs["mode"] == "deblur"
    sample = objective.sample(np.random.default_rng(0), 0)
    assert sample["input"].shape == sample["target"].shape == (48, 48, 3)
    assert not np.array_equal(sample["input"], sample["target"])
    model = build_model(chosen)
    metrics = objective.evaluate(model)
    assert set(metrics) == {"psnr", "baseline_psnr", "gain_db"} and all(np.isfinite(list(metrics.values())))
    images = objective.val_split.images[:2]
    blurred = [blur(image, random_blur_kernel(np.random.default_rng(i))) for i, image in enumerate(images)]
    with torch.inference_mode():
        ours = np.mean([psnr(restore_image(model, b, torch.device("cpu")), image)
                        for b, image in zip(blurred, images)])
    plain = np.mean([psnr(b, image) for b, image in zip(blurred, images)])
    sharpened = np.mean([psnr(unsharp_mask(b), image) for b, image in zip(blurred, images)])
    assert metrics["psnr"] == pytest.approx(ours)
    assert metrics["baseline_psnr"] == pytest.approx(max(plain, sharpened))
    assert metrics["gain_db"] == pytest.approx(ours - max(plain, sharpened))

    tiny = recipe("rednet-deblur", camvid_root=str(tmp_path / "camvid"), size=(16, 16), batch=2, steps=1,
                  options={**chosen.options, "eval_images": 1})
    record = train(tiny, tmp_path / "run", device="cpu", log=lambda line: None)
    assert set(record["metrics"]) == {"psnr", "baseline_psnr", "gain_db"}
    assert all(np.isfinite(list(record["metrics"].values())))


def test_one_size_parser_serves_manifests_and_command_lines():
    from nets.sizes import parse_size as parse_any

    assert parse_any("480X360") == (480, 360) and parse_any("0x0", minimum=0) == (0, 0)
    for text in ("480", "x360", "-2x4", "4.5x3", "480x360x2"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_any(text)
    with pytest.raises(ValueError, match="under 16"):
        parse_any("8x20", minimum=16)


def test_export_as_ships_a_run_under_another_model_of_the_same_layout(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    chosen = recipe("seg-camvid", camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=1,
                    warmup=0, eval_every=0)
    train(chosen, tmp_path / "run", log=lambda line: None)
    weights = tmp_path / "weights"
    with pytest.raises(NetsError, match="layout differs"):
        export(tmp_path / "run", weights, fps_frames=1, name="rednet-denoise")
    with pytest.raises(NetsError, match="no registered model"):
        export(tmp_path / "run", weights, fps_frames=1, name="no-such-model")
    assert not weights.exists() or not any(weights.iterdir())
    entry = export(tmp_path / "run", weights, fps_frames=1, name="lwrefinenet-mbv2-camvid-only")
    assert entry["file"] == "lwrefinenet-mbv2-camvid-only.pt" and (weights / entry["file"]).is_file()
    listed = json.loads((weights / "manifest.json").read_text())["models"]
    assert list(listed) == ["lwrefinenet-mbv2-camvid-only"]
    model, model_spec = zoo.load("lwrefinenet-mbv2-camvid-only", weights)
    assert model_spec.sha256 == entry["sha256"] and model_spec.eval_size == (64, 48)
