"""Teaching a shipped model's class scores to a road model (options ``distill_weight``,
``teacher``, ``distill_on``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from nets import zoo
from nets.errors import NetsError
from nets.train.data import to_tensors
from nets.train.loop import build_model, train
from nets.train.losses import distillation_loss
from nets.train.objectives import make_objective
from nets.train.recipes import recipe
from nets.train.road_objectives import TEACHER_RECORD
from tests.test_train import TINY_SEG, write_tiny_camvid
from tests.test_train_roads import write_tiny_idd

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEACHER = "lwrefinenet-mbv2-camvid-only"


def test_distillation_loss_is_the_kl_divergence_and_ignores_a_constant_shift():
    torch.manual_seed(0)
    teacher = torch.randn(2, 5, 3, 4)
    student = torch.randn(2, 5, 3, 4)
    p, q = teacher.softmax(dim=1), student.softmax(dim=1)
    expected = (p * (p.log() - q.log())).sum(dim=1).mean()
    assert distillation_loss(student, teacher).item() == pytest.approx(expected.item(), rel=1e-5)
    assert distillation_loss(teacher + 3.0, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(student, teacher).item() > 0.01
    with pytest.raises(ValueError, match="shapes differ"):
        distillation_loss(student, teacher[:, :4])


def _roads(tmp_path, name: str, **options):
    camvid = tmp_path / "camvid"
    if not camvid.exists():
        write_tiny_camvid(camvid, train=2, val=1)
        write_tiny_idd(tmp_path / "idd-lite")
    base = {**recipe(name).options, **options}
    if name == "joint-roads":
        base.update(train_towns=[1], frames_per_town=2, frame_step=3, eval_towns=[2], eval_frames_per_town=1)
    return recipe(name, camvid_root=str(camvid), size=(32, 24), eval_size=(32, 24), batch=2, steps=2, warmup=0,
                  model_kwargs=TINY_SEG, options=base, init="", eval_every=0)


def _objective(chosen, tmp_path):
    return make_objective(chosen, zoo.spec(chosen.model), torch.device("cpu"), tmp_path / "run" / "cache")


def test_distillation_needs_a_teacher_and_a_known_sample_choice(tmp_path):
    with pytest.raises(NetsError, match="needs --option 'teacher="):
        _objective(_roads(tmp_path, "seg-roads", distill_weight=1.0), tmp_path)
    with pytest.raises(NetsError, match="distill_on must be one of real, camvid"):
        _objective(_roads(tmp_path, "seg-roads", distill_weight=1.0, teacher=TEACHER, distill_on="idd"), tmp_path)


def test_joint_distillation_teaches_real_frames_only_and_camvid_only_when_asked(tmp_path):
    chosen = _roads(tmp_path, "joint-roads", synth_share=0.4, distill_weight=1.0, teacher=TEACHER)
    objective = _objective(chosen, tmp_path)
    samples = [objective.sample(np.random.default_rng(s), s) for s in range(16)]
    kinds = ["synthetic" if (s["depth"] > 0).any() else "camvid" if (s["labels"] != 11).any() else "idd"
             for s in samples]
    assert {"synthetic", "camvid", "idd"} <= set(kinds)
    batch = to_tensors(samples)
    assert objective.distilled_samples(batch).tolist() == [kind != "synthetic" for kind in kinds]
    camvid_only = _objective(dataclasses.replace(chosen, options={**chosen.options, "distill_on": "camvid"}),
                             tmp_path)
    assert camvid_only.distilled_samples(batch).tolist() == [kind == "camvid" for kind in kinds]


def test_teaching_pulls_the_student_towards_the_teacher_and_records_it(tmp_path):
    chosen = _roads(tmp_path, "seg-roads", distill_weight=1.0, teacher=TEACHER, distill_on="camvid")
    objective = _objective(chosen, tmp_path)
    (tmp_path / "run").mkdir()
    batch = to_tensors([objective.sample(np.random.default_rng(s), s) for s in range(4)])
    torch.manual_seed(0)
    student = build_model(chosen)
    before = objective.distillation(student(objective.normalise(batch["image"])), batch).item()
    optimiser = torch.optim.Adam(student.parameters(), lr=3e-3)
    for _ in range(40):
        optimiser.zero_grad()
        objective.distillation(student(objective.normalise(batch["image"])), batch).backward()
        optimiser.step()
    after = objective.distillation(student(objective.normalise(batch["image"])), batch).item()
    assert before > 0 and after < 0.7 * before
    record = json.loads((tmp_path / "run" / TEACHER_RECORD).read_text())
    assert record["sha256"] == zoo.spec(TEACHER).sha256
    shipped, _ = zoo.load(TEACHER)
    added_back = float(record.get("offset_strength", 1.0)) * objective.score_offsets
    assert torch.allclose(objective.teacher.classifier.bias, shipped.classifier.bias + added_back, atol=1e-5)


def test_a_distilled_seg_run_trains_and_evaluates(tmp_path):
    chosen = _roads(tmp_path, "seg-roads", distill_weight=0.5, teacher=TEACHER)
    record = train(chosen, tmp_path / "run", log=lambda line: None)
    assert record["steps"] == 2 and "road_score" in record["metrics"]
    assert (tmp_path / "run" / TEACHER_RECORD).is_file()
