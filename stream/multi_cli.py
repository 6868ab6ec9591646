"""The ``densestream multi`` command: several sources in one run, a thin layer over ``stream.multi``."""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from .errors import describe_error
from .hwcodecs import HW_CHOICES
from .tasks import TASK_NAMES, parse_infer_size


def _fail(message: str) -> SystemExit:
    click.echo(f"error: {message}", err=True)
    return SystemExit(1)


# The batch size of several streams: frames from any of them share a device call.
STREAMS_BATCH = 4
# '@FILE' among the sources stands for the sources the list file names.
LIST_PREFIX = "@"


def is_list_argument(text: str) -> bool:
    """``@FILE``: a source list file given among the sources."""
    return text.startswith(LIST_PREFIX) and len(text) > len(LIST_PREFIX)


def engine_options(task, model, layout, device, precision, batch, batch_timeout, hud, refine,
                   infer_size, threads, hw_codecs) -> dict:
    """``MultiStream`` keyword arguments from the shared command-line options."""
    return dict(task=task, model=model, layout=layout, device=device, precision=precision, batch=batch,
                batch_timeout=batch_timeout, hud=hud, refine=refine, infer_size=parse_infer_size(infer_size),
                threads=threads, hw_codecs=hw_codecs)


def engine_option_decorators(func):
    """The options ``multi``, ``serve`` and ``bench --streams`` share."""
    options = [
        click.option("--task", default="seg", show_default=True,
                     help=f"One of {', '.join(TASK_NAMES)}, or several joined by commas."),
        click.option("--model", default=None, help="Zoo name or checkpoint path."),
        click.option("--layout", type=click.Choice(["overlay", "side-by-side", "grid"]), default="overlay",
                     show_default=True),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto",
                     show_default=True),
        click.option("--batch", type=int, default=STREAMS_BATCH, show_default=True,
                     help="Most frames (from any streams of one size) in one device call."),
        click.option("--batch-timeout", type=float, default=0.02, show_default=True,
                     help="Seconds a frame waits for others to fill its batch."),
        click.option("--hud/--no-hud", default=True, show_default=True, help="Draw the status line."),
        click.option("--refine", default=None, help="spn, crf (labels), ccrf (depth)."),
        click.option("--infer-size", default="auto", show_default=True,
                     help="auto, native or WIDTHxHEIGHT (see `densestream run --help`)."),
        click.option("--threads", type=int, default=None, help="CPU threads for torch."),
        click.option("--hw-codecs", type=click.Choice(HW_CHOICES), default="auto", show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def gather_sources(sources: tuple[str, ...], list_file: str | None, live: bool | None = None) -> list:
    """``SourceEntry`` for each argument (an ``@FILE`` argument gives its list file's entries)
    and each ``list_file`` line; ``live`` (--live/--offline) overrides all."""
    from .multi import SourceEntry, read_source_list

    entries = []
    for source in sources:
        if is_list_argument(source):
            entries.extend(read_source_list(Path(source[len(LIST_PREFIX):])))
        else:
            entries.append(SourceEntry(None, source))
    if list_file:
        entries.extend(read_source_list(list_file))
    return entries if live is None else [entry._replace(live=live) for entry in entries]


def streams_progress_text(statuses: list[dict]) -> str:
    """One progress line for several streams: their total frames and frame rate, then each
    stream's frames (and its state when it is not running)."""
    total = sum(status["frames_out"] for status in statuses)
    fps = sum(status["fps"] or 0.0 for status in statuses)
    parts = [f"{status['name']} {status['frames_out']}" + ("" if status["state"] == "running" else f" ({status['state']})")
             for status in statuses]
    return f"{len(statuses)} streams | frames {total} | {fps:.1f} fps | " + ", ".join(parts)


def run_engine(engine, seconds: float | None = None, progress: Callable[[list[dict]], None] | None = None,
               interval: float = 0.5):
    """Run ``engine`` to its end (or for ``seconds``), Ctrl-C and SIGTERM stopping it gracefully,
    calling ``progress`` with the streams' statuses every ``interval`` seconds; returns its
    ``MultiSummary``."""
    from .pipeline import stop_on_signals

    timer = threading.Timer(seconds, engine.stop, kwargs={"interrupted": False}) if seconds else None
    if timer:
        timer.daemon = True
        timer.start()
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(interval):
            progress(engine.statuses())

    reporter = threading.Thread(target=report, name="progress", daemon=True) if progress else None
    if reporter:
        reporter.start()
    try:
        with stop_on_signals(engine):
            return engine.run()
    finally:
        finished.set()
        if reporter:
            reporter.join()


def run_with_progress(engine, seconds: float | None = None, *, enabled: bool):
    """``run_engine`` for a command: the streams' progress on one terminal line (a terminal
    only), and once the outputs are closed a signal ends the process at once (status 130)."""
    from .cli import ProgressLine
    from .launch import exit_on_signals_once_finished

    line = ProgressLine(enabled=enabled and sys.stderr.isatty())
    try:
        progress = (lambda statuses: line.show(streams_progress_text(statuses))) if line.enabled else None
        summary = run_engine(engine, seconds, progress=progress)
    finally:
        line.finish()
    exit_on_signals_once_finished()
    return summary


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--list", "list_file", default=None,
              help="A file of sources, one a line: '[NAME: ]SOURCE[ live|offline]' (or give @FILE).")
@click.option("--out", default=None, help="Per-stream output with {name}: 'out/{name}.mp4', 'frames/{name}/', null.")
@click.option("--raw", default=None, help="Folder for raw maps; each stream writes into DIR/NAME.")
@click.option("--live/--offline", default=None, help="Override every input's policy.")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds.")
@engine_option_decorators
def multi(sources, list_file, out, raw, live, seconds, **options) -> None:
    """Run one task over several SOURCES at once (files, cameras, URLs, synth://...): frames of
    the same size from different streams share device batches; each stream keeps its own
    outputs, drop policy, reconnects and summary row."""
    from .multi import start_streams

    try:
        engine = start_streams(gather_sources(sources, list_file, live), out=out, raw=raw,
                               **engine_options(**options))
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        raise _fail(describe_error(exc)) from None
    summary = run_with_progress(engine, seconds, enabled=True)
    echo_summary(summary)
    sys.exit(summary.exit_code)


def echo_summary(summary, table: bool = True) -> None:
    """The per-stream summary table (unless ``table`` is False), then one ``error:`` line per
    failed stream and for the run, or (with the table) that the run was interrupted."""
    for line in summary.lines() if table else ():
        click.echo(line, err=True)
    for failed in summary.failed:
        click.echo(f"error: {failed.name}: {failed.run.error}", err=True)
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
    if table and summary.interrupted and not summary.failed:
        click.echo("interrupted: outputs hold the frames processed so far", err=True)
