"""The ``densestream`` command: a thin layer over ``stream.api``."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import click

from .cli_group import OneLineUsageErrors
from .cli_options import output_options
from .compiling import COMPILE_CHOICES
from .hwcodecs import HW_CHOICES
from .errors import DenseStreamError, describe_error
from .launch import STARTING_MESSAGE, exit_on_signals_once_finished, interrupt_on_signals, signalled
from .run_many_cli import one_source, several_sources_options
from .tasks import TASK_NAMES, parse_infer_size


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


class ProgressLine:
    """'frames 120/221 | 24.1 fps | ETA 4 s' on one terminal line, refreshed a few times a second."""

    def __init__(self, enabled: bool, interval: float = 0.25) -> None:
        self.enabled = enabled
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int | None, fps: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < self.interval and done != total):
            return
        self._last = now
        text = f"frames {done}" + (f"/{total}" if total else "") + f" | {fps:.1f} fps"
        if total and fps > 0:
            text += f" | ETA {max(total - done, 0) / fps:.0f} s"
        self.show(text)

    def show(self, text: str) -> None:
        """Put ``text`` on the progress line (when enabled)."""
        if self.enabled:
            click.echo(f"\r{text:<60}", nl=False, err=True)
            self._shown = True

    def finish(self) -> None:
        if self._shown:
            click.echo("", err=True)


@click.group(cls=OneLineUsageErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="densestream", prog_name="densestream")
def main() -> None:
    """Dense prediction on live or recorded video: segmentation, depth, tracking, restoration."""
    warnings.showwarning = _warn_one_line


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@several_sources_options
@click.option("--task", "task", default="seg", show_default=True,
              help=f"One of {', '.join(TASK_NAMES)}, or several joined by commas.")
@click.option("--model", default=None, help="Zoo name or checkpoint path (default: the task's shipped model).")
@click.option("--out", default=None, help="Output video (.mp4/.mkv/.mov), image folder, or 'null'.")
@click.option("--raw", default=None, help="Folder for raw outputs: label PNGs, depth PNG/NPY, tracks.csv.")
@click.option("--overwrite", "-y", is_flag=True,
              help="Replace an existing --out file or a non-empty --out/--raw folder (never an input).")
@click.option("--show", is_flag=True, help="Show the result in a window (q or Esc quits).")
@click.option("--layout", type=click.Choice(["overlay", "side-by-side", "grid"]), default="overlay",
              show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch", type=int, default=1, show_default=True,
              help="Frames per batch (offline input; with several sources 4 by default, from any streams).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
              show_default=True)
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--init-box", default=None, help="Target box x,y,w,h in frame 1 (--task track).")
@click.option("--refine", default=None,
              help="Refinement: spn (fast) or crf (slow) for labels, ccrf for depth; e.g. spn,ccrf.")
@click.option("--infer-size", default="auto", show_default=True,
              help="Where the seg/depth networks run, their maps resized back to the frame: auto shrinks "
                   "frames taller than the model's trained scale (360 rows for seg, 180 for seg+depth), "
                   "native keeps the frame size, WIDTHxHEIGHT fixes it.")
@click.option("--live/--offline", default=None,
              help="Override the input's policy: live drops stale frames, offline keeps all.")
@click.option("--hud/--no-hud", default=None,
              help="Draw the status line (offline: fps and progress; live: latency) in every output; "
                   "default: in windows only.")
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (default: the cores not busy with other jobs).")
@click.option("--hw-codecs", type=click.Choice(HW_CHOICES), default="auto", show_default=True,
              help="NVIDIA decode/encode (NVDEC/NVENC) for video files: auto on CUDA runs; falls back "
                   "to software with a warning when unavailable.")
@click.option("--compile", "compile_choice", type=click.Choice(COMPILE_CHOICES), default="auto",
              show_default=True,
              help="torch.compile the networks: faster frames after a one-off compile of a minute or two; "
                   "auto compiles offline runs of 3000 frames or more.")
@output_options
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but warnings and errors (no progress, no summary).")
@click.option("--json", "json_path", default=None,
              help="Write the run summary as JSON to this file ('-' for stdout), keys as stream.RunSummary.")
def run(sources, list_file, batch_timeout, task, model, out, raw, overwrite, show, layout, device, batch,
        precision, max_frames, init_box, refine, infer_size, live, hud, threads, hw_codecs, compile_choice,
        quiet, json_path, **output_choices) -> None:
    """Run TASK over SOURCE: a video file, camera (0, /dev/video0), URL, image folder/glob or
    synth://drive, synth://pattern. Several sources (or --list FILE, @FILE) share one device
    stage as in `densestream multi`: --out needs {name} in it, --raw DIR writes DIR/NAME."""
    source = one_source(click.get_current_context())
    progress = ProgressLine(enabled=sys.stderr.isatty() and not quiet)
    interrupt_on_signals()
    try:
        from . import api

        if json_path and json_path != "-":
            _write_text(json_path, "")  # an unwritable summary path fails now, not after the run
        box = api.parse_box(init_box) if init_box else None
        size = parse_infer_size(infer_size)
        pipeline = api.build_pipeline(
            source, task, model=model, out=out, raw=raw, overwrite=overwrite, show=show, layout=layout,
            device=device, precision=precision, batch=batch, max_frames=max_frames,
            init_box=box, refine=refine, hud=hud, live=live, threads=threads,
            hw_codecs=hw_codecs, compile=compile_choice, infer_size=size, progress=progress,
            **output_choices)
    except KeyboardInterrupt:
        raise SystemExit(interrupted_while_starting()) from None
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if signalled():
            raise SystemExit(interrupted_while_starting()) from None
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        raise SystemExit(_fail(describe_error(exc)))
    if pipeline.compiled and not quiet:
        click.echo("compiling the network with torch.compile (a minute or two on a CPU the first time, "
                   "seconds once cached)", err=True)
    with api.stop_on_signals(pipeline):
        if signalled():
            pipeline.stop(interrupted=True)
        summary = pipeline.run()
    exit_on_signals_once_finished()
    progress.finish()
    if not quiet:
        for line in summary.lines():
            click.echo(line, err=True)
    if json_path:
        _write_json(summary, json_path)
    if summary.error:
        _fail(summary.error)
    elif summary.interrupted and not quiet:
        click.echo(f"interrupted: {summary.discarded} queued frames discarded; outputs hold the frames "
                   "processed so far", err=True)
    sys.exit(summary.exit_code)


def _write_json(summary, path: str) -> None:
    """The summary as one JSON object, to ``path`` or stdout ('-'); a failed write is one error line."""
    text = json.dumps(summary.as_dict(), indent=2)
    if path == "-":
        click.echo(text)
        return
    try:
        _write_text(path, text + "\n")
    except DenseStreamError as error:
        sys.exit(_fail(str(error)))


def _write_text(path: str, text: str) -> None:
    from .sinks.safety import file_in_the_way

    blocker = file_in_the_way(Path(path))
    if blocker is not None:
        raise DenseStreamError(f"cannot write the summary to {path}: its parent {blocker} is a file, not a folder")
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise DenseStreamError(f"cannot write the summary to {path}: {error.strerror or error}") from error


def interrupted_while_starting() -> int:
    """Ctrl-C or SIGTERM before the run began: one line, exit status 130 (further signals are
    ignored while the process exits)."""
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, signal.SIG_IGN)
    click.echo(STARTING_MESSAGE, err=True)
    return 130


def _fail(message: str) -> int:
    click.echo(f"error: {message}", err=True)
    return 1


@main.command()
def models() -> None:
    """List the model zoo: the --task names each model serves (defaults marked), its held-out
    result and its CPU speed."""
    from .catalogue import model_table

    for line in model_table():
        click.echo(line)


def _register_subcommands() -> None:
    """Commands that live in their own modules: batches, benchmarks, training and evaluation."""
    from .batch_cli import batch
    from .bench_cli import bench
    from .multi_cli import multi
    from .repair_cli import repair
    from .serve_cli import serve
    from .sources_cli import sources
    from .train_cli import evaluate, train

    main.add_command(batch)
    main.add_command(bench)
    main.add_command(sources)
    main.add_command(train)
    main.add_command(evaluate)
    main.add_command(multi)
    main.add_command(serve)
    main.add_command(repair)


_register_subcommands()
