"""The accuracy cost of a reduced precision: the share of pixels whose argmax class changes."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from ..engine import select_device
from ..errors import DenseStreamError
from ..tasks import Task

from .timing import autocast, device_batches


def argmax_disagreement(task: Task, images: Iterable[np.ndarray], device: torch.device | str,
                        dtype: torch.dtype, batch: int = 1) -> float:
    """Fraction of pixels whose class differs between fp32 and ``dtype`` (autocast) on ``images``.

    ``images`` are H x W x 3 uint8 RGB frames of one size (bench frames, or CamVid val later).
    """
    if "labels" not in task.outputs:
        raise DenseStreamError(f"task '{task.name}' gives no labels, so no argmax to compare")
    device = select_device(device)
    task.prepare(device)
    differing = total = 0
    pending: list[np.ndarray] = []

    def compare(chunk: list[np.ndarray]) -> None:
        nonlocal differing, total
        tensor = device_batches(chunk, len(chunk), len(chunk), device)[0]
        with torch.inference_mode():
            reference = task(tensor)["labels"]
            with autocast(device, dtype):
                reduced = task(tensor)["labels"]
        differing += int((reference != reduced).sum())
        total += reference.numel()

    for image in images:
        pending.append(image)
        if len(pending) == batch:
            compare(pending)
            pending = []
    if pending:
        compare(pending)
    if total == 0:
        raise DenseStreamError("no frames given to compare precisions on")
    return differing / total
