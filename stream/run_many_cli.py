"""``densestream run`` with several sources: they run through the multi-stream engine as in
``densestream multi``, with ``run``'s options; those that need a single source are refused."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from .errors import describe_error
from .multi_cli import STREAMS_BATCH, echo_summary, gather_sources, is_list_argument, run_with_progress
from .tasks import parse_infer_size

# ``run``'s parameters that are not engine options, and those the API names otherwise.
_NOT_ENGINE = ("sources", "list_file", "live", "quiet", "json_path")
_API_NAMES = {"compile_choice": "compile"}


def several_sources_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``run``'s options that only several sources use: --list and --batch-timeout."""
    command = click.option(
        "--batch-timeout", type=float, default=None,
        help="Several sources: seconds a frame waits for other streams' frames to fill its batch "
             "(default 0.02).")(command)
    return click.option(
        "--list", "list_file", default=None,
        help="A file of sources, one a line: '[NAME: ]SOURCE[ live|offline]' (or give @FILE).")(command)


def one_source(ctx: click.Context) -> str:
    """The source of a single-source ``run``. Several sources (or a list file) are run here,
    all of them, and the process exits with their exit status."""
    params = ctx.params
    sources = params["sources"]
    if len(sources) > 1 or params["list_file"] or is_list_argument(sources[0]):
        sys.exit(run_several(ctx))
    if params["batch_timeout"] is not None:
        from .cli import _fail

        sys.exit(_fail("--batch-timeout applies to several sources (frames of different streams "
                       "sharing a batch)"))
    return sources[0]


def run_several(ctx: click.Context) -> int:
    """Run every source of ``ctx`` through one ``MultiStream``; returns the exit status."""
    from .cli import _fail, _write_json, _write_text, interrupted_while_starting
    from .launch import interrupt_on_signals, signalled

    params = ctx.params
    interrupt_on_signals()
    try:
        from .multi import start_streams

        json_path = params["json_path"]
        if json_path and json_path != "-":
            _write_text(json_path, "")  # an unwritable summary path fails now, not after the run
        entries = gather_sources(params["sources"], params["list_file"], params["live"])
        engine = start_streams(entries, **_engine_options(ctx))
    except KeyboardInterrupt:
        return interrupted_while_starting()
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if signalled():
            return interrupted_while_starting()
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        return _fail(describe_error(exc))
    if signalled():
        engine.stop(interrupted=True)
    summary = run_with_progress(engine, enabled=not params["quiet"])
    echo_summary(summary, table=not params["quiet"])
    if json_path:
        _write_json(summary, json_path)
    return summary.exit_code


def _engine_options(ctx: click.Context) -> dict:
    """``start_streams`` keywords from ``run``'s options: --batch defaults to the multi engine's
    batch, the status line is off unless --hud is given (``run`` draws it in windows only)."""
    options = {_API_NAMES.get(name, name): value for name, value in ctx.params.items()
               if name not in _NOT_ENGINE}
    options["infer_size"] = parse_infer_size(options["infer_size"])
    options["hud"] = bool(options["hud"])
    if ctx.get_parameter_source("batch") is ParameterSource.DEFAULT:
        options["batch"] = STREAMS_BATCH
    if options["batch_timeout"] is None:
        del options["batch_timeout"]
    if options["compile"] == "off":
        del options["compile"]  # what several streams get anyway
    return options
