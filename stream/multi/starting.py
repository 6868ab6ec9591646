"""Starting several streams: their per-stream output targets, the options that need a single
source, and a ``MultiStream`` with every entry added (``stream.run_many``, ``densestream multi``
and ``densestream run`` with several sources all start here)."""
from __future__ import annotations

import inspect
import os

from ..errors import DenseStreamError
from .engine import MultiStream
from .lists import as_entry

# Handled by ``start_streams`` itself rather than by the engine's constructor.
_PER_STREAM = {"source", "task", "out", "raw", "live"}


def output_templates(count: int, out: str | None, raw: str | None) -> tuple[str | None, str | None]:
    """Per-stream targets: with several streams ``--out`` must hold ``{name}`` (or be null) and
    ``--raw DIR`` without ``{name}`` becomes ``DIR/{name}``."""
    if count > 1 and out and out != "null" and "{name}" not in out:
        raise DenseStreamError(f"--out '{out}' would be shared by {count} streams: put {{name}} in it, "
                               "e.g. --out 'out/{name}.mp4'")
    if count > 1 and raw and "{name}" not in raw:
        raw = os.path.join(raw, "{name}")
    return out, raw


def split_one_source_options(options: dict) -> tuple[dict, list[str]]:
    """(``options`` without the ``build_pipeline`` keywords that only a single-source run takes,
    the names of those among them set to something other than their default). Single-source
    only: what the engine has no use for, and ``init_box`` (a box in one source's first frame)."""
    from ..api import build_pipeline

    single = inspect.signature(build_pipeline).parameters
    engine = set(inspect.signature(MultiStream).parameters)
    only = (set(single) - engine - _PER_STREAM) | {"init_box"}
    changed = [name for name, value in options.items() if name in only and value != single[name].default]
    return {name: value for name, value in options.items() if name not in only}, changed


def start_streams(sources, task="seg", *, out: str | None = None, raw: str | None = None,
                  live: bool | None = None, **options) -> MultiStream:
    """A ``MultiStream`` (``options``) over ``sources`` (specs, (name, spec[, live]) tuples or
    ``SourceEntry``), each writing ``out``/``raw`` with ``{name}`` filled in; ``live`` overrides
    every stream's policy. The targets and options are checked before any stream starts."""
    entries = [as_entry(source) for source in sources]
    if not entries:
        raise DenseStreamError("give at least one source (or --list FILE)")
    options, refused = split_one_source_options(options)
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        raise DenseStreamError(f"{flag} works with a single source only, not with {len(entries)} sources")
    out, raw = output_templates(len(entries), out, raw)
    if not (out or raw):
        raise DenseStreamError("nothing to write: give --out (with {name}) or --raw")
    engine = MultiStream(task, **options)
    try:
        for name, spec, policy in entries:
            engine.add(spec, name=name, out=out, raw=raw, live=policy if live is None else live)
    except BaseException:
        engine.close()
        raise
    return engine
