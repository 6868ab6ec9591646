"""Ship a finished run: fp16 weights in the zoo's weights folder, listed in its manifest with
sha256, recipe, data, metrics, CPU speed at 480x360 and the command that trained it."""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nets import zoo
from nets.checkpoints import load_state_strict, read_state_dict
from nets.errors import NetsError, first_line
from nets.train.blend import BLEND_RECORD
from nets.train.calibration import read_calibration
from nets.train.loop import best_step
from nets.train.objectives import SegmentationObjective, make_objective
from nets.train.recipes import INIT_RECORD, ZOO_INIT, run_recipe

__all__ = ["export", "half_state", "cpu_fps", "FPS_SIZE"]

FPS_SIZE = (480, 360)


def half_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict with floating tensors cast to fp16 (integer buffers kept)."""
    return {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu() for k, v in state.items()}


def _fps_input(model_spec: zoo.ModelSpec, model: nn.Module) -> Tensor:
    width, height = FPS_SIZE
    scale = getattr(model, "scale", 1) if model_spec.task == "restore" else 1
    return torch.rand(1, 3, height // scale, width // scale)


@torch.inference_mode()
def cpu_fps(model: nn.Module, model_spec: zoo.ModelSpec, frames: int = 5) -> float:
    """Frames per second of one fp32 forward on the CPU for a 480x360 frame (for super-resolution,
    a 480x360 output), after one warm-up run: one over the median frame time, so that a burst
    of other work on a shared machine does not set the figure."""
    if frames < 1:
        raise NetsError(f"fps needs at least one timed frame, got {frames}")
    if model_spec.task == "track":
        from nets.train.evaluate import tracker_fps

        return tracker_fps(model, frames, FPS_SIZE)
    model = model.cpu().float().eval()
    frame = _fps_input(model_spec, model)
    model(frame)
    seconds = []
    for _ in range(frames):
        start = time.perf_counter()
        model(frame)
        seconds.append(time.perf_counter() - start)
    return 1.0 / statistics.median(seconds)


def _write_manifest(weights_dir: Path, name: str, entry: dict[str, Any]) -> None:
    path = weights_dir / "manifest.json"
    data = json.loads(path.read_text()) if path.is_file() else {"models": {}}
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise NetsError(f"weights manifest {path} must be an object with a 'models' object")
    data["models"][name] = entry
    data["models"] = dict(sorted(data["models"].items()))
    partial = path.with_name(f".manifest.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


def _run_chain(run_dir: Path) -> list[Path]:
    """The run folder and the earlier run folders it started from (``init``), earliest first;
    the chain ends at a run that started from scratch or from shipped weights (``zoo:MODEL``)."""
    chain: list[Path] = []
    while True:
        if any(run_dir.resolve() == seen.resolve() for seen in chain):
            raise NetsError(f"run {run_dir} starts from itself")
        recipe = run_recipe(run_dir)
        chain.insert(0, run_dir)
        if not recipe.init or recipe.init.startswith(ZOO_INIT):
            return chain
        run_dir = Path(recipe.init)


def _shipped_start(chain: list[Path]) -> dict[str, Any] | None:
    """The manifest entry of the shipped weights the chain's first run started from, as that run
    recorded it when it began (the manifest itself may list newer weights since)."""
    if not run_recipe(chain[0]).init.startswith(ZOO_INIT):
        return None
    path = chain[0] / INIT_RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NetsError(f"run {chain[0]} started from shipped weights but {path} is unreadable: "
                        f"{first_line(exc)}") from None


def _started_from(chain: list[Path], start: dict[str, Any] | None) -> dict[str, str] | None:
    """The shipped model (name and sha256) the chain's first run started from, if any."""
    if start is None:
        return None
    return {"model": run_recipe(chain[0]).init[len(ZOO_INIT):], "sha256": start["sha256"]}


def _command_history(chain: list[Path], start: dict[str, Any] | None) -> str | None:
    """The training commands of every run in the chain joined with ``&&``, after those that made
    and shipped the weights it started from (``start``): run in order they reproduce the weights."""
    lines = [start[key] for key in ("command", "export_command") if start and start.get(key)]
    for run_dir in chain:
        path = run_dir / "command.txt"
        if path.is_file():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    return " && ".join(lines) or None


