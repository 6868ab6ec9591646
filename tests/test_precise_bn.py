"""Precise BatchNorm statistics: an equal-weight average over fixed batches, used before evaluation."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from nets.errors import NetsError
from nets.train.commands import make_recipe
from nets.train.loop import train
from nets.train.precise_bn import recalibrate_batchnorm
from tests.test_train import _tiny_seg_recipe, write_tiny_camvid


def test_running_statistics_become_the_plain_average_over_the_batches():
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(3, momentum=0.1)
    model = nn.Sequential(norm).eval()
    batches = [torch.randn(4, 3, 5, 5) * (1 + i) + i for i in range(3)]
    assert recalibrate_batchnorm(model, batches) == 3
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches])
    assert torch.allclose(norm.running_mean, means.mean(0), atol=1e-5)
    assert torch.allclose(norm.running_var, variances.mean(0), atol=1e-4)
    # an exponential average would weight the last batch most: that is what this replaces
    assert not torch.allclose(norm.running_mean, means[-1], atol=0.1)
    assert norm.momentum == 0.1 and not model.training


def test_a_model_without_batchnorm_is_left_alone():
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    before = [p.clone() for p in model.parameters()]
    assert recalibrate_batchnorm(model, [torch.randn(1, 3, 4, 4)]) == 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_training_with_bn_batches_evaluates_on_recalibrated_statistics(tmp_path):
    torch.manual_seed(0)
    camvid = write_tiny_camvid(tmp_path / "camvid")
    plain = _tiny_seg_recipe(camvid, steps=2)
    precise = dataclasses.replace(plain, options={**plain.options, "bn_batches": 2})
    first = train(plain, tmp_path / "plain", log=lambda line: None)
    second = train(precise, tmp_path / "precise", log=lambda line: None)
    plain_best = torch.load(tmp_path / "plain" / "best.pt", weights_only=True)["model"]
    precise_best = torch.load(tmp_path / "precise" / "best.pt", weights_only=True)["model"]
    stats = [k for k in plain_best if k.endswith("running_mean")]
    weights = [k for k in plain_best if k.endswith(".weight")]
    assert stats and all(torch.equal(plain_best[k], precise_best[k]) for k in weights)
    assert any(not torch.allclose(plain_best[k], precise_best[k]) for k in stats)
    assert 0 <= first["metrics"]["miou"] <= 1 and 0 <= second["metrics"]["miou"] <= 1


def test_bn_batches_is_accepted_by_the_road_recipes_only_as_an_option():
    assert make_recipe("seg-roads", options=["bn_batches=40"]).options["bn_batches"] == 40
    assert make_recipe("joint-roads", options=["bn_batches=40"]).options["bn_batches"] == 40
    with pytest.raises(NetsError, match="--option"):
        make_recipe("rednet-denoise", options=["bn_batches=40"])
