"""``densestream train`` and ``densestream eval``: thin click layers over ``nets.train``.

Register them on the main group with ``main.add_command(train)`` and ``main.add_command(evaluate)``.
"""
from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from typing import Any

import click

from nets.errors import NetsError
from nets.train.commands import eval_command, make_recipe, train_command
from nets.train.recipes import RECIPES

from .cpu_share import choose_threads

__all__ = ["train", "evaluate"]


def _recipe_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = (
        click.argument("recipe", type=click.Choice(sorted(RECIPES))),
        click.option("--size", default=None, help="Training crop WIDTHxHEIGHT (e.g. 240x180 on CPU, 480x360 on GPU)."),
        click.option("--gpu", is_flag=True, help="Use the recipe's full-size GPU settings."),
        click.option("--steps", type=int, default=None, help="Total training steps."),
        click.option("--batch", type=int, default=None, help="Batch size."),
        click.option("--lr", type=float, default=None, help="Base learning rate (default: the recipe's)."),
        click.option("--seed", type=int, default=None, help="Random seed (initialisation and batches)."),
        click.option("--camvid", default=None, help="CamVid root with train/ and val/."),
        click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when present)."),
        click.option("--option", "options", multiple=True, metavar="KEY=JSON",
                     help="Set one of the recipe's options, e.g. 'quality=[10, 30]' (repeatable)."),
    )
    for option in reversed(options):
        command = option(command)
    return command


@click.command("train")
@_recipe_options
@click.option("--run", "run_dir", required=True, help="Run folder (resumed when it holds last.pt).")
@click.option("--init", "init_run", default=None,
              help="Start a new run from the best weights of this earlier run, or zoo:MODEL for the shipped weights.")
@click.option("--workers", type=int, default=None, help="Data loader processes (default 0 on CPU, 4 on CUDA).")
@click.option("--until", type=int, default=None, help="Stop after this step; run again to continue.")
@click.option("--minutes", type=float, default=None, help="Stop after this many minutes; run again to continue.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (1 is fastest on a busy CPU).")
@click.option("--ema", type=float, default=None,
              help="Keep and evaluate a moving average of the weights with this decay, e.g. 0.998 (default: off).")
def train(recipe: str, size: str | None, gpu: bool, steps: int | None, batch: int | None, lr: float | None,
          seed: int | None, camvid: str | None, device: str | None, options: tuple[str, ...], run_dir: str,
          init_run: str | None, workers: int | None, until: int | None, minutes: float | None,
          threads: int | None, ema: float | None) -> None:
    """Train (or resume) the default model of RECIPE in a run folder."""
    if threads is None:
        choose_threads()
    try:
        chosen = make_recipe(recipe, size, gpu, steps, batch, camvid, seed, lr, init_run, options, ema)
        result = train_command(chosen, run_dir, device, workers, until, minutes, threads,
                               shlex.join(["densestream", *sys.argv[1:]]), lambda line: click.echo(line, err=True))
    except NetsError as exc:
        raise click.ClickException(str(exc)) from None
    if result is not None:
        click.echo(json.dumps(result, indent=2))


@click.command("eval")
@_recipe_options
@click.option("--run", "run_dir", default=None, help="Run folder whose best weights to evaluate.")
@click.option("--weights-dir", default=None, help="Weights folder with manifest.json (default nets/weights).")
def evaluate(recipe: str, size: str | None, gpu: bool, steps: int | None, batch: int | None, lr: float | None,
             seed: int | None, camvid: str | None, device: str | None, options: tuple[str, ...], run_dir: str | None,
             weights_dir: str | None) -> None:
    """Evaluate a run's best weights, or the shipped weights, on RECIPE's held-out data."""
    try:
        chosen = make_recipe(recipe, size, gpu, steps, batch, camvid, seed, lr, options=options)
        metrics = eval_command(chosen, run_dir, weights_dir, device)
    except NetsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(metrics, indent=2))
