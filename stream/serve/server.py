"""``Server``: a ``MultiStream`` and its HTTP face on one port, run in a background thread."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from ..errors import DenseStreamError
from ..frames import StreamInfo
from ..multi import MultiStream, MultiSummary, as_entry
from .app import build_app
from .hls import HlsSink

LOOPBACK = "127.0.0.1"


class Server:
    """Serve ``engine`` on ``host``:``port`` (0 picks a free port; see ``url``).

    ``start()`` returns once the port listens; ``stop()`` asks for the end (signal-safe);
    ``wait()`` blocks until then; ``close()`` shuts the server and the engine down and
    returns the summary of every stream.
    """

    def __init__(self, engine: MultiStream, *, host: str = LOOPBACK, port: int = 8080,
                 tile_fps: float = 10.0, record: str | None = None, raw: str | None = None,
                 hls: str | None = None) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.interrupted = False
        self._app = build_app(engine, tile_fps=tile_fps, record=record, raw=raw, hls=hls)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Server:
        self.engine.start()
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self.engine.close()
            error = self._startup_error
            raise DenseStreamError(f"cannot listen on {self.host}:{self.port}: {error}") from error
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the real one when 0 was asked
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self, interrupted: bool = True) -> None:
        """Ask the server to end (from a signal handler or any thread)."""
        self.interrupted = self.interrupted or interrupted
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``stop()``; True once it was asked."""
        return self._done.wait(timeout)

    def close(self) -> MultiSummary:
        """Stop serving, finalise every stream's outputs, return the summary."""
        self._done.set()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10.0)
        if self.interrupted:
            self.engine.stop(interrupted=True)
        return self.engine.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def hls_outputs(root: str | Path, segment_seconds: float = 2.0):
    """A ``MultiStream`` sink factory: each stream's HLS in ``root/NAME/``."""
    def factory(name: str, info: StreamInfo) -> list:
        return [HlsSink(Path(root) / name, fps=info.fps or 25.0, segment_seconds=segment_seconds)]

    return factory


def start_server(sources=(), *, host: str = LOOPBACK, port: int = 8080, tile_fps: float = 10.0,
                 record: str | None = None, raw: str | None = None, hls: str | None = None,
                 hls_segment: float = 2.0, **engine_options) -> Server:
    """A running ``Server`` over a new ``MultiStream`` (``engine_options``) with ``sources``
    (specs, (name, spec[, live]) tuples or ``SourceEntry``) already added; ``record``/``raw``
    apply to every stream; ``hls`` a folder for every stream's HLS output."""
    if hls:
        engine_options["sink_factory"] = hls_outputs(hls, hls_segment)
    engine = MultiStream(reopen_for=engine_options.pop("reopen_for", None), **engine_options)
    try:
        for name, spec, live in map(as_entry, sources):
            engine.add(spec, name=name, out=record, raw=raw, live=live)
    except BaseException:
        engine.close()
        raise
    return Server(engine, host=host, port=port, tile_fps=tile_fps, record=record, raw=raw, hls=hls).start()
