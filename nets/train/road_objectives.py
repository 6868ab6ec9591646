"""Objectives for models that must hold on real roads anywhere, not only in CamVid's Cambridge:
CamVid's fine labels, IDD-lite's coarse groups, strong photometric augmentation and (for depth)
domain-randomised synthetic towns and label-implied scene geometry; scored on CamVid val,
held-out IDD-lite sequences, the sky of the real dash-cam clip and, for depth, held-out towns
and the objects of CamVid val."""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nets.errors import NetsError
from nets.train.clip import read_clip, read_clip_frames, road_clip_path
from nets.train.data import VOID, augment_pair
from nets.train.evaluate import evaluate_joint, road_depth_profile
from nets.train.geometry import (NO_ANCHOR, column_anchors, geometry_loss, ground_plane_log_loss, ground_plane_loss,
                                 surface_from_groups, surface_from_labels)
from nets.train.idd import IDD_IGNORE, IddLiteSplit, default_idd_root, group_members
from nets.train.lane_depth import LANE_FRAMES, clip_lane_depth
from nets.train.losses import berhu_loss, distillation_loss, group_loss, segmentation_loss
from nets.train.object_depth import object_depth_checks
from nets.train.objectives import SegmentationObjective, SyntheticTowns
from nets.train.photometric import Photometric, photometric
from nets.train.recipes import Recipe
from nets.train.roads import CLIP_CARS, clip_car_share, clip_sky_share, evaluate_idd_groups
from nets.train.synth_views import synthetic_view
from nets.world import SKY_DEPTH
from nets.zoo import ModelSpec

__all__ = ["RoadSegmentationObjective", "JointRoadObjective", "DISTILL_ON", "TEACHER_RECORD"]

DISTILL_ON = ("real", "camvid")  # which samples ``distill_weight`` teaches: every real frame, or CamVid's only
TEACHER_RECORD = "teacher.json"  # a run's copy of the teacher's manifest entry


