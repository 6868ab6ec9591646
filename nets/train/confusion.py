"""Where the pixels of the classes users notice go: rows of the confusion matrix on CamVid val
and on held-out IDD-lite sequences, as markdown tables for docs/training.md."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nets.train.evaluate import predict_at
from nets.train.idd import IDD_GROUPS, group_of_class
from nets.train.metrics import ConfusionMatrix
from nets.train.roads import infer_size
from nets.zoo import CAMVID_CLASSES

__all__ = ["confusion_tables", "markdown_rows"]

CAMVID_ROWS = ("Sky", "Building", "Car", "Road")
IDD_ROWS = ("sky", "vehicles", "far objects", "drivable")


def markdown_rows(counts: torch.Tensor, names: Sequence[str], rows: Sequence[str]) -> str:
    """A table of the chosen truth ``rows``: the percentage of each one's pixels predicted as
    each class in ``names``."""
    lines = ["| true \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in rows:
        counts_row = counts[names.index(row)].double()
        shares = 100.0 * counts_row / counts_row.sum().clamp(min=1)
        lines.append(f"| {row} | " + " | ".join(f"{share:.1f}" for share in shares.tolist()) + " |")
    return "\n".join(lines)


@torch.inference_mode()
def confusion_tables(model: nn.Module, objective) -> str:
    """CamVid val rows (frames at the objective's eval size) and, for objectives that hold
    IDD-lite, its held-out sequences' group rows (at the product's ``auto`` size)."""
    model.eval()
    size = objective.recipe.eval_size
    camvid = ConfusionMatrix(len(CAMVID_CLASSES))
    for image, labels in zip(objective.val_split.images, objective.val_split.labels):
        logits, _ = predict_at(model, image, size, objective.normalise, objective.device)
        camvid.update(logits.argmax(1)[0].cpu(), torch.from_numpy(labels))
    parts = [f"CamVid val, {size[0]}x{size[1]}: % of each true class's pixels\n\n",
             markdown_rows(camvid.counts, list(CAMVID_CLASSES), CAMVID_ROWS)]
    if hasattr(objective, "idd_val"):
        to_group = torch.from_numpy(group_of_class())
        idd = ConfusionMatrix(len(IDD_GROUPS))
        for image, labels in zip(objective.idd_val.images, objective.idd_val.labels):
            frame_size = infer_size(image.shape[1], image.shape[0], size[1])
            logits, _ = predict_at(model, image, frame_size, objective.normalise, objective.device)
            idd.update(to_group[logits.argmax(1)[0].cpu()], torch.from_numpy(labels.astype(np.int64)))
        parts += [f"\n\nIDD-lite held-out sequences ({len(objective.idd_val)} frames): % of each true group's pixels\n\n",
                  markdown_rows(idd.counts, list(IDD_GROUPS), IDD_ROWS)]
    return "".join(parts)
