"""CamVid reading and augmentation, class-balancing weights, and reproducible per-step batches.

Every batch is a pure function of (seed, step): its random generator is seeded with both, so a
run resumed at step k sees exactly the batches an uninterrupted run would, whatever the number
of loader workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from nets.errors import NetsError

__all__ = ["CAMVID_CLASSES", "VOID", "read_rgb", "read_labels", "camvid_pairs", "CamVidSplit",
           "SegAugment", "augment_pair", "jitter_colour", "class_weights", "StepBatches", "step_loader",
           "to_tensors"]

CAMVID_CLASSES = 11
VOID = 11
Sample = dict[str, np.ndarray]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise NetsError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_labels(path: Path) -> np.ndarray:
    """A single-channel label PNG as H x W uint8 class ids."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise NetsError(f"cannot read label image {path}")
    if labels.ndim != 2:
        raise NetsError(f"label image {path} must have one channel, got shape {labels.shape}")
    return labels


def camvid_pairs(root: str | Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of ``root/split/{images/*.jpg, labels/*.png}``, matched by stem."""
    folder = Path(root) / split
    images = sorted((folder / "images").glob("*.jpg")) + sorted((folder / "images").glob("*.png"))
    if not images:
        raise NetsError(f"no CamVid images in {folder / 'images'}")
    pairs = []
    for image in sorted(images):
        label = folder / "labels" / f"{image.stem}.png"
        if not label.is_file():
            raise NetsError(f"CamVid image {image.name} has no label file {label}")
        pairs.append((image, label))
    return pairs


class CamVidSplit:
    """One CamVid split held in memory as uint8 arrays (367 train frames are about 190 MB)."""

    def __init__(self, root: str | Path, split: str) -> None:
        self.pairs = camvid_pairs(root, split)
        self.images = [read_rgb(image) for image, _ in self.pairs]
        self.labels = [read_labels(label) for _, label in self.pairs]
        for (image_path, _), image, labels in zip(self.pairs, self.images, self.labels):
            if image.shape[:2] != labels.shape:
                raise NetsError(f"{image_path.name}: image {image.shape[:2]} and labels {labels.shape} differ in size")

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class SegAugment:
    """Training augmentation: random rescale, crop (width, height), horizontal flip, colour jitter;
    ``aspect`` > 0 also stretches width against height by a factor up to exp(± aspect)."""

    crop: tuple[int, int]
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    jitter: float = 0.3
    aspect: float = 0.0


def jitter_colour(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each scaled by a factor in 1 ± strength."""
    if strength <= 0:
        return image
    out = image.astype(np.float32)
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    out *= brightness
    out = (out - out.mean()) * contrast + out.mean()
    grey = out.mean(axis=2, keepdims=True)
    out = (out - grey) * saturation + grey
    return np.clip(out, 0, 255).astype(np.uint8)


def augment_pair(image: np.ndarray, labels: np.ndarray, augment: SegAugment,
                 rng: np.random.Generator, fill: int = VOID) -> tuple[np.ndarray, np.ndarray]:
    """Rescale, pad (labels with ``fill``, void by default) to at least the crop, crop, flip and
    jitter one pair."""
    factor = rng.uniform(*augment.scale)
    stretch = float(np.exp(rng.uniform(-augment.aspect, augment.aspect))) if augment.aspect > 0 else 1.0
    height, width = labels.shape
    size = (max(1, round(width * factor * stretch)), max(1, round(height * factor / stretch)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    crop_w, crop_h = augment.crop
    pad_h, pad_w = max(0, crop_h - labels.shape[0]), max(0, crop_w - labels.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=fill)
    top = int(rng.integers(0, labels.shape[0] - crop_h + 1))
    left = int(rng.integers(0, labels.shape[1] - crop_w + 1))
    image = image[top:top + crop_h, left:left + crop_w]
    labels = labels[top:top + crop_h, left:left + crop_w]
    if augment.flip and rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return jitter_colour(np.ascontiguousarray(image), augment.jitter, rng), np.ascontiguousarray(labels)


def class_weights(labels: Sequence[np.ndarray], num_classes: int = CAMVID_CLASSES,
                  method: str = "median") -> np.ndarray:
    """Per-class loss weights from label maps (void ignored): ``median`` frequency balancing
    (Eigen & Fergus: median(f) / f_c with f_c counted over the images where c occurs) or
    ``log`` (1 / ln(1.02 + share_c), as in ENet). Absent classes get weight 0."""
    pixels = np.zeros(num_classes, dtype=np.float64)
    image_pixels = np.zeros(num_classes, dtype=np.float64)
    for label_map in labels:
        counts = np.bincount(label_map.reshape(-1), minlength=num_classes + 1)[:num_classes].astype(np.float64)
        pixels += counts
        image_pixels += np.where(counts > 0, counts.sum(), 0.0)
    present = pixels > 0
    if not present.any():
        raise NetsError("class weights need at least one labelled pixel")
    weights = np.zeros(num_classes, dtype=np.float64)
    if method == "median":
        frequency = pixels[present] / image_pixels[present]
        weights[present] = np.median(frequency) / frequency
    elif method == "log":
        weights[present] = 1.0 / np.log(1.02 + pixels[present] / pixels.sum())
    else:
        raise NetsError(f"class weighting must be 'median' or 'log', got {method!r}")
    return weights.astype(np.float32)


def to_tensors(samples: list[Sample]) -> dict[str, torch.Tensor]:
    """Stack samples: uint8 H x W x 3 images become float 3 x H x W in 0..1, other arrays stack as is."""
    batch = {}
    for key in samples[0]:
        stacked = torch.from_numpy(np.stack([sample[key] for sample in samples]))
        if stacked.dtype == torch.uint8 and stacked.dim() == 4:
            stacked = stacked.permute(0, 3, 1, 2).float().div_(255.0)
        batch[key] = stacked
    return batch


class StepBatches(Dataset):
    """Item ``step`` is the batch for that training step: ``batch`` samples drawn by
    ``sample(rng, step)`` with ``rng`` seeded by (seed, step)."""

    def __init__(self, sample: Callable[[np.random.Generator, int], Sample], batch: int, seed: int,
                 steps: int) -> None:
        if batch < 1:
            raise NetsError(f"batch size must be positive, got {batch}")
        self.sample = sample
        self.batch = batch
        self.seed = seed
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        return to_tensors([self.sample(rng, step) for _ in range(self.batch)])


def _single_threaded_cv2(_: int) -> None:
    cv2.setNumThreads(1)


def step_loader(batches: StepBatches, start: int, workers: int, pin: bool) -> DataLoader[Any]:
    """Batches for steps ``start .. batches.steps - 1`` in order, built by ``workers`` processes."""
    return DataLoader(batches, batch_size=None, sampler=range(start, batches.steps), num_workers=workers,
                      pin_memory=pin, worker_init_fn=_single_threaded_cv2 if workers else None,
                      persistent_workers=False, prefetch_factor=2 if workers else None)
