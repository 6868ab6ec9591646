"""The ``densestream batch`` command: a thin layer over ``stream.batch``."""
from __future__ import annotations

import os
import shutil
import sys

import click

from .compiling import COMPILE_CHOICES
from .errors import describe_error
from .hwcodecs import HW_CHOICES
from .tasks import TASK_NAMES, parse_infer_size


class BatchDisplay:
    """A line per finished video, and on a terminal one live progress line below them."""

    def __init__(self, live: bool, interval: float = 0.25) -> None:
        self.live = live
        self.interval = interval
        self._printed = 0
        self._last = 0.0
        self._shown = False

    def __call__(self, board) -> None:
        while self._printed < len(board.finished):
            record = board.finished[self._printed]
            self._printed += 1
            self._clear()
            click.echo(f"[{self._printed}/{board.total}] {record.name}: {_outcome(record)}", err=True)
        if self.live and board.elapsed - self._last >= self.interval:
            self._last = board.elapsed
            width = shutil.get_terminal_size((100, 20)).columns - 1
            click.echo(f"\r{board.line()[:width]:<{width}}", nl=False, err=True)
            self._shown = True

    def _clear(self) -> None:
        if self._shown:
            click.echo("\r\033[K", nl=False, err=True)
            self._shown = False

    def finish(self) -> None:
        self._clear()


def _outcome(record) -> str:
    if record.status == "failed":
        return f"failed: {record.error}"
    if record.status == "interrupted":
        return f"interrupted after {record.frames} frames (its outputs discarded)"
    return f"done, {record.frames} frames, {record.seconds:.1f} s"


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--task", default="seg", show_default=True,
              help=f"One of {', '.join(n for n in TASK_NAMES if n != 'track')}, or several joined by commas.")
@click.option("--out-dir", required=True, help="Folder for the outputs (mirroring the inputs) and the manifest.")
@click.option("--model", default=None, help="Zoo name or checkpoint path (default: the task's shipped model).")
@click.option("--video/--no-video", default=True, show_default=True, help="Write STEM.mp4 overlays.")
@click.option("--raw/--no-raw", default=False, show_default=True, help="Write raw maps into STEM/.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes; the cores are split between them, and GPUs too with CUDA.")
@click.option("--ray", "ray_address", default=None,
              help="Run one Ray task per video on the cluster at this address ('auto': this machine's).")
@click.option("--cpus-per-video", type=float, default=1.0, show_default=True,
              help="CPUs each Ray task declares (and torch's threads in it).")
@click.option("--gpus-per-video", type=float, default=0.0, show_default=True,
              help="GPUs each Ray task declares (1 on GPU nodes; 0.5 puts two videos on a GPU).")
@click.option("--retries", type=int, default=2, show_default=True,
              help="Reruns of a video whose worker process (or Ray node) died.")
@click.option("--layout", type=click.Choice(["overlay", "side-by-side", "grid"]), default="overlay",
              show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch", type=int, default=1, show_default=True, help="Frames per batch.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
              show_default=True)
@click.option("--max-frames", type=int, default=None, help="Stop each video after this many frames.")
@click.option("--refine", default=None, help="spn or crf for labels, ccrf for depth; e.g. spn,ccrf.")
@click.option("--infer-size", default="auto", show_default=True, help="auto, native or WIDTHxHEIGHT.")
@click.option("--hud/--no-hud", default=False, show_default=True, help="Draw the fps/latency line.")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads per worker (default: the cores split between the workers).")
@click.option("--hw-codecs", type=click.Choice(HW_CHOICES), default="auto", show_default=True)
@click.option("--compile", "compile_choice", type=click.Choice(COMPILE_CHOICES), default="auto",
              show_default=True)
def batch(inputs, task, out_dir, model, video, raw, workers, ray_address, cpus_per_video, gpus_per_video,
          retries, layout, device, batch, precision, max_frames, refine, infer_size, hud, threads,
          hw_codecs, compile_choice) -> None:
    """Run TASK over many videos: INPUTS are files, folders (searched recursively), globs or
    .txt list files. Outputs mirror the inputs inside OUT_DIR, beside a manifest that lets a
    second run skip what is done; a failed video is listed at the end and the exit code is 1."""
    from .batch import batch as run_batch

    display = BatchDisplay(live=sys.stderr.isatty())
    try:
        summary = run_batch(
            list(inputs), task, out_dir, video=video, raw=raw, workers=workers, ray=ray_address,
            cpus_per_video=cpus_per_video, gpus_per_video=gpus_per_video, retries=retries,
            progress=display, model=model, layout=layout, device=device, batch=batch,
            precision=precision, max_frames=max_frames, refine=refine,
            infer_size=parse_infer_size(infer_size), hud=hud, threads=threads, hw_codecs=hw_codecs,
            compile=compile_choice)
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        display.finish()
        click.echo(f"error: {describe_error(exc)}", err=True)
        raise SystemExit(1)
    display.finish()
    for line in summary.lines():
        click.echo(line, err=True)
    if summary.interrupted:
        click.echo("interrupted: run the same command again to go on", err=True)
    sys.exit(summary.exit_code)
