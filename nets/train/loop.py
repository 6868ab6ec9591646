"""The training loop: resumable runs in a folder, so a run can stop and go on across sessions.

A run folder holds ``last.pt`` (model, optimiser, schedule, step and the weights' moving average
when the recipe keeps one; written every ``checkpoint_every`` steps, every ``checkpoint_minutes``
and on stopping), ``best.pt`` (the
weights with the best held-out score and their metrics), ``recipe.json`` and, once the last step
is done, ``metrics.json``. Batches depend only on (seed, step), so resuming reproduces the
uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nets import zoo
from nets.checkpoints import read_state_dict
from nets.errors import NetsError, first_line
from nets.rednet import RedNet, deepened
from nets.train.data import step_loader
from nets.train.objectives import Objective, make_objective
from nets.train.recipes import INIT_RECORD, ZOO_INIT, Recipe, run_recipe

__all__ = ["train", "pick_device", "build_model", "starting_weights", "learning_rate_factor", "best_step", "record_command", "save_atomic",
           "finished_record", "RESUMABLE_CHANGES"]

RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "checkpoint_minutes", "eval_every", "log_every",
                               "camvid_root", "gpu"})


def pick_device(name: str | None = None) -> torch.device:
    """The named device, else CUDA when present, else the CPU."""
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise NetsError(f"device {name!r} asked for, but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(recipe: Recipe) -> nn.Module:
    """The recipe's zoo model, randomly initialised from the recipe's seed."""
    torch.manual_seed(recipe.seed)
    return zoo.build(recipe.model, **recipe.model_kwargs)


def learning_rate_factor(recipe: Recipe) -> Callable[[int], float]:
    """Multiplier of the base learning rate at a step: linear warm-up, then poly (power 0.9) or cosine."""
    def factor(step: int) -> float:
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        progress = min(1.0, (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup))
        if recipe.schedule == "poly":
            return (1.0 - progress) ** 0.9
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def _optimiser(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimiser == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True,
                               weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def save_atomic(data: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a partial file renamed over ``path``, so a crash never leaves half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.save(data, partial)
    partial.replace(path)


def best_step(run_dir: Path) -> int:
    """The step of a run's best weights (what a later run starting from it received)."""
    try:
        return int(torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["step"])
    except Exception as exc:  # missing, truncated or foreign files all end the same way
        raise NetsError(f"cannot read the best weights of run {run_dir}: {first_line(exc)}") from None


def record_command(path: Path, command: str) -> None:
    """Append ``command`` to the run's command history unless it repeats the last one, so that the
    history, run in order, reproduces the run (a resume that extends ``--steps`` changes the schedule)."""
    history = path.read_text().splitlines() if path.is_file() else []
    if not history or history[-1] != command:
        path.write_text("\n".join(history + [command]) + "\n")


def _check_same_recipe(saved: dict[str, Any], recipe: Recipe, path: Path) -> None:
    saved = json.loads(json.dumps(Recipe.from_dict(saved).to_dict()))  # fields added since take their defaults
    current = json.loads(json.dumps(recipe.to_dict()))
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k))
    if changed:
        raise NetsError(f"{path} was written by a different recipe (changed: {', '.join(changed)}); "
                        f"use a new run folder")


