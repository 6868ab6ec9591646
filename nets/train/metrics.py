"""Evaluation metrics computed by the protocols in docs/references.md, so numbers compare with
the literature: split-level mIoU, depth AbsRel/RMSE/delta, PSNR (RGB and Y with border crop),
and one-pass tracking success AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["ConfusionMatrix", "DepthErrors", "median_scaled", "psnr", "psnr_y", "rgb_to_y", "box_iou", "success_auc"]


class ConfusionMatrix:
    """Counts (truth, prediction) pairs over a whole split; labels >= ``num_classes`` (void)
    are ignored. ``miou`` is the mean over classes of the split-level IoU, not a per-image mean."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.counts = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: Tensor, truth: Tensor) -> None:
        """Add a batch of predicted and true label maps (same shape, integer ids)."""
        if prediction.shape != truth.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in shape")
        truth = truth.reshape(-1).long().cpu()
        prediction = prediction.reshape(-1).long().cpu()
        valid = (truth >= 0) & (truth < self.num_classes)
        index = truth[valid] * self.num_classes + prediction[valid].clamp(0, self.num_classes - 1)
        self.counts += torch.bincount(index, minlength=self.num_classes ** 2).reshape(self.counts.shape)

    def iou(self) -> Tensor:
        """Per-class IoU (float64); NaN for a class absent from both truth and prediction."""
        counts = self.counts.double()
        hits = counts.diag()
        union = counts.sum(0) + counts.sum(1) - hits
        return torch.where(union > 0, hits / union.clamp(min=1), torch.full_like(hits, float("nan")))

    def miou(self) -> float:
        """Mean IoU over the classes that occur in truth or prediction."""
        iou = self.iou()
        present = ~iou.isnan()
        if not present.any():
            raise ValueError("mIoU is undefined: no labelled pixels were counted")
        return float(iou[present].mean())

    def pixel_accuracy(self) -> float:
        """Fraction of labelled pixels predicted correctly."""
        total = int(self.counts.sum())
        if total == 0:
            raise ValueError("pixel accuracy is undefined: no labelled pixels were counted")
        return float(self.counts.diag().sum()) / total


class DepthErrors:
    """Accumulates AbsRel, RMSE (metres) and delta<1.25 over all valid pixels of a split."""

    def __init__(self) -> None:
        self.count = 0
        self.abs_rel = 0.0
        self.squared = 0.0
        self.within = 0

    def update(self, prediction: Tensor, truth: Tensor, valid: Tensor) -> None:
        """Add predicted and true depth (metres) over the pixels where ``valid`` is true and the
        truth is positive; predictions are clamped to a small positive value."""
        if not (prediction.shape == truth.shape == valid.shape):
            raise ValueError(f"depth shapes differ: {tuple(prediction.shape)}, {tuple(truth.shape)}, "
                             f"{tuple(valid.shape)}")
        mask = valid.bool() & (truth > 0)
        d = prediction[mask].double().clamp(min=1e-3)
        t = truth[mask].double()
        self.count += int(t.numel())
        self.abs_rel += float(((d - t).abs() / t).sum())
        self.squared += float(((d - t) ** 2).sum())
        self.within += int((torch.maximum(d / t, t / d) < 1.25).sum())

    def result(self) -> dict[str, float]:
        """{'abs_rel', 'rmse', 'delta1'} over everything added."""
        if self.count == 0:
            raise ValueError("depth errors are undefined: no valid pixels were counted")
        return {"abs_rel": self.abs_rel / self.count, "rmse": (self.squared / self.count) ** 0.5,
                "delta1": self.within / self.count}


def median_scaled(prediction: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """The prediction times median(truth) / median(prediction) over the valid pixels with a
    positive truth: the per-frame scaling of the usual monocular-depth protocol, which scores
    the shape of the depth map and not its global scale."""
    mask = valid.bool() & (truth > 0)
    if not bool(mask.any()):
        return prediction
    return prediction * (truth[mask].median() / prediction[mask].clamp(min=1e-3).median())


def _as_float(image: np.ndarray | Tensor) -> np.ndarray:
    array = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    return array.astype(np.float64)


def psnr(estimate: np.ndarray | Tensor, reference: np.ndarray | Tensor, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all values; infinite for identical inputs."""
    a, b = _as_float(estimate), _as_float(reference)
    if a.shape != b.shape:
        raise ValueError(f"PSNR needs equal shapes, got {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in the 16-235 range from H x W x 3 RGB in 0-255 (as MATLAB rgb2ycbcr)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects H x W x 3 RGB, got shape {image.shape}")
    rgb = image.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr_y(estimate: np.ndarray, reference: np.ndarray, border: int) -> float:
    """Super-resolution PSNR: Y channel (BT.601) of H x W x 3 RGB 0-255 images with ``border``
    pixels (the scale) cropped from every side."""
    if estimate.shape != reference.shape:
        raise ValueError(f"PSNR needs equal shapes, got {estimate.shape} and {reference.shape}")
    if border < 0 or 2 * border >= min(reference.shape[:2]):
        raise ValueError(f"border {border} leaves nothing of a {reference.shape[:2]} image")
    crop = (slice(border, reference.shape[0] - border), slice(border, reference.shape[1] - border))
    return psnr(rgb_to_y(np.rint(np.clip(_as_float(estimate), 0, 255)))[crop], rgb_to_y(reference)[crop])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def success_auc(ious: Sequence[float]) -> float:
    """One-pass success AUC: mean over thresholds 0, 0.05, ..., 1 of the fraction of frames
    whose IoU exceeds the threshold."""
    values = np.asarray(ious, dtype=np.float64)
    if values.size == 0:
        raise ValueError("success AUC needs at least one IoU")
    thresholds = np.linspace(0.0, 1.0, 21)
    return float(np.mean([(values > t).mean() for t in thresholds]))
