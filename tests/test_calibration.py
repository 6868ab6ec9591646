"""Offset strength: how much of the class-weight offsets shipped segmentation scores take off."""
from __future__ import annotations

import json

import pytest
import torch

from nets import zoo
from nets.checkpoints import read_state_dict
from nets.errors import NetsError
from nets.train.__main__ import main
from nets.train.calibration import CALIBRATION, STRENGTHS, calibrate, read_strength, strength_scores
from nets.train.export import export
from nets.train.loop import build_model, train
from nets.train.objectives import make_objective
from nets.train.recipes import recipe
from tests.test_train import TINY_SEG, write_tiny_camvid
from tests.test_train_roads import write_tiny_idd

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained_run(tmp_path, name="seg-camvid", model_kwargs=TINY_SEG):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    if name == "seg-roads":
        write_tiny_idd(tmp_path / "idd-lite")
    chosen = recipe(name, camvid_root=str(camvid), size=(32, 32), eval_size=(64, 48), batch=2, steps=1,
                    warmup=0, model_kwargs=model_kwargs, init="", eval_every=0)
    run = tmp_path / "run"
    train(chosen, run, command="train it", log=lambda line: None)
    objective = make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), run / "cache")
    model = build_model(chosen)
    model.load_state_dict(read_state_dict(run / "best.pt"))
    return chosen, run, objective, model


def test_every_strength_is_scored_on_camvid_and_on_idd_where_the_recipe_has_it(tmp_path):
    _, _, objective, model = _trained_run(tmp_path, "seg-roads")
    scores = strength_scores(objective, model)
    assert tuple(scores) == STRENGTHS
    for values in scores.values():
        assert set(values) == {"miou", "idd_group_miou", "score"}
        assert values["score"] == pytest.approx((values["miou"] + values["idd_group_miou"]) / 2)
    # strength 1 is the deployment every run had until now: the same mIoU the objective reports
    objective.offset_strength = 1.0
    assert scores[1.0]["miou"] == pytest.approx(objective.evaluate(objective.deployed(model))["miou"])


def test_calibrate_keeps_the_best_strength_and_eval_and_export_deploy_with_it(tmp_path):
    chosen, run, objective, model = _trained_run(tmp_path, model_kwargs={})
    record = calibrate(objective, model, run, command="calibrate it")
    best = max(STRENGTHS, key=lambda s: (record["grid"][str(s)]["score"], -s))
    assert record["offset_strength"] == best == read_strength(run)
    assert json.loads((run / CALIBRATION).read_text())["metrics"] == record["metrics"]
    assert (run / "command.txt").read_text().splitlines()[-2:] == ["train it", "calibrate it"]
    entry = export(run, tmp_path / "weights", fps_frames=1)
    assert entry["offset_strength"] == best and entry["metrics"] == record["metrics"]
    assert entry["command"].endswith("train it && calibrate it")
    shipped = torch.load(tmp_path / "weights" / f"{chosen.model}.pt", weights_only=True)
    shipped_model = build_model(chosen)
    shipped_model.load_state_dict({k: v.float() for k, v in shipped.items()})
    expected = model.classifier.bias.detach() - best * objective.score_offsets
    assert torch.allclose(shipped_model.classifier.bias, expected, atol=2e-2)
    # a later stage that starts from these shipped weights gets back what training left
    restored = objective.undeployed(shipped_model, entry)
    assert torch.allclose(restored.classifier.bias, model.classifier.bias.detach(), atol=2e-2)


def test_uncalibrated_runs_deploy_at_full_strength_and_stale_calibrations_are_refused(tmp_path):
    assert read_strength(tmp_path) == 1.0
    (tmp_path / CALIBRATION).write_text("{not json")
    with pytest.raises(NetsError, match="unreadable"):
        read_strength(tmp_path)
    torch.save({"model": {}, "step": 300, "metrics": {}}, tmp_path / "best.pt")
    (tmp_path / CALIBRATION).write_text(json.dumps({"offset_strength": 0.6, "best_step": 300}))
    assert read_strength(tmp_path) == 0.6
    torch.save({"model": {}, "step": 600, "metrics": {}}, tmp_path / "best.pt")  # the run went on
    with pytest.raises(NetsError, match="calibrate' on it again"):
        read_strength(tmp_path)


def test_calibrate_command_refuses_what_it_cannot_calibrate(tmp_path, capsys):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    assert main(["calibrate", "seg-camvid", "--camvid", str(camvid), "--run", str(tmp_path / "nothing")]) == 1
    assert "error:" in capsys.readouterr().err
