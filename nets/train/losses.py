"""Training losses: class-balanced cross-entropy, coarse-group likelihood, distillation from a
teacher's class scores, berHu depth, balanced logistic (SiamFC)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["segmentation_loss", "group_loss", "distillation_loss", "berhu_loss", "siamfc_labels", "balanced_logistic_loss"]


def segmentation_loss(logits: Tensor, labels: Tensor, weights: Tensor | None, ignore_index: int) -> Tensor:
    """Cross-entropy over N x C x H x W logits, weighted per class, ``ignore_index`` (void) skipped."""
    return F.cross_entropy(logits, labels.long(), weight=weights, ignore_index=ignore_index)


def group_loss(logits: Tensor, groups: Tensor, members: Tensor, offsets: Tensor, ignore_index: int) -> Tensor:
    """Negative log of the summed probability of each pixel's labelled group's member classes.
    ``members`` is C x G (0/1); the probabilities are those of ``logits - offsets``, the scores
    the model is deployed with, so a group label and a class-weighted fine label agree on what
    the shipped scores mean. Pixels labelled ``ignore_index`` are skipped; 0 when none is left."""
    log_p = F.log_softmax(logits - offsets.view(1, -1, 1, 1).to(logits), dim=1)
    groups = groups.long()
    valid = groups != ignore_index
    if not valid.any():
        return logits.sum() * 0.0
    picked = torch.zeros_like(log_p[:, 0])
    for group in range(members.shape[1]):
        classes = members[:, group].nonzero().squeeze(1).to(logits.device)
        mask = groups == group
        if mask.any():
            picked = torch.where(mask, torch.logsumexp(log_p[:, classes], dim=1), picked)
    return -picked[valid].mean()


def distillation_loss(logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """KL(teacher || student) between the per-pixel softmaxes of two N x C x H x W score maps,
    averaged over the pixels."""
    if logits.shape != teacher_logits.shape:
        raise ValueError(f"score shapes differ: {tuple(logits.shape)}, {tuple(teacher_logits.shape)}")
    log_student = F.log_softmax(logits.float(), dim=1)
    log_teacher = F.log_softmax(teacher_logits.float(), dim=1)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1).mean()


def berhu_loss(prediction: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Reverse Huber (berHu) over valid pixels: L1 below c, (x² + c²) / 2c above, with c a fifth
    of the batch's largest absolute error (Laina et al. 2016)."""
    if not (prediction.shape == truth.shape == valid.shape):
        raise ValueError(f"depth shapes differ: {tuple(prediction.shape)}, {tuple(truth.shape)}, {tuple(valid.shape)}")
    error = (prediction - truth)[valid.bool()].abs()
    if error.numel() == 0:
        return prediction.sum() * 0.0
    c = (0.2 * error.max().detach()).clamp(min=1e-6)
    return torch.where(error <= c, error, (error * error + c * c) / (2 * c)).mean()


def siamfc_labels(size: int, radius_cells: float, device: torch.device | None = None) -> Tensor:
    """A size x size map: 1 within ``radius_cells`` of the centre (positives), 0 elsewhere."""
    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    distance = torch.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    return (distance <= radius_cells).float()


def balanced_logistic_loss(responses: Tensor, labels: Tensor) -> Tensor:
    """Logistic loss on N x 1 x S x S responses with positives and negatives each weighted to half."""
    labels = labels.expand_as(responses)
    positives = labels.sum()
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        raise ValueError("balanced logistic loss needs both positive and negative cells")
    weights = torch.where(labels > 0, 0.5 / positives, 0.5 / negatives)
    return F.binary_cross_entropy_with_logits(responses, labels, weight=weights, reduction="sum")