def _shipped_name(trained: str, name: str | None) -> str:
    """The zoo name the weights of a run that trained ``trained`` ship under: ``name`` when given,
    which must be a registered model of the same layout (a second set of weights for one network,
    such as one trained and run at a larger size), else ``trained`` itself."""
    if name is None or name == trained:
        return trained
    if name not in zoo.available():
        raise NetsError(f"--as {name}: no registered model of that name (add it to nets/zoo.py first)")
    if not zoo.same_layout(trained, name):
        raise NetsError(f"--as {name}: its layout differs from {trained!r}, whose weights this run trained")
    return name


def export(run_dir: str | Path, weights_dir: str | Path | None = None, fps_frames: int = 5,
           export_command: str | None = None, name: str | None = None) -> dict[str, Any]:
    """Write the best weights of a finished run, as its objective deploys them, as ``<model>.pt``
    (fp16 state_dict) in ``weights_dir`` (default ``nets/weights``) and record them in its
    manifest; returns the entry. ``name`` ships them under another registered model of the
    same layout instead of the recipe's own.
    For a run that started from earlier runs, ``steps`` and ``best_step`` also count the steps of
    the earlier weights it received, and ``command`` holds the earlier runs' commands first."""
    run_dir = Path(run_dir)
    weights_dir = Path(weights_dir) if weights_dir else zoo.WEIGHTS_DIR
    for needed in ("recipe.json", "metrics.json", "best.pt"):
        if not (run_dir / needed).is_file():
            raise NetsError(f"{run_dir} is not a finished run: {needed} is missing (train it to the last step first)")
    recipe = run_recipe(run_dir)
    if recipe.model_kwargs:
        raise NetsError(f"run {run_dir} changed the model layout ({dict(recipe.model_kwargs)}); only the "
                        f"registered layout of {recipe.model!r} can be shipped")
    record = json.loads((run_dir / "metrics.json").read_text())
    chain = _run_chain(run_dir)
    start = _shipped_start(chain)
    earlier_steps = sum(best_step(parent) for parent in chain[:-1]) + int(start["steps"] if start else 0)
    shipped_name = _shipped_name(recipe.model, name)
    model_spec = zoo.spec(recipe.model)
    trained = zoo.build(recipe.model)
    load_state_strict(trained, read_state_dict(run_dir / "best.pt"), run_dir / "best.pt")
    objective = make_objective(recipe, model_spec, torch.device("cpu"), run_dir / "cache")
    calibration = read_calibration(run_dir) if isinstance(objective, SegmentationObjective) else None
    if calibration is not None:
        objective.offset_strength = calibration["offset_strength"]
        record = {**record, "metrics": calibration["metrics"]}
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / f"{shipped_name}.pt"
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    torch.save(half_state(objective.deployed(trained).state_dict()), partial)
    partial.replace(target)
    model = zoo.build(recipe.model)
    load_state_strict(model, torch.load(target, map_location="cpu", weights_only=True), target)
    entry = {
        "file": target.name, "sha256": zoo.sha256_of(target), "precision": "fp16",
        "recipe": recipe.name, "data": recipe.data, "steps": earlier_steps + record["steps"],
        "best_step": earlier_steps + record["best_step"],
        "metrics": record["metrics"], "fps_cpu_480x360": round(cpu_fps(model, model_spec, fps_frames), 2),
        "seconds_per_train_step": round(record["seconds_per_step"], 3), "train_device": record["device"],
        "train_size": "x".join(map(str, recipe.size)), "eval_size": "x".join(map(str, recipe.eval_size)),
        "command": _command_history(chain, start),
        "started_from": _started_from(chain, start),
        "export_command": export_command, "exported": date.today().isoformat(),
    }
    if BLEND_RECORD in record:
        entry["blended_with"] = record[BLEND_RECORD]  # the other parent and its share of the weights
    if isinstance(objective, SegmentationObjective):
        entry["offset_strength"] = objective.offset_strength  # what a later zoo: start adds back
    _write_manifest(weights_dir, shipped_name, entry)
    return entry
