"""What each recipe trains on and how it is scored: per-sample data, the loss of a batch and the
evaluation on held-out data (higher ``score`` is better for every objective)."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any
import warnings

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nets import zoo
from nets.errors import NetsError
from nets.train.clip import read_clip, road_clip_path
from nets.train.data import VOID, CamVidSplit, SegAugment, StepBatches, augment_pair, class_weights, jitter_colour
from nets.train.degrade import add_noise, blur, downscale_bicubic, jpeg_roundtrip, random_blur_kernel
from nets.train.evaluate import (Normaliser, evaluate_joint, evaluate_restoration, evaluate_segmentation,
                                 evaluate_tracking, road_depth_profile)
from nets.train.losses import balanced_logistic_loss, berhu_loss, segmentation_loss
from nets.train.photos import bundled_photos, sharp_grey_images
from nets.train.recipes import Recipe, shipped_entry
from nets.train.sequences import track_sequences
from nets.world import SKY_DEPTH
from nets.world.frames import SyntheticFrames
from nets.train.tracking import PairJitter, region_pair, response_labels, synthetic_pair
from nets.zoo import ModelSpec

__all__ = ["Objective", "SegmentationObjective", "SyntheticTowns", "JointObjective", "RestorationObjective",
           "TrackingObjective", "make_objective"]


class Objective(ABC):
    """Shared plumbing: the recipe, the model's normalisation, the device and CamVid splits."""

    score = "miou"

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        self.recipe = recipe
        self.options = dict(recipe.options)
        self.normalise = Normaliser(model_spec.mean, model_spec.std)
        self.device = device
        self.cache_dir = cache_dir

    @cached_property
    def train_split(self) -> CamVidSplit:
        return CamVidSplit(self.recipe.camvid_root, "train")

    @cached_property
    def val_split(self) -> CamVidSplit:
        return CamVidSplit(self.recipe.camvid_root, "val")

    @abstractmethod
    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        """One training sample for ``step``."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """The training loss of one batch already on the device."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics of ``model`` as shipped (see ``deployed``), including ``self.score``."""

    def deployed(self, model: nn.Module) -> nn.Module:
        """The trained ``model`` as it is shipped and evaluated; the same model by default."""
        return model

    def undeployed(self, model: nn.Module, entry: Mapping[str, Any] | None = None) -> nn.Module:
        """The inverse of ``deployed`` for shipped weights (``entry``: their manifest entry):
        back as training left them."""
        return model

    def shipped_trained(self, name: str) -> tuple[nn.Module, dict[str, Any]]:
        """The shipped weights of zoo model ``name`` with this objective's deployment undone (as
        training left them, on this objective's device), and their manifest entry."""
        shipped, _ = zoo.load(name)
        entry = shipped_entry(name)
        return self.undeployed(shipped.to(self.device), entry), entry

    def evaluate_trained(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics of a model straight from training, deployed first as export ships it."""
        return self.evaluate(self.deployed(model))

    def batches(self) -> StepBatches:
        """The run's reproducible per-step batches (the training split is loaded first, once,
        so that loader workers share it)."""
        self.train_split
        return StepBatches(self.sample, self.recipe.batch, self.recipe.seed, self.recipe.steps)


class SegmentationObjective(Objective):
    """CamVid segmentation: class-balanced cross-entropy, void ignored; scored by val mIoU of the
    deployed model, whose class scores no longer carry the loss's class weights."""

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        super().__init__(recipe, model_spec, device, cache_dir)
        self.augment = SegAugment(recipe.size, tuple(self.options.get("scale", (0.5, 2.0))),
                                  True, float(self.options.get("jitter", 0.3)))

    @cached_property
    def class_weights(self) -> Tensor:
        method = self.options.get("class_weighting", "median")
        return torch.from_numpy(class_weights(self.train_split.labels, method=method)).to(self.device)

    @cached_property
    def score_offsets(self) -> Tensor:
        """log of each class's loss weight (0 for a class absent from training). Weighting the
        loss by w_c teaches the net scores of log(w_c p(c|x)) + const, which favour rare classes
        beyond their real odds; subtracting these offsets gives back log p(c|x) + const."""
        weights = self.class_weights
        return torch.where(weights > 0, weights.log(), torch.zeros_like(weights))

    offset_strength = 1.0
    """The share of ``score_offsets`` that deployment takes off (``nets.train.calibration``)."""

    def deployed(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` with ``offset_strength`` x ``score_offsets`` subtracted from its
        classifier's bias (exact, as the scores are only resized linearly after that conv)."""
        shipped = copy.deepcopy(model)
        with torch.no_grad():
            shipped.classifier.bias -= self.offset_strength * self.score_offsets.to(shipped.classifier.bias)
        return shipped

    def undeployed(self, model: nn.Module, entry: Mapping[str, Any] | None = None) -> nn.Module:
        """A copy of shipped ``model`` with what its export took off added back (the strength in
        its manifest ``entry``; without one, this objective's)."""
        strength = float(entry.get("offset_strength", 1.0)) if entry is not None else self.offset_strength
        trained = copy.deepcopy(model)
        with torch.no_grad():
            trained.classifier.bias += strength * self.score_offsets.to(trained.classifier.bias)
        return trained

    def camvid_sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        i = int(rng.integers(len(self.train_split)))
        image, labels = augment_pair(self.train_split.images[i], self.train_split.labels[i], self.augment, rng)
        return {"image": image, "labels": labels}

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        return self.camvid_sample(rng)

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return segmentation_loss(model(self.normalise(batch["image"])), batch["labels"], self.class_weights, VOID)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return evaluate_segmentation(model, self.val_split, self.recipe.eval_size, self.normalise, self.device)


class SyntheticTowns:
    """For depth objectives: the synthetic training towns (domain-randomised when the option
    ``randomise`` is set) and the held-out towns, which must not overlap."""

    options: dict
    recipe: Recipe
    cache_dir: Path

    def check_towns(self) -> None:
        overlap = set(self.options["eval_towns"]) & set(self.options["train_towns"])
        if overlap:
            raise NetsError(f"held-out towns {sorted(overlap)} are also training towns")

    @cached_property
    def train_frames(self) -> SyntheticFrames:
        return SyntheticFrames(self.options["train_towns"], int(self.options["frames_per_town"]),
                               self.recipe.size, int(self.options["frame_step"]), self.cache_dir,
                               randomise=bool(self.options.get("randomise", False)))

    @cached_property
    def eval_frames(self) -> SyntheticFrames:
        return SyntheticFrames(self.options["eval_towns"], int(self.options["eval_frames_per_town"]),
                               self.recipe.eval_size, int(self.options["eval_frame_step"]), self.cache_dir)

    @cached_property
    def clip_frames(self) -> list[np.ndarray]:
        """20 frames of the dash-cam clip for the road-depth profile; none in a clone without the
        shared data."""
        path = road_clip_path(self.recipe.camvid_root)
        return read_clip(path) if path.is_file() else []


class JointObjective(SyntheticTowns, SegmentationObjective):
    """Segmentation + depth: even steps are CamVid batches (labels only), odd steps synthetic
    frames (labels and depth, berHu on non-sky pixels within ``max_depth``). Evaluation adds the
    road-depth profile of the real dash-cam clip beside CamVid when that clip exists."""

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        super().__init__(recipe, model_spec, device, cache_dir)
        self.check_towns()

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        if step % 2 == 0:
            return self.camvid_sample(rng)
        frame = self.train_frames.frame(int(rng.integers(len(self.train_frames))))
        image, labels, depth = frame["rgb"], frame["labels"], frame["depth"]
        if rng.random() < 0.5:
            image, labels, depth = image[:, ::-1], labels[:, ::-1], depth[:, ::-1]
        image = jitter_colour(np.ascontiguousarray(image), self.augment.jitter, rng)
        return {"image": image, "labels": np.ascontiguousarray(labels), "depth": np.ascontiguousarray(depth)}

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        logits, depth = model(self.normalise(batch["image"]))
        loss = segmentation_loss(logits, batch["labels"], self.class_weights, VOID)
        if "depth" in batch:
            truth = batch["depth"][:, None]
            valid = (truth < SKY_DEPTH) & (truth <= float(self.options["max_depth"]))
            loss = loss + float(self.options["depth_weight"]) * berhu_loss(depth, truth, valid)
        return loss

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        results = evaluate_joint(model, self.val_split, self.eval_frames, self.recipe.eval_size,
                                 float(self.options["max_depth"]), self.normalise, self.device)
        if self.clip_frames:
            results.update(road_depth_profile(model, self.clip_frames, self.recipe.eval_size, self.normalise,
                                              self.device))
        return results


class RestorationObjective(Objective):
    """RED-Net restoration on random CamVid train patches: MSE to the clean patch; scored by
    PSNR on CamVid val frames (the classical baseline's PSNR and the extra sets are reported
    beside it). With the option ``source_scale`` (low, high), each frame is first shrunk by a
    factor drawn from that range (area averaging, never below the patch size), which gives
    clean patches with more detail per pixel."""

    score = "psnr"

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        image = self.train_split.images[int(rng.integers(len(self.train_split)))]
        width, height = self.recipe.size
        if "source_scale" in self.options:  # shrink the frame first: sharper clean patches
            factor = max(float(rng.uniform(*self.options["source_scale"])), width / image.shape[1],
                         height / image.shape[0])
            image = cv2.resize(image, (max(width, round(image.shape[1] * factor)),
                                       max(height, round(image.shape[0] * factor))), interpolation=cv2.INTER_AREA)
        top = int(rng.integers(0, image.shape[0] - height + 1))
        left = int(rng.integers(0, image.shape[1] - width + 1))
        patch = np.rot90(image[top:top + height, left:left + width], k=int(rng.integers(4)))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = np.ascontiguousarray(patch)
        return {"input": self.degrade(patch, rng), "target": patch}

    def degrade(self, patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        kind = self.options["degradation"]
        if kind == "noise":
            return add_noise(patch, float(rng.uniform(*self.options["sigma"])), rng)
        if kind == "sr":
            return downscale_bicubic(patch, int(self.options["scale"]))
        if kind == "jpeg":
            low, high = self.options["quality"]
            return jpeg_roundtrip(patch, int(rng.integers(low, high + 1)))
        if kind == "blur":
            blurred = blur(patch, random_blur_kernel(rng))
            return add_noise(blurred, float(rng.uniform(*self.options["noise_sigma"])), rng)
        raise NetsError(f"unknown degradation {kind!r}; use 'noise', 'sr', 'jpeg' or 'blur'")

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return F.mse_loss(model(batch["input"]), batch["target"])

    @cached_property
    def bundled_sets(self) -> dict[str, list[np.ndarray]]:
        """scikit-image's held-out colour photographs (``photos``) and sharp grey images
        (``sharp``); empty, with one warning that says why, without the package."""
        try:
            return {"photos": [image for _, image in bundled_photos()],
                    "sharp": [image for _, image in sharp_grey_images()]}
        except NetsError as exc:
            warnings.warn(f"photos_* and sharp_* metrics left out: {exc}")
            return {}

    def extra_sets(self, images: list[np.ndarray]) -> dict[str, tuple[list[np.ndarray], float]]:
        """Extra sets reported beside the score, never used to pick ``best.pt``: for ``sr`` the
        held-out photographs (``photos_*``) and the sharp grey images (``sharp_*``, the validation
        set for choices of training data), for ``jpeg`` the same val frames at quality 10 (``q10_*``)."""
        kind = self.options["degradation"]
        if kind == "sr":
            return {name: (chosen, float(self.options["scale"])) for name, chosen in self.bundled_sets.items()}
        if kind == "jpeg":
            return {"q10": (images, 10.0)}
        return {}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        kind = self.options["degradation"]
        setting = {"noise": "eval_sigma", "sr": "scale", "jpeg": "eval_quality", "blur": "eval_noise_sigma"}[kind]
        images = self.val_split.images[:int(self.options["eval_images"])]
        return evaluate_restoration(model, images, kind, float(self.options[setting]), self.device,
                                    extras=self.extra_sets(images))


class TrackingObjective(Objective):
    """SiamFC: balanced logistic loss on the 17x17 response of exemplar/search pairs, drawn from
    synthetic tracks (share ``1 - camvid_share``) or jittered CamVid regions; scored by one-pass
    success AUC on validation towns, where the tracker's lost threshold is picked, with the
    held-out test towns' AUC reported beside OpenCV TrackerMIL's."""

    score = "val_auc"

    def __init__(self, recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> None:
        super().__init__(recipe, model_spec, device, cache_dir)
        towns = {key: set(self.options[key]) for key in ("train_towns", "val_towns", "test_towns")}
        for a, b in (("train_towns", "val_towns"), ("train_towns", "test_towns"), ("val_towns", "test_towns")):
            if towns[a] & towns[b]:
                raise NetsError(f"{a} and {b} share towns {sorted(towns[a] & towns[b])}")
        self.jitter = PairJitter(float(self.options["stretch"]), float(self.options["max_shift"]),
                                 float(self.options["jitter"]))
        self.labels = response_labels(float(self.options["radius"]))

    @cached_property
    def train_frames(self) -> SyntheticFrames:
        return SyntheticFrames(self.options["train_towns"], int(self.options["frames_per_town"]), self.recipe.size,
                               int(self.options["frame_step"]), self.cache_dir)

    def sample(self, rng: np.random.Generator, step: int) -> dict[str, np.ndarray]:
        pair = None
        if rng.random() >= float(self.options["camvid_share"]):
            pair = synthetic_pair(self.train_frames, int(self.options["max_gap"]), int(self.options["min_side"]),
                                  self.jitter, rng)
        if pair is None:
            image = self.train_split.images[int(rng.integers(len(self.train_split)))]
            pair = region_pair(image, tuple(self.options["region_sides"]), self.jitter, rng)
        exemplar, search = pair
        return {"exemplar": exemplar, "search": search, "labels": self.labels}

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        responses = model(batch["exemplar"] * 255.0, batch["search"] * 255.0)
        return balanced_logistic_loss(responses.float(), batch["labels"][:, None])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        shape = (int(self.options["sequence_frames"]), self.recipe.eval_size, int(self.options["min_side"]))
        validation = track_sequences(self.options["val_towns"], int(self.options["val_sequences"]), *shape)
        test = track_sequences(self.options["test_towns"], int(self.options["test_sequences"]), *shape)
        return evaluate_tracking(model, validation, test, self.options["lost_thresholds"], self.device)


def make_objective(recipe: Recipe, model_spec: ModelSpec, device: torch.device, cache_dir: Path) -> Objective:
    """The objective a recipe names."""
    from nets.train.road_objectives import JointRoadObjective, RoadSegmentationObjective  # built on the above

    kinds = {"segment": SegmentationObjective, "segment-roads": RoadSegmentationObjective, "joint": JointObjective,
             "joint-roads": JointRoadObjective, "restore": RestorationObjective, "track": TrackingObjective}
    return kinds[recipe.objective](recipe, model_spec, device, cache_dir)
