"""How much of the class-weight offsets a shipped segmentation model takes off its scores.

Training with class weights w_c teaches scores of log(w_c p(c|x)) + const. Taking the whole
log w_c off (strength 1) gives back the posterior, which maximises pixel accuracy; taking none
off (strength 0) keeps the loss's push towards rare classes. mIoU, which weighs every class
alike, is best in between. ``calibrate`` runs the validation frames once, scores each strength
of a fixed grid on the segmentation part of the recipe's selection score (CamVid val mIoU, and
the held-out IDD-lite group mIoU where the recipe has it) and keeps the best in the run folder's
``calibration.json``, which ``eval`` and ``export`` then deploy with. One number, chosen on
validation only, like every other selection here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nets.errors import NetsError
from nets.train.evaluate import predict_at
from nets.train.idd import IDD_GROUPS, group_of_class
from nets.train.loop import best_step, record_command
from nets.train.metrics import ConfusionMatrix
from nets.train.objectives import SegmentationObjective
from nets.train.roads import infer_size

__all__ = ["CALIBRATION", "STRENGTHS", "strength_scores", "calibrate", "read_calibration", "read_strength"]

CALIBRATION = "calibration.json"
STRENGTHS = tuple(round(0.1 * step, 1) for step in range(11))


def read_calibration(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``calibration.json`` (None when it was not calibrated); an error when it is
    unreadable or ``best.pt`` changed since (a resumed run), as the choice was made for other weights."""
    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        record["offset_strength"], step = float(record["offset_strength"]), int(record["best_step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetsError(f"{path} is unreadable: {exc}") from None
    if step != best_step(Path(run_dir)):
        raise NetsError(f"{path} was made for the best weights of step {step}, but best.pt is now another "
                        f"step: run 'python -m nets.train calibrate' on it again")
    return record


def read_strength(run_dir: str | Path) -> float:
    """The offset strength a run was calibrated to (1, the posterior, when it was not)."""
    record = read_calibration(run_dir)
    return 1.0 if record is None else record["offset_strength"]


def _shifted(logits: Tensor, offsets: Tensor, strength: float) -> Tensor:
    return (logits[0] - strength * offsets[:, None, None]).argmax(0)


@torch.inference_mode()
def strength_scores(objective: SegmentationObjective, trained: nn.Module,
                    strengths: tuple[float, ...] = STRENGTHS) -> dict[float, dict[str, float]]:
    """For each strength, CamVid val mIoU (``miou``), the held-out IDD-lite group mIoU where
    the objective has it, and their mean (``score``), from one pass of ``trained`` (the model
    as training left it, no offsets taken off) over the frames."""
    trained.eval()
    offsets = objective.score_offsets.cpu()
    camvid = {s: ConfusionMatrix(len(offsets)) for s in strengths}
    for image, labels in zip(objective.val_split.images, objective.val_split.labels):
        logits = predict_at(trained, image, objective.recipe.eval_size, objective.normalise, objective.device)[0].cpu()
        for strength in strengths:
            camvid[strength].update(_shifted(logits, offsets, strength), torch.from_numpy(labels))
    results = {s: {"miou": camvid[s].miou()} for s in strengths}
    idd = getattr(objective, "idd_val", None)
    if idd is not None:
        to_group = torch.from_numpy(group_of_class())
        groups = {s: ConfusionMatrix(len(IDD_GROUPS)) for s in strengths}
        rows = objective.recipe.eval_size[1]
        for image, labels in zip(idd.images, idd.labels):
            size = infer_size(image.shape[1], image.shape[0], rows)
            logits = predict_at(trained, image, size, objective.normalise, objective.device)[0].cpu()
            truth = torch.from_numpy(labels.astype(np.int64))
            for strength in strengths:
                groups[strength].update(to_group[_shifted(logits, offsets, strength)], truth)
        for strength in strengths:
            results[strength]["idd_group_miou"] = groups[strength].miou()
    for values in results.values():
        values["score"] = float(np.mean(list(values.values())))
    return results


def calibrate(objective: SegmentationObjective, trained: nn.Module, run_dir: str | Path,
              command: str | None = None) -> dict[str, Any]:
    """Pick the strength with the best ``score`` (the lower one on a tie), evaluate the model
    deployed with it in full, and write both to the run's ``calibration.json`` (and ``command``
    to its command history, which export chains); returns the record."""
    scores = strength_scores(objective, trained)
    best = max(scores, key=lambda s: (scores[s]["score"], -s))
    objective.offset_strength = best
    metrics = objective.evaluate(objective.deployed(trained))
    record = {"offset_strength": best, "best_step": best_step(Path(run_dir)),
              "grid": {str(s): v for s, v in scores.items()}, "metrics": metrics, "command": command}
    path = Path(run_dir) / CALIBRATION
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)
    if command:
        record_command(Path(run_dir) / "command.txt", command)
    return record