class RoadSegmentationObjective(SegmentationObjective):
    """A sample is a CamVid frame (fine labels, class-weighted cross-entropy) or, with
    probability ``idd_share``, an IDD-lite training frame (group labels: the likelihood of the
    group's summed member-class probabilities); both then get strong photometric changes. Scored
    by ``road_score``, the mean of CamVid val mIoU and the group mIoU of held-out IDD-lite
    sequences; the dash-cam clip's sky share is reported beside them."""

    score = "road_score"

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        super().__init__(recipe, model_spec, device, cache_dir)
        self.augment = dataclasses.replace(self.augment, aspect=float(self.options.get("aspect", 0.0)))
        self.idd_augment = dataclasses.replace(self.augment, scale=tuple(self.options["idd_scale"]))
        self.photometric = Photometric() if self.options.get("photometric", True) else None
        self.members = group_members()
        if float(self.options.get("distill_weight", 0.0)) and "teacher" not in self.options:
            raise NetsError("--option distill_weight needs --option 'teacher=\"MODEL\"' (a shipped model)")
        if self.options.get("distill_on", "real") not in DISTILL_ON:
            raise NetsError(f"--option distill_on must be one of {', '.join(DISTILL_ON)}")

    @cached_property
    def idd_root(self) -> Path:
        return Path(self.options.get("idd_root") or default_idd_root(self.recipe.camvid_root))

    @cached_property
    def idd_train(self) -> IddLiteSplit:
        return IddLiteSplit(self.idd_root, "train", int(self.options["idd_val_every"]))

    @cached_property
    def idd_val(self) -> IddLiteSplit:
        return IddLiteSplit(self.idd_root, "val", int(self.options["idd_val_every"]))

    @cached_property
    def sky_clip(self) -> list[np.ndarray]:
        """Frames of the dash-cam clip spread over it; none in a clone without the shared data."""
        path = road_clip_path(self.recipe.camvid_root)
        return read_clip(path, int(self.options["clip_frames"])) if path.is_file() else []

    @cached_property
    def car_clip(self) -> dict[int, np.ndarray]:
        """The dash-cam clip's frames with hand-marked cars; none without the shared data."""
        path = road_clip_path(self.recipe.camvid_root)
        return read_clip_frames(path, list(CLIP_CARS)) if path.is_file() else {}

    def batches(self):
        self.idd_train
        return super().batches()

    def real_sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A photometrically changed CamVid or IDD-lite crop with ``labels`` (fine, void where
        unknown) and ``groups`` (coarse, ``IDD_IGNORE`` where unknown)."""
        if rng.random() < float(self.options["idd_share"]):
            i = int(rng.integers(len(self.idd_train)))
            image, groups = augment_pair(self.idd_train.images[i], self.idd_train.labels[i], self.idd_augment, rng,
                                         fill=IDD_IGNORE)
            labels = np.full_like(groups, VOID)
        else:
            sample = self.camvid_sample(rng)
            image, labels = sample["image"], sample["labels"]
            groups = np.full_like(labels, IDD_IGNORE)
        if self.photometric is not None:
            image = photometric(image, self.photometric, rng)
        return {"image": image, "labels": labels, "groups": groups}

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        return self.real_sample(rng)

    @cached_property
    def teacher(self) -> nn.Module:
        """The shipped model named by option ``teacher`` with its deployment undone, so that its
        scores carry the same class weights as the student's training scores. Its manifest entry
        is kept in the run folder (``teacher.json``): the teacher is what ``nets/weights`` held
        when the run began."""
        teacher, entry = self.shipped_trained(str(self.options["teacher"]))
        record = self.cache_dir.parent / TEACHER_RECORD
        if not record.exists():
            record.write_text(json.dumps(entry, indent=2) + "\n")
        return teacher.eval()

    def distilled_samples(self, batch: dict[str, Tensor]) -> Tensor:
        """One boolean per batch item: the real frames, or with ``distill_on`` "camvid" only the
        CamVid ones (the only real frames with fine labels)."""
        real = batch["depth"].flatten(1).amax(dim=1) <= 0 if "depth" in batch else \
            torch.ones(batch["image"].shape[0], dtype=torch.bool, device=batch["image"].device)
        if self.options.get("distill_on", "real") == "camvid":
            real &= (batch["labels"] != VOID).flatten(1).any(dim=1)
        return real

    def distillation(self, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """``distill_weight`` x the teacher's scores taught on the chosen samples; 0 unless set."""
        weight = float(self.options.get("distill_weight", 0.0))
        if not weight:
            return logits.sum() * 0.0
        chosen = self.distilled_samples(batch)
        if not chosen.any():
            return logits.sum() * 0.0
        with torch.no_grad():
            teacher_logits = self.teacher(self.normalise(batch["image"][chosen]))
        return weight * distillation_loss(logits[chosen], teacher_logits)

    def label_loss(self, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Fine cross-entropy where fine labels exist plus the group likelihood where groups do."""
        loss = logits.sum() * 0.0
        if (batch["labels"] != VOID).any():
            loss = loss + segmentation_loss(logits, batch["labels"], self.class_weights, VOID)
        if (batch["groups"] != IDD_IGNORE).any():
            loss = loss + float(self.options["idd_weight"]) * group_loss(
                logits, batch["groups"], self.members, self.score_offsets, IDD_IGNORE)
        return loss

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits = model(self.normalise(batch["image"]))
        return self.label_loss(logits, batch) + self.distillation(logits, batch)

    def road_metrics(self, model: nn.Module) -> dict[str, float]:
        """IDD-lite group metrics and the clip's sky and car shares, each frame run at the size the
        product's ``--infer-size auto`` picks for this model's trained scale."""
        rows = self.recipe.eval_size[1]
        results = evaluate_idd_groups(model, self.idd_val, rows, self.normalise, self.device)
        if self.sky_clip:
            results.update(clip_sky_share(model, self.sky_clip, rows, self.normalise, self.device))
        if self.car_clip:
            results.update(clip_car_share(model, self.car_clip, rows, self.normalise, self.device))
        return results

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        results = super().evaluate(model)
        results.update(self.road_metrics(model))
        results["road_score"] = (results["miou"] + results["idd_group_miou"]) / 2
        return results


class JointRoadObjective(SyntheticTowns, RoadSegmentationObjective):
    """Segmentation + depth on real roads: a sample is a synthetic frame (exact labels and metric
    depth; berHu on non-sky pixels within ``max_depth``) with probability ``synth_share``, else a
    real CamVid or IDD-lite frame, whose depth is supervised by the scene geometry its labels
    imply (``geometry_loss``). Synthetic towns are domain-randomised when ``randomise`` is set.
    Scored by ``joint_score``: the mean of CamVid val mIoU, held-out IDD-lite group mIoU,
    synthetic delta<1.25 on held-out towns and the share of CamVid val cars whose depth matches
    the road below them."""

    score = "joint_score"

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        super().__init__(recipe, model_spec, device, cache_dir)
        self.check_towns()

    @cached_property
    def lane_clip(self) -> dict[int, np.ndarray]:
        """The dash-cam frames the lane-geometry depth check scores; none without the shared data."""
        path = road_clip_path(self.recipe.camvid_root)
        return read_clip_frames(path, LANE_FRAMES) if path.is_file() else {}

    @cached_property
    def car_clip(self) -> dict[int, np.ndarray]:
        """The frames with marked cars, taken from ``lane_clip`` (which holds them all)."""
        return {index: frame for index, frame in self.lane_clip.items() if index in CLIP_CARS}

    def synthetic_sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        frame = self.train_frames.frame(int(rng.integers(len(self.train_frames))))
        image, labels, depth = frame["rgb"], frame["labels"], frame["depth"]
        min_share = float(self.options.get("synth_crop", 1.0))
        if min_share < 1.0:
            image, labels, depth = synthetic_view(image, labels, depth, min_share, rng)
        if rng.random() < 0.5:
            image, labels, depth = image[:, ::-1], labels[:, ::-1], depth[:, ::-1]
        image = np.ascontiguousarray(image)
        if self.photometric is not None:
            image = photometric(image, self.photometric, rng)
        return {"image": image, "labels": np.ascontiguousarray(labels),
                "groups": np.full(labels.shape, IDD_IGNORE, np.uint8), "depth": np.ascontiguousarray(depth),
                "surface": np.zeros(labels.shape, np.uint8), "anchors": np.full(labels.shape, NO_ANCHOR, np.int16)}

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        if rng.random() < float(self.options["synth_share"]):
            return self.synthetic_sample(rng)
        sample = self.real_sample(rng)
        fine = surface_from_labels(sample["labels"])
        coarse = surface_from_groups(sample["groups"])
        sample["surface"] = np.where(fine != 0, fine, coarse)
        sample["anchors"] = column_anchors(sample["surface"])
        sample["depth"] = np.zeros(sample["labels"].shape, np.float32)
        return sample

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits, depth = model(self.normalise(batch["image"]))
        loss = self.label_loss(logits, batch)
        truth = batch["depth"][:, None]
        valid = (truth > 0) & (truth < SKY_DEPTH) & (truth <= float(self.options["max_depth"]))
        if valid.any():
            loss = loss + float(self.options["depth_weight"]) * berhu_loss(depth, truth, valid)
        loss = loss + float(self.options["geometry_weight"]) * geometry_loss(
            depth, batch["surface"], batch["anchors"], float(self.options["ground_margin"]),
            bool(self.options.get("contact_moves_ground", True)))
        loss = loss + self.distillation(logits, batch)
        plane_weight = float(self.options.get("plane_weight", 0.0))
        if plane_weight:
            loss = loss + plane_weight * ground_plane_loss(depth, batch["surface"])
        plane_log_weight = float(self.options.get("plane_log_weight", 0.0))
        if plane_log_weight:
            loss = loss + plane_log_weight * ground_plane_log_loss(depth, batch["surface"],
                                                                   float(self.options["max_depth"]))
        return loss

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        size, max_depth = self.recipe.eval_size, float(self.options["max_depth"])
        results = evaluate_joint(model, self.val_split, self.eval_frames, size, max_depth, self.normalise,
                                 self.device)
        results.update(self.road_metrics(model))
        results.update(object_depth_checks(model, self.val_split, size, self.normalise, self.device))
        if self.clip_frames:
            results.update(road_depth_profile(model, self.clip_frames, size, self.normalise, self.device))
        if self.lane_clip:
            results.update(clip_lane_depth(model, self.lane_clip, size[1], self.normalise, self.device))
        results["joint_score"] = float(np.mean([results["miou"], results["idd_group_miou"], results["synth_delta1"],
                                                results.get("car_contact_within_25", 0.0)]))
        return results
