"""Blending two trained weight sets of one model into a new, finished run folder.

Two fine-tunings that share a starting point usually sit in one basin of the loss, and the
straight line between their weights often scores better than either end (model soups, WiSE-FT).
``blend`` writes ``(1 - weight) * base + weight * other`` (every floating tensor; integer
buffers from ``base``) as the best weights of a new run folder that starts from ``base``, with
its held-out metrics, so that ``calibrate`` and ``export`` treat it like any finished run; the
other parent and the weight go into ``metrics.json`` and from there into the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from nets import zoo
from nets.errors import NetsError
from nets.train.loop import (best_step, build_model, finished_record, pick_device, record_command, save_atomic,
                             starting_weights)
from nets.train.objectives import Objective, make_objective
from nets.train.recipes import INIT_RECORD, ZOO_INIT, Recipe

__all__ = ["blend_states", "blend", "BLEND_RECORD"]

BLEND_RECORD = "blend"
"""The key of ``metrics.json`` that says what was blended in."""


def blend_states(base: dict[str, torch.Tensor], other: dict[str, torch.Tensor],
                 weight: float) -> dict[str, torch.Tensor]:
    """``(1 - weight) * base + weight * other`` for floating tensors; other tensors from ``base``."""
    if set(base) != set(other):
        raise NetsError("the two weight sets do not have the same tensors; only one model's weights can be blended")
    blended = {}
    for key, tensor in base.items():
        if tensor.shape != other[key].shape:
            raise NetsError(f"{key} is {tuple(tensor.shape)} in one weight set and {tuple(other[key].shape)} in the other")
        if tensor.is_floating_point():
            mixed = (1.0 - weight) * tensor.float() + weight * other[key].to(tensor.device).float()
            blended[key] = mixed.to(tensor.dtype)
        else:
            blended[key] = tensor
    return blended


def _provenance(source: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    """What a blend's other parent was: the shipped model and its sha256, or the run and its best step."""
    if source.startswith(ZOO_INIT):
        return {"model": source[len(ZOO_INIT):], "sha256": entry["sha256"] if entry else None}
    return {"run": source, "best_step": best_step(Path(source))}


def _base_training(source: str, entry: dict[str, Any] | None) -> tuple[float, str]:
    """Seconds per training step and training device of the base weights (what a user retraining
    them meets; the blend itself trains nothing)."""
    if entry is not None:
        return float(entry["seconds_per_train_step"]), str(entry["train_device"])
    path = Path(source) / "metrics.json"
    if not path.is_file():
        raise NetsError(f"run {source} is not finished (no metrics.json); blend finished runs or shipped weights")
    record = json.loads(path.read_text())
    return float(record["seconds_per_step"]), str(record["device"])


def _other_weights(chosen: Recipe, other: str, objective: Objective) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The weights blended in: a run folder's best, or any shipped model of the same layout
    (``zoo:NAME`` need not be the recipe's own model: the CamVid-only weights blend into ``seg``)."""
    if not other.startswith(ZOO_INIT):
        return starting_weights(chosen, other, objective)
    name = other[len(ZOO_INIT):]
    if name not in zoo.available():
        raise NetsError(f"--with {other}: no shipped model {name!r}")
    trained, entry = objective.shipped_trained(name)
    return trained.state_dict(), entry


def blend(chosen: Recipe, run_dir: str | Path, other: str, weight: float, device: str | None = None,
          command: str | None = None) -> dict[str, Any]:
    """Blend the weights ``chosen.init`` names with those ``other`` names (each a run folder or
    ``zoo:MODEL``) into the new run folder ``run_dir``; returns its metrics record."""
    if not chosen.init:
        raise NetsError("a blend needs its base weights: give --init RUN or --init zoo:MODEL")
    if not 0.0 < weight < 1.0:
        raise NetsError(f"the blend weight must be between 0 and 1 (exclusive), got {weight}")
    run_dir = Path(run_dir)
    if (run_dir / "best.pt").exists() or (run_dir / "last.pt").exists():
        raise NetsError(f"{run_dir} already holds weights; blend into a new run folder")
    target = pick_device(device)
    objective = make_objective(chosen, zoo.spec(chosen.model), target, run_dir / "cache")
    base, base_entry = starting_weights(chosen, chosen.init, objective)
    mixed, other_entry = _other_weights(chosen, other, objective)
    seconds_per_step, train_device = _base_training(chosen.init, base_entry)
    model = build_model(chosen).to(target)
    model.load_state_dict(blend_states(base, mixed, weight))
    metrics = objective.evaluate_trained(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    if base_entry is not None:
        (run_dir / INIT_RECORD).write_text(json.dumps(base_entry, indent=2) + "\n")
    (run_dir / "recipe.json").write_text(json.dumps(chosen.to_dict(), indent=2) + "\n")
    save_atomic({"model": model.state_dict(), "step": 0, "metrics": metrics}, run_dir / "best.pt")
    if command:
        record_command(run_dir / "command.txt", command)
    record = {**finished_record(chosen, objective, 0, 0, metrics, metrics, seconds_per_step, train_device),
              BLEND_RECORD: {"with": _provenance(other, other_entry), "weight": weight}}
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
