"""The ``densestream serve`` command: a thin layer over ``stream.serve``."""
from __future__ import annotations

import os
import sys

import click

from .errors import DenseStreamError, describe_error
from .multi_cli import echo_summary, engine_option_decorators, engine_options, gather_sources


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--list", "list_file", default=None, help="A file of sources, one a line: '[NAME: ]SOURCE[ live|offline]'.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0 picks a free one).")
@click.option("--record", default=None,
              help="Record every stream, e.g. 'rec/{name}.mp4' (also streams added over REST).")
@click.option("--raw", default=None, help="Raw maps of every stream into DIR/NAME.")
@click.option("--hls", default=None, help="Folder for every stream's HLS output (DIR/NAME/index.m3u8), "
              "served at /hls/NAME/index.m3u8.")
@click.option("--tile-fps", type=float, default=10.0, show_default=True, help="Most JPEGs a second per tile.")
@engine_option_decorators
def serve(sources, list_file, host, port, record, raw, hls, tile_fps, **options) -> None:
    """Serve SOURCES (and streams added later with POST /streams) on one HTTP port: a page of
    live tiles at /, GET/POST /streams, DELETE /streams/NAME, /metrics (Prometheus), /healthz.
    Runs until Ctrl-C or SIGTERM."""
    try:
        from .serve import start_server
    except ImportError as exc:
        raise SystemExit(_fail(f"serve needs the 'serve' extra (pip install 'densestream[serve]'): {exc}"))
    from .pipeline import stop_on_signals

    try:
        entries = gather_sources(sources, list_file)
        if record and "{name}" not in record:
            raise DenseStreamError("--record must hold {name}, e.g. 'rec/{name}.mp4'")
        if raw and "{name}" not in raw:
            raw = os.path.join(raw, "{name}")
        server = start_server(entries, host=host, port=port, tile_fps=tile_fps, record=record, raw=raw,
                              hls=hls, **engine_options(**options))
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        if os.environ.get("DENSESTREAM_DEBUG"):
            raise
        raise SystemExit(_fail(describe_error(exc)))
    click.echo(f"serving {len(entries)} stream(s) on {server.url} (Ctrl-C stops)", err=True)
    with stop_on_signals(server):
        while not server.wait(0.5):
            pass
    summary = server.close()
    echo_summary(summary)
    sys.exit(1 if summary.failed or summary.error else 0)


def _fail(message: str) -> int:
    click.echo(f"error: {message}", err=True)
    return 1