class _Run:
    """Model, optimiser, schedule and bookkeeping of one run folder."""

    def __init__(self, recipe: Recipe, run_dir: Path, device: torch.device) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.device = device
        self.model = build_model(recipe).to(device)
        self.optimiser = _optimiser(recipe, self.model)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimiser, learning_rate_factor(recipe))
        half = device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=half)
        self.autocast_dtype = torch.float16 if half else torch.bfloat16
        self.average = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema), use_buffers=True)
                        if recipe.ema else None)
        self.step = 0
        self.best_score = -math.inf
        self.seconds = 0.0

    @property
    def evaluated(self) -> nn.Module:
        """The weights evaluated and kept as best: the moving average when the recipe keeps one."""
        return self.average.module if self.average is not None else self.model

    def update_average(self) -> None:
        """Fold the trained weights into the moving average (its first update copies them)."""
        if self.average is not None:
            self.average.update_parameters(self.model)

    def autocast(self) -> Any:
        if self.device.type != "cuda":
            return nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype)

    def save(self) -> None:
        save_atomic({"step": self.step, "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                      "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
                      "best_score": self.best_score, "seconds": self.seconds,
                      "torch_rng": torch.get_rng_state(), "recipe": json.dumps(self.recipe.to_dict()),
                      **({"average": self.average.state_dict()} if self.average is not None else {})},
                     self.run_dir / "last.pt")

    def resume(self) -> bool:
        path = self.run_dir / "last.pt"
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise NetsError(f"cannot read checkpoint {path}: {first_line(exc)}") from None
        _check_same_recipe(json.loads(state["recipe"]), self.recipe, path)
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.step, self.best_score, self.seconds = int(state["step"]), float(state["best_score"]), float(state["seconds"])
        if self.step > self.recipe.steps:
            raise NetsError(f"{path} is at step {self.step}, past the recipe's {self.recipe.steps} steps")
        return True

    def start_from(self, init: str, objective: Objective) -> None:
        """Load the starting weights ``init`` names (see :func:`starting_weights`)."""
        weights, entry = starting_weights(self.recipe, init, objective)
        self.model.load_state_dict(weights)
        if entry is not None:
            (self.run_dir / INIT_RECORD).write_text(json.dumps(entry, indent=2) + "\n")

    def evaluate(self, objective: Objective, log: Callable[[str], None]) -> dict[str, float]:
        metrics = objective.evaluate_trained(self.evaluated)
        self.model.train()
        score = metrics[objective.score]
        log(f"eval at step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if score > self.best_score:
            self.best_score = score
            save_atomic({"model": self.evaluated.state_dict(), "step": self.step, "metrics": metrics},
                         self.run_dir / "best.pt")
        return metrics


def starting_weights(recipe: Recipe, init: str, objective: Objective) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The weights ``init`` names for a run of ``recipe``, and the manifest entry of shipped ones:
    ``zoo:NAME``, the shipped weights of the recipe's model or of another registered model of
    the same network (with the objective's deployment undone, so training resumes from the
    scores it learned), or an earlier run folder's best weights (the same model and layout, or a
    shallower RED-Net of the same kind, deepened so that it computes the same output)."""
    if init.startswith(ZOO_INIT):
        name = init[len(ZOO_INIT):]
        if not zoo.same_layout(name, recipe.model):
            raise NetsError(f"{init}: this run trains {recipe.model!r}, and {name!r} is another network")
        trained, entry = objective.shipped_trained(name)
        return trained.state_dict(), entry
    parent_dir = Path(init)
    try:
        parent = run_recipe(parent_dir)
        weights = read_state_dict(parent_dir / "best.pt")
    except NetsError as exc:
        raise NetsError(f"cannot start from run {parent_dir}: {exc}") from None
    if (parent.model, dict(parent.model_kwargs)) == (recipe.model, dict(recipe.model_kwargs)):
        return weights, None
    shallow = build_model(parent)
    shallow.load_state_dict(weights)
    deep = build_model(recipe)
    if not _can_deepen(shallow, deep):
        raise NetsError(f"run {parent_dir} trained {parent.model!r} {dict(parent.model_kwargs)}, not "
                        f"{recipe.model!r} {dict(recipe.model_kwargs)} or a shallower RED-Net of it")
    return deepened(shallow, deep.depth).state_dict(), None


def _can_deepen(shallow: nn.Module, deep: nn.Module) -> bool:
    """Whether ``deep`` is ``shallow`` (a RED-Net) with more layers and nothing else changed."""
    if not (isinstance(shallow, RedNet) and isinstance(deep, RedNet)):
        return False
    kind = (shallow.mode, shallow.scale, shallow.in_channels, shallow.width)
    return kind == (deep.mode, deep.scale, deep.in_channels, deep.width) and shallow.depth < deep.depth


def _progress(run: _Run, loss: float, session_steps: int, session_seconds: float) -> str:
    per_step = session_seconds / max(1, session_steps)
    left = (run.recipe.steps - run.step) * per_step
    lr = run.optimiser.param_groups[0]["lr"]
    return (f"step {run.step}/{run.recipe.steps} | loss {loss:.4f} | lr {lr:.2e} | {per_step:.2f} s/step | "
            f"ETA {int(left // 3600)}h{int(left % 3600 // 60):02d}m")


def train(recipe: Recipe, run_dir: str | Path, device: str | torch.device | None = None, workers: int | None = None,
          until: int | None = None, minutes: float | None = None, command: str | None = None,
          threads: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """Train (or resume) ``recipe`` in ``run_dir``, stopping at step ``until`` or after ``minutes``
    if given. Returns the final metrics record (also written to ``metrics.json``) once the
    recipe's last step is done, else None (the run can be continued by calling again).
    ``command`` (the command line that started the run) is kept in ``command.txt`` for export;
    ``threads`` sets torch's CPU threads (1 is several times faster on a CPU shared with other jobs)."""
    if threads is not None:
        if threads < 1:
            raise NetsError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = device if isinstance(device, torch.device) else pick_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run = _Run(recipe, run_dir, device)
    objective = make_objective(recipe, zoo.spec(recipe.model), device, run_dir / "cache")
    if run.resume():
        log(f"resuming {recipe.name} at step {run.step} from {run_dir / 'last.pt'}")
    elif recipe.init:
        run.start_from(recipe.init, objective)
        origin = "the shipped weights" if recipe.init.startswith(ZOO_INIT) else "the best weights of"
        log(f"starting {recipe.name} from {origin} {recipe.init}")
    (run_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
    if command:
        record_command(run_dir / "command.txt", command)
    stop = min(recipe.steps, until if until is not None else recipe.steps)
    workers = workers if workers is not None else (min(4, os.cpu_count() or 1) if device.type == "cuda" else 0)
    started = time.monotonic()
    last_save = started
    train_seconds, session_steps = 0.0, 0
    run.model.train()
    if run.step < stop:
        tick = time.monotonic()
        for batch in step_loader(objective.batches(), run.step, workers, device.type == "cuda"):
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            with run.autocast():
                loss = objective.loss(run.model, batch)
            if not torch.isfinite(loss):
                raise NetsError(f"loss became {loss.item()} at step {run.step}; lower the learning rate")
            run.optimiser.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimiser)
            run.scaler.update()
            run.schedule.step()
            run.update_average()
            run.step += 1
            elapsed = time.monotonic() - tick
            train_seconds += elapsed
            run.seconds += elapsed
            session_steps += 1
            if run.step % recipe.log_every == 0 or run.step == stop:
                log(_progress(run, loss.item(), session_steps, train_seconds))
            if recipe.eval_every and run.step % recipe.eval_every == 0 and run.step < recipe.steps:
                run.evaluate(objective, log)
            now = time.monotonic()
            out_of_time = minutes is not None and now - started >= 60 * minutes
            if run.step % recipe.checkpoint_every == 0 or now - last_save >= 60 * recipe.checkpoint_minutes:
                run.save()
                last_save = now
            if run.step >= stop or out_of_time:
                break
            tick = time.monotonic()
    run.save()
    if run.step < recipe.steps:
        log(f"stopped at step {run.step}/{recipe.steps}; run the same command again to continue")
        return None
    return _finish(run, objective, log)


