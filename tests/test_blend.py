"""Blending two weight sets of one model into a finished run that calibrates and ships like any other."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from nets.errors import NetsError
from nets.train.__main__ import main
from nets.train.blend import blend, blend_states
from nets.train.export import export
from nets.train.loop import train
from tests.test_train import _tiny_denoise_recipe, write_tiny_camvid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_floating_tensors_are_mixed_and_counters_kept_from_the_base():
    base = {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([4.0], dtype=torch.float16), "n": torch.tensor(7)}
    other = {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([8.0], dtype=torch.float16), "n": torch.tensor(9)}
    mixed = blend_states(base, other, 0.25)
    assert torch.equal(mixed["w"], torch.tensor([1.5, 3.0]))
    assert mixed["h"].dtype == torch.float16 and mixed["h"].item() == 5.0
    assert mixed["n"].item() == 7
    with pytest.raises(NetsError, match="same tensors"):
        blend_states(base, {"w": other["w"]}, 0.5)
    with pytest.raises(NetsError, match=r"w is \(2,\) in one weight set and \(3,\)"):
        blend_states(base, {**other, "w": torch.zeros(3)}, 0.5)


@pytest.fixture
def two_runs(tmp_path):
    camvid = write_tiny_camvid(tmp_path / "camvid", train=2, val=1)
    first, second = tmp_path / "first", tmp_path / "second"
    train(_tiny_denoise_recipe(camvid, 2), first, command="train first", log=lambda line: None)
    train(_tiny_denoise_recipe(camvid, 1, seed=5), second, command="train second", log=lambda line: None)
    return camvid, first, second


def test_a_blend_is_a_finished_run_of_the_mixed_weights_that_ships_with_both_parents(tmp_path, two_runs):
    camvid, first, second = two_runs
    chosen = _tiny_denoise_recipe(camvid, 1, init=str(first))
    record = blend(chosen, tmp_path / "blend", str(second), 0.25, "cpu", command="blend first second")
    mixed = torch.load(tmp_path / "blend" / "best.pt", weights_only=True)["model"]
    a = torch.load(first / "best.pt", weights_only=True)["model"]
    b = torch.load(second / "best.pt", weights_only=True)["model"]
    for key, tensor in mixed.items():
        assert torch.allclose(tensor, 0.75 * a[key] + 0.25 * b[key], atol=1e-6), key
    assert record["blend"] == {"with": {"run": str(second), "best_step": 1}, "weight": 0.25}
    assert record["metrics"]["psnr"] > 0
    first_record = json.loads((first / "metrics.json").read_text())
    assert record["seconds_per_step"] == first_record["seconds_per_step"]
    entry = export(tmp_path / "blend", tmp_path / "weights", fps_frames=1)
    assert entry["blended_with"] == record["blend"]
    assert entry["command"] == "train first && blend first second"
    assert entry["steps"] == entry["best_step"] == 2, "the base's steps; the blend trains none"
    assert entry["metrics"] == record["metrics"]


def test_a_blend_refuses_bad_weights_a_missing_base_and_a_used_folder(tmp_path, two_runs):
    camvid, first, second = two_runs
    chosen = _tiny_denoise_recipe(camvid, 1, init=str(first))
    for weight in (0.0, 1.0, 1.5):
        with pytest.raises(NetsError, match="between 0 and 1"):
            blend(chosen, tmp_path / "b", str(second), weight, "cpu")
    with pytest.raises(NetsError, match="needs its base weights"):
        blend(dataclasses.replace(chosen, init=None), tmp_path / "b", str(second), 0.5, "cpu")
    with pytest.raises(NetsError, match="already holds weights"):
        blend(chosen, first, str(second), 0.5, "cpu")
    with pytest.raises(NetsError, match="cannot start from run"):
        blend(chosen, tmp_path / "b", str(tmp_path / "absent"), 0.5, "cpu")
    (second / "metrics.json").unlink()
    with pytest.raises(NetsError, match="not finished"):
        blend(dataclasses.replace(chosen, init=str(second)), tmp_path / "b", str(first), 0.5, "cpu")
    assert not (tmp_path / "b").exists(), "nothing is written before the blend is known to work"


def test_the_blend_command_says_a_bad_weight_in_one_line(tmp_path, capsys):
    status = main(["blend", "rednet-denoise", "--run", str(tmp_path / "b"), "--init", str(tmp_path / "a"),
                   "--with", str(tmp_path / "c"), "--weight", "2"])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "between 0 and 1" in err


def test_shipped_weights_blend_by_name_when_their_layout_matches(tmp_path, two_runs):
    camvid, first, _ = two_runs
    chosen = _tiny_denoise_recipe(camvid, 1, init="zoo:rednet-denoise")
    record = blend(chosen, tmp_path / "mixed", str(first), 0.5, "cpu")
    assert record["blend"]["with"]["run"] == str(first)
    assert json.loads((tmp_path / "mixed" / "init.json").read_text())["file"] == "rednet-denoise.pt"
    with pytest.raises(NetsError, match="no shipped model 'rednet-nope'"):
        blend(chosen, tmp_path / "b", "zoo:rednet-nope", 0.5, "cpu")
    with pytest.raises(NetsError, match="same tensors"):
        blend(chosen, tmp_path / "b", "zoo:rednet20-jpeg", 0.5, "cpu")
