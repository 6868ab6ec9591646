"""The train / eval / export commands as plain functions, shared by ``python -m nets.train`` and
the ``densestream train|eval`` click commands."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from nets import zoo
from nets.checkpoints import read_state_dict
from nets.errors import NetsError
from nets.train.calibration import calibrate, read_strength
from nets.train.loop import build_model, pick_device, train
from nets.train.confusion import confusion_tables
from nets.train.objectives import Objective, SegmentationObjective, make_objective
from nets.train.recipes import OPTIONAL_OPTIONS, Recipe, parse_size, recipe, run_recipe

__all__ = ["make_recipe", "train_command", "eval_command", "confusion_command", "calibrate_command"]


def make_recipe(name: str, size: str | None = None, gpu: bool = False, steps: int | None = None,
                batch: int | None = None, camvid: str | None = None, seed: int | None = None,
                lr: float | None = None, init: str | None = None, options: Sequence[str] = (),
                ema: float | None = None, eval_size: str | None = None) -> Recipe:
    """A registered recipe with the command-line overrides applied (None keeps the recipe's value);
    each of ``options`` is ``KEY=JSON`` and replaces or adds one of the objective's options."""
    overrides: dict[str, Any] = {}
    if size is not None:
        overrides["size"] = parse_size(size)
    if eval_size is not None:
        overrides["eval_size"] = parse_size(eval_size)
    for key, value in (("steps", steps), ("batch", batch), ("camvid_root", camvid), ("seed", seed),
                       ("lr", lr), ("init", init), ("ema", ema)):
        if value is not None:
            overrides[key] = value
    chosen = recipe(name, gpu=gpu, **overrides)
    if options:
        chosen = dataclasses.replace(chosen, options={**chosen.options, **_parse_options(chosen, options)})
    return chosen


def _parse_options(chosen: Recipe, options: Sequence[str]) -> dict[str, Any]:
    """``KEY=JSON`` texts as a dict, for keys the recipe has or its objective accepts."""
    allowed = set(chosen.options) | set(OPTIONAL_OPTIONS.get(chosen.objective, ()))
    parsed = {}
    for text in options:
        key, sep, value = text.partition("=")
        if not sep or key not in allowed:
            raise NetsError(f"--option must be KEY=VALUE with KEY one of {', '.join(sorted(allowed))}; got {text!r}")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            raise NetsError(f"--option {key}: {value!r} is not a JSON value (e.g. 3, 0.5 or [10, 30])") from None
    return parsed


def train_command(chosen: Recipe, run_dir: str, device: str | None, workers: int | None, until: int | None,
                  minutes: float | None, threads: int | None, command: str,
                  log: Callable[[str], None]) -> dict[str, Any] | None:
    """Train or resume a run; returns the final metrics record once the run is finished."""
    return train(chosen, run_dir, device=device, workers=workers, until=until, minutes=minutes,
                 command=command, threads=threads, log=log)


def _best_weights(chosen: Recipe, run_dir: str) -> torch.nn.Module:
    """A run's best weights as training left them, in the model of ``chosen``'s recipe."""
    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise NetsError(f"{path} not found: the run has not been evaluated yet")
    saved = run_recipe(run_dir)
    if saved.model != chosen.model:
        raise NetsError(f"run {run_dir} trained {saved.model!r}, not {chosen.model!r} of recipe {chosen.name!r}")
    model = build_model(saved)
    model.load_state_dict(read_state_dict(path))
    return model


def _evaluated_model(chosen: Recipe, run_dir: str | None, weights_dir: str | None,
                     device: str | None) -> tuple[torch.nn.Module, Objective]:
    """The model ``eval`` scores (a run's best weights deployed, or the shipped weights) and the
    recipe's objective."""
    if run_dir and weights_dir:
        raise NetsError("give a run folder or a weights folder, not both")
    target = pick_device(device)
    if run_dir:
        model = _best_weights(chosen, run_dir)
    else:
        model, _ = zoo.load(chosen.model, weights_dir)
    cache = Path(run_dir) / "cache" if run_dir else Path(tempfile.gettempdir()) / "densestream-cache"
    objective = make_objective(chosen, zoo.spec(chosen.model), target, cache)
    model = model.to(target)
    if run_dir and isinstance(objective, SegmentationObjective):
        objective.offset_strength = read_strength(run_dir)
    return (objective.deployed(model) if run_dir else model), objective


def calibrate_command(chosen: Recipe, run_dir: str, device: str | None, command: str) -> dict[str, Any]:
    """Choose a segmentation run's offset strength on validation (``nets.train.calibration``)."""
    model = _best_weights(chosen, run_dir)
    target = pick_device(device)
    objective = make_objective(chosen, zoo.spec(chosen.model), target, Path(run_dir) / "cache")
    if not isinstance(objective, SegmentationObjective):
        raise NetsError(f"recipe {chosen.name!r} does not segment; only segmentation runs are calibrated")
    return calibrate(objective, model.to(target), run_dir, command)


def eval_command(chosen: Recipe, run_dir: str | None, weights_dir: str | None, device: str | None) -> dict[str, float]:
    """Held-out metrics of a run's best weights (``run_dir``, deployed as export would ship them)
    or of the shipped weights in ``weights_dir`` (with neither, the weights in nets/weights)."""
    model, objective = _evaluated_model(chosen, run_dir, weights_dir, device)
    return objective.evaluate(model)


def confusion_command(chosen: Recipe, run_dir: str | None, weights_dir: str | None, device: str | None) -> str:
    """Markdown tables of where CamVid val's and held-out IDD-lite's sky, building and car pixels
    go, for the same weights ``eval_command`` scores (segmentation recipes only)."""
    model, objective = _evaluated_model(chosen, run_dir, weights_dir, device)
    if not isinstance(objective, SegmentationObjective):
        raise NetsError(f"recipe {chosen.name!r} does not segment; confusion tables need a segmentation recipe")
    return confusion_tables(model, objective)