def finished_record(recipe: Recipe, objective: Objective, steps: int, best: int, metrics: dict[str, float],
                    final: dict[str, float], seconds_per_step: float, device: str) -> dict[str, Any]:
    """What a finished run's ``metrics.json`` holds (``export`` reads it)."""
    return {"recipe": recipe.name, "model": recipe.model, "data": recipe.data, "steps": steps, "best_step": best,
            "score": objective.score, "metrics": metrics, "final_metrics": final,
            "seconds_per_step": seconds_per_step, "device": device}


def _finish(run: _Run, objective: Objective, log: Callable[[str], None]) -> dict[str, Any]:
    """Evaluate the last weights, then re-evaluate the best weights with the current code (so that
    finishing an old run again records metrics added since) and write metrics.json."""
    metrics_path = run.run_dir / "metrics.json"
    if metrics_path.is_file():
        record = json.loads(metrics_path.read_text())
        if record.get("steps") == run.recipe.steps:
            return record
    final = run.evaluate(objective, log)
    run.save()  # keep the final evaluation in best_score, so a longer run cannot replace a better best.pt
    best = torch.load(run.run_dir / "best.pt", map_location=run.device, weights_only=True)
    metrics = final  # best.pt written at the last step holds the weights just evaluated
    if int(best["step"]) != run.step:
        run.model.load_state_dict(best["model"])
        metrics = objective.evaluate_trained(run.model)
    record = finished_record(run.recipe, objective, run.recipe.steps, int(best["step"]), metrics, final,
                             run.seconds / max(1, run.step), str(run.device))
    metrics_path.write_text(json.dumps(record, indent=2) + "\n")
    log(f"done: best {objective.score} {metrics[objective.score]:.4f} at step {record['best_step']}; "
        f"wrote {metrics_path}")
    return record
