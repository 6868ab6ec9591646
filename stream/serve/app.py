"""The HTTP routes over a ``MultiStream`` (aiohttp does the protocol work).

``GET /`` the page; ``GET /streams``; ``POST /streams`` (JSON: ``source``, optional ``name``,
``task``, ``model``, ``live``); ``DELETE /streams/{name}``; ``GET /streams/{name}/mjpeg`` the
live tile; ``GET /streams/{name}/frame.jpg`` its newest frame; ``GET /hls/{name}/index.m3u8`` and its
segments (when the server writes HLS); ``GET /metrics``; ``GET /healthz``.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web

from ..errors import DenseStreamError
from ..multi import MultiStream
from .metrics import metrics_registry, render
from .page import PAGE

ENGINE = web.AppKey("engine", MultiStream)
SETTINGS = web.AppKey("settings", dict)
BOUNDARY = "densestreamframe"
ADD_FIELDS = {"source", "name", "task", "model", "live"}
REGISTRY = web.AppKey("registry", object)
CLOSING = web.AppKey("closing", asyncio.Event)


class JpegCache:
    """The newest result of each stream as JPEG, encoded once however many viewers watch."""

    def __init__(self, quality: int = 80) -> None:
        self.quality = quality
        self._encoded: dict[str, tuple[int, bytes]] = {}

    def get(self, engine: MultiStream, name: str) -> tuple[int, bytes] | None:
        latest = engine.latest(name)
        if latest is None:
            return None
        sequence, image = latest
        cached = self._encoded.get(name)
        if cached is None or cached[0] != sequence:
            cached = (sequence, _jpeg(image, self.quality))
            self._encoded[name] = cached
        return cached

    def forget(self, name: str) -> None:
        self._encoded.pop(name, None)


JPEGS = web.AppKey("jpegs", JpegCache)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DenseStreamError("JPEG encoding failed")
    return data.tobytes()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _in_thread(func, *args):
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def list_streams(request: web.Request) -> web.Response:
    statuses = await _in_thread(request.app[ENGINE].statuses)
    if request.app[SETTINGS].get("hls"):
        for status in statuses:
            status["hls"] = f"/hls/{status['name']}/index.m3u8"
    return web.json_response(statuses)


async def add_stream(request: web.Request) -> web.Response:
    engine, settings = request.app[ENGINE], request.app[SETTINGS]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body must be a JSON object")
    if not isinstance(body, dict) or not isinstance(body.get("source"), str) or not body["source"].strip():
        return _error(400, "give the stream as JSON: {\"source\": \"...\", \"name\": optional}")
    unknown = sorted(set(body) - ADD_FIELDS)
    if unknown:
        return _error(400, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(ADD_FIELDS))}")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name or "/" in name or name in engine.names()):
        return _error(409 if name in engine.names() else 400, f"stream name {name!r} is taken or not usable")
    if body.get("live") not in (None, True, False):
        return _error(400, "live must be true, false or null")
    try:
        chosen = await _in_thread(lambda: engine.add(
            body["source"], name=name, task=body.get("task"), model=body.get("model"),
            live=body.get("live"), out=settings.get("record"), raw=settings.get("raw")))
    except DenseStreamError as exc:
        return _error(400, str(exc))
    return web.json_response(await _in_thread(engine.status, chosen), status=201)


async def remove_stream(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    name = request.match_info["name"]
    try:
        summary = await _in_thread(engine.remove, name)
    except KeyError:
        return _error(404, f"no stream named {name!r}")
    request.app[JPEGS].forget(name)
    run = summary.run
    return web.json_response({"name": name, "frames_in": run.frames_in, "frames_out": run.frames_out,
                              "dropped": run.dropped, "reconnects": summary.reconnects,
                              "latency_ms_p95": run.latency_ms_p95, "error": run.error})


async def frame_jpeg(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        encoded = await _in_thread(request.app[JPEGS].get, request.app[ENGINE], name)
    except KeyError:
        return _error(404, f"no stream named {name!r}")
    if encoded is None:
        return _error(404, f"stream {name!r} has no frame yet")
    return web.Response(body=encoded[1], content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def mjpeg(request: web.Request) -> web.StreamResponse:
    """The tile: a multipart stream of JPEGs, at most ``tile_fps`` a second, while the stream exists."""
    engine, jpegs = request.app[ENGINE], request.app[JPEGS]
    name = request.match_info["name"]
    if name not in engine.names():
        return _error(404, f"no stream named {name!r}")
    response = web.StreamResponse(headers={
        "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", "Cache-Control": "no-store"})
    await response.prepare(request)
    interval = 1.0 / request.app[SETTINGS]["tile_fps"]
    sent = -1
    try:
        while not request.app[CLOSING].is_set():
            started = time.monotonic()
            try:
                encoded = await _in_thread(jpegs.get, engine, name)
            except KeyError:
                break  # the stream was removed
            if encoded is not None and encoded[0] != sent:
                sent = encoded[0]
                await response.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     f"{len(encoded[1])}\r\n\r\n".encode() + encoded[1] + b"\r\n")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    except (ConnectionResetError, asyncio.CancelledError):
        return response
    return response


HLS_FILE = re.compile(r"index(\d*)\.(m3u8|ts)")
HLS_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "ts": "video/mp2t"}


async def hls_file(request: web.Request) -> web.StreamResponse:
    """A stream's playlist or one of its segments, from the server's HLS folder."""
    root = request.app[SETTINGS].get("hls")
    name, file = request.match_info["name"], request.match_info["file"]
    match = HLS_FILE.fullmatch(file)
    if not root or not match or name not in request.app[ENGINE].names():
        return _error(404, "no such HLS file")
    path = Path(root) / name / file
    if not path.is_file():
        return _error(404, f"{file} is not written yet")
    return web.FileResponse(path, headers={"Content-Type": HLS_TYPES[match[2]], "Cache-Control": "no-cache"})


async def metrics(request: web.Request) -> web.Response:
    body = await _in_thread(render, request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def healthz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    alive = engine.running
    return web.json_response({"status": "ok" if alive else "stopped", "streams": len(engine.names()),
                              "device": str(engine.device),
                              "uptime_s": round(time.monotonic() - engine.started, 1)},
                             status=200 if alive else 503)


def build_app(engine: MultiStream, *, tile_fps: float = 10.0, record: str | None = None,
              raw: str | None = None, hls: str | None = None) -> web.Application:
    """The application; ``record``/``raw`` are output templates (with ``{name}``) applied to
    streams added over REST (clients never choose file paths); ``hls`` is the folder whose
    ``NAME/`` subfolders the engine writes HLS into (see ``server.hls_outputs``)."""
    if tile_fps <= 0:
        raise DenseStreamError("--tile-fps must be positive")
    app = web.Application()
    app[ENGINE] = engine
    app[SETTINGS] = {"tile_fps": tile_fps, "record": record, "raw": raw, "hls": hls}
    app[JPEGS] = JpegCache()
    app[REGISTRY] = metrics_registry(engine)
    app[CLOSING] = asyncio.Event()

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(closing)
    app.add_routes([
        web.get("/", page), web.get("/streams", list_streams), web.post("/streams", add_stream),
        web.delete("/streams/{name}", remove_stream), web.get("/streams/{name}/mjpeg", mjpeg),
        web.get("/streams/{name}/frame.jpg", frame_jpeg), web.get("/metrics", metrics),
        web.get("/healthz", healthz), web.get("/hls/{name}/{file}", hls_file),
    ])
    return app
