"""The ``densestream bench`` command: a thin layer over ``stream.bench``."""
from __future__ import annotations

import os
import sys

import click

from .cpu_share import choose_threads, usable_cores
from .engine import set_cpu_threads
from .errors import describe_error
from .tasks import TASK_NAMES

DEFAULT_SOURCE = "synth://pattern"
SOAK_RESOLUTION = (160, 120)


def _fail(message: str) -> SystemExit:
    click.echo(f"error: {message}", err=True)
    return SystemExit(1)


@click.command()
@click.argument("source", required=False, default=DEFAULT_SOURCE)
@click.option("--task", default="seg", show_default=True,
              help=f"One of {', '.join(TASK_NAMES)} that gives labels or depth.")
@click.option("--model", default=None, help="Zoo name or checkpoint path (default: the task's model).")
@click.option("--resolution", default=None, help="Resize the input to WIDTHxHEIGHT (default: as it is).")
@click.option("--repeat", type=int, default=3, show_default=True, help="Runs of every measurement.")
@click.option("--frames", type=int, default=30, show_default=True, help="Frames per run.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
              show_default=True)
@click.option("--batch", type=int, default=1, show_default=True, help="Frames per batch.")
@click.option("--skip", multiple=True, help="Leave out a row (decode, model, pipeline_null, "
              "pipeline_mp4, naive, live, supervision); repeatable.")
@click.option("--soak", type=int, default=None,
              help="Instead: run this many synthetic frames into a null sink and watch host memory.")
@click.option("--soak-checkpoint", type=int, default=1000, show_default=True,
              help="Frame at which the soak's reference RSS is taken.")
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (default: the cores not busy with other jobs).")
@click.option("--compile", "compile_models", is_flag=True,
              help="torch.compile the model for the model and pipeline rows (the naive loop stays eager).")
@click.option("--streams", type=int, default=None,
              help="Instead: N synthetic streams in one process against N separate processes "
                   "(--frames each, --resolution default 320x240, --batch default N).")
@click.option("--contend", type=int, is_flag=False, flag_value=usable_cores(), default=None,
              help="Instead: model, pipeline and synth://drive rows idle and next to N CPU-bound "
                   "processes (alone: one per core).")
@click.option("--contend-sessions", type=click.Choice(["own", "shared"]), default="own", show_default=True,
              help="With --contend: each busy loop in a session of its own (a job started "
                   "elsewhere) or in the bench's (jobs started from one shell).")
@click.option("--json", "json_path", default=None, help="Write every raw number to this JSON file.")
def bench(source, task, model, resolution, repeat, frames, device, precision, batch, skip, soak,
          soak_checkpoint, threads, compile_models, streams, contend, contend_sessions, json_path) -> None:
    """Measure decode, model, pipeline, naive loop and live mode side by side on SOURCE."""
    from . import bench as measurements

    def log(text: str) -> None:
        click.echo(text, err=True)

    try:
        if threads is not None:
            set_cpu_threads(threads)
        else:
            choose_threads()
        size = measurements.parse_resolution(resolution) if resolution else None
        if contend is not None:
            from .bench.contention import contend as measure_contention, format_contention

            result = measure_contention(contend, source, task, model=model,
                                        resolution=size or (320, 240), frames=frames, repeat=repeat,
                                        device=device, precision=precision, sessions=contend_sessions,
                                        log=log)
            text = format_contention(result)
        elif streams is not None:
            from .multi.benchmark import compare, format_comparison

            result = compare(streams, frames=frames, size=size or (320, 240), task=task, model=model,
                             threads=threads, device=device, precision=precision,
                             batch=batch if batch > 1 else None, log=log)
            text = format_comparison(result)
        elif soak is not None:
            from .cli import ProgressLine

            progress = ProgressLine(enabled=sys.stderr.isatty())
            result = measurements.soak(task, soak, model=model, resolution=size or SOAK_RESOLUTION,
                                       checkpoint=min(soak_checkpoint, max(1, soak // 2)),
                                       device=device, precision=precision, batch=batch,
                                       progress=progress)
            progress.finish()
            text = measurements.format_soak(result)
        else:
            unknown = set(skip) - set(measurements.ROWS)
            if unknown:
                raise click.BadParameter(f"unknown row(s) {', '.join(sorted(unknown))}", param_hint="--skip")
            rows = [name for name in measurements.ROWS if name not in set(skip)]
            result = measurements.measure(source, task, model=model, resolution=size, frames=frames,
                                          repeat=repeat, device=device, precision=precision,
                                          batch=batch, rows=rows, compile=compile_models, log=log)
            text = measurements.format_table(result)
        if json_path:
            measurements.write_json(result, json_path)
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        raise _fail(describe_error(exc)) from None
    click.echo(text)
