"""``MultiStream``: many sources feeding one device stage, each result back to its own stream.

Every stream has a reader thread (``streams.StreamReader``) that fills its lane in the
``hub.Hub``; one device loop takes batches of same-task, same-size frames from whichever
streams have them (closed on size or after ``batch_timeout``), runs them through a
``DeviceStage`` and hands each result to its stream's ``outputs.OutputFeeder``. A stalled,
slow or dead stream only loses its own frames. Streams may be added and removed while it runs.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace

import numpy as np

from ..api import RAW_FORMATS, RAW_KEYS, encoding_options, make_renderer
from ..cpu_share import choose_threads, follow_load
from ..engine import DeviceStage, StageResult, select_device, select_precision, set_cpu_threads
from ..errors import DenseStreamError, describe_error
from ..frames import StreamInfo
from ..hwcodecs import pick_decoder_accel, pick_encoder
from ..overlay import OverlayRenderer, draw_hud
from ..pipeline import check_run_options
from ..sinks import RawSink, hurry, open_sink
from ..sources import open_source
from ..sources.opening import NETWORK_SCHEMES
from ..tasks import Task, build_task
from .hub import Hub
from .outputs import OutputFeeder
from .streams import StreamReader, StreamSummary
from .summary import MultiSummary

SourceSpec = str | int | Callable[[], object]


@dataclass
class _TaskEntry:
    task: Task
    renderer: OverlayRenderer


@dataclass
class _Stream:
    name: str
    spec: str
    task_key: Hashable
    task_name: str
    reader: StreamReader
    out: str | None = None
    raw: str | None = None
    encoding: dict = field(default_factory=dict)
    feeder: OutputFeeder | None = None
    latest: tuple[int, np.ndarray] | None = None
    last_latency: float | None = None
    extra_sinks: list = field(default_factory=list)
    ended: bool = False


def reopens(spec: SourceSpec) -> bool:
    """Cameras and network streams are opened again after an outage; files and scenes are not."""
    if callable(spec):
        return False
    text = str(spec)
    if text.isdigit() or text.startswith("/dev/video"):
        return True
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in NETWORK_SCHEMES


class MultiStream:
    """Runs one task configuration over many streams on one device.

    ``batch`` frames at most share a device call; ``batch_timeout`` seconds is how long the
    oldest waiting frame waits for others to fill its batch. ``reopen_for`` is how long a
    camera or network stream may stay away before it fails (None: forever); ``max_frames``
    ends each stream after that many frames; ``overwrite`` lets outputs replace existing ones
    (never an input); ``codec``, ``quality``, ``preset``, ``bitrate`` and ``raw_format`` are
    ``build_pipeline``'s, for every stream's video file and raw folder, and so are the drawing
    options (``opacity`` ... ``full_panels``, see ``stream.api.make_renderer``). Other options
    are those of ``stream.api.build_pipeline``; ``sink_factory(name, info)`` gives more sinks
    for every stream once its source is open (the server's HLS output). Use ``add``/``remove``,
    then ``run()`` (until every stream has ended) or ``start()``/``close()`` (in the background,
    for servers).
    """

    def __init__(self, task: str | Task = "seg", *, model: str | None = None, layout: str = "overlay",
                 device: str = "auto", precision: str = "auto", batch: int = 4,
                 batch_timeout: float = 0.02, hud: bool = True, refine: str | None = None,
                 infer_size: str | tuple[int, int] = "auto",
                 init_box: tuple[float, float, float, float] | None = None, hw_codecs: str = "auto",
                 queue_size: int = 8, reopen_for: float | None = 60.0, threads: int | None = None,
                 max_frames: int | None = None, overwrite: bool = False, codec: str = "h264",
                 quality: int | None = None, preset: str | None = None, bitrate: str | None = None,
                 raw_format: str = "png", opacity: float = 0.5, classes: str | list[str | int] | None = None,
                 palette: str = "contrast", legend: str = "present",
                 depth_range: str | tuple[float, float] | None = None, depth_cmap: str = "turbo",
                 line_width: int | None = None, size: str | tuple[int, int] | None = None,
                 full_panels: bool = False,
                 sink_factory: Callable[[str, StreamInfo], list] | None = None) -> None:
        if batch_timeout < 0:
            raise DenseStreamError("--batch-timeout must not be negative")
        check_run_options(batch, max_frames)
        if depth_range == "auto":
            raise DenseStreamError("--depth-range auto follows the depths of one stream: give NEAR,FAR "
                                   "for several streams")
        if raw_format not in RAW_FORMATS:
            raise DenseStreamError(f"unknown raw format {raw_format!r} (choose from {', '.join(RAW_FORMATS)})")
        if threads is not None:
            set_cpu_threads(threads)
        else:
            choose_threads()
        self.device = select_device(device)
        self.dtype = select_precision(self.device, precision)
        self.batch = batch
        self.batch_timeout = batch_timeout
        self.hud = hud
        self.layout = layout
        self.queue_size = queue_size
        self.reopen_for = reopen_for
        self.max_frames = max_frames
        self.overwrite = overwrite
        self._quality = (quality, preset, bitrate)
        self._depth_format = RAW_FORMATS[raw_format]
        self._drawing = dict(opacity=opacity, classes=classes, palette=palette, legend=legend,
                             depth_range=depth_range, depth_cmap=depth_cmap, line_width=line_width,
                             size=size, full_panels=full_panels)
        self._sink_factory = sink_factory
        self._defaults = {"task": task, "model": model, "refine": refine, "infer_size": infer_size,
                          "init_box": init_box}
        self._encoder = pick_encoder(hw_codecs, self.device, codec)
        self._hwaccel = pick_decoder_accel(hw_codecs, self.device)
        self.hub = Hub()
        self._streams: dict[str, _Stream] = {}
        self._retired: list[StreamSummary] = []
        self._tasks: dict[Hashable, _TaskEntry] = {}
        self._stages: dict[Hashable, DeviceStage] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._interrupted = False
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._sequence = 0
        self.started = time.monotonic()
        self.device_seconds = 0.0
        self._busy_samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=600)
        self.summary: MultiSummary | None = None

    # ---- streams -------------------------------------------------------------------------
    def add(self, source: SourceSpec, *, name: str | None = None, out: str | None = None,
            raw: str | None = None, live: bool | None = None, task: str | Task | None = None,
            model: str | None = None, reopen: bool | None = None, sinks: list | None = None) -> str:
        """Start a stream; returns its name (``name``, or the source's own, made unique).

        ``source`` is anything ``open_source`` takes, or a callable returning a fresh source
        (it is called again to reconnect). ``out``/``raw`` as in ``build_pipeline``, with
        ``{name}`` replaced by the stream's name; ``sinks`` more ready sinks. ``task``/``model``
        override the defaults; ``reopen`` (default: cameras and network streams) opens the
        source again when it ends or fails, for up to ``reopen_for`` seconds of outage.
        """
        if self._stopping.is_set():
            raise DenseStreamError("the engine is shutting down")
        opener = source if callable(source) else self._opener(source, live)
        task_key, entry = self._task_for(task, model, name or str(source))
        with self._lock:
            chosen = self._unique_name(name or _default_name(source))
            encoding = encoding_options(_fill(out, chosen), *self._quality)
            reader = StreamReader(
                chosen, opener, self.hub, on_open=lambda info: self._opened(chosen, info), live=live,
                reopen=reopens(source) if reopen is None else reopen, reopen_for=self.reopen_for, capacity=self.queue_size,
                blocked=lambda: self._blocked(chosen), on_end=self.hub.wake, max_frames=self.max_frames)
            stream = _Stream(chosen, str(source) if not callable(source) else chosen, task_key,
                             entry.task.name, reader, _fill(out, chosen), _fill(raw, chosen), encoding,
                             extra_sinks=list(sinks or ()))
            self._streams[chosen] = stream
        reader.start()
        return chosen

    def remove(self, name: str, timeout: float | None = 30.0) -> StreamSummary:
        """Stop a stream, finalise its outputs and return its summary."""
        with self._lock:
            stream = self._streams.pop(name, None)
        if stream is None:
            raise KeyError(name)
        stream.reader.stop("removed")
        if stream.feeder is not None:
            stream.feeder.close(timeout)
        summary = self._summarise(stream)
        with self._lock:
            self._retired.append(summary)
        return summary

    def names(self) -> list[str]:
        with self._lock:
            return list(self._streams)

    def latest(self, name: str) -> tuple[int, np.ndarray] | None:
        """(sequence number, RGB image) of the stream's newest result, or None before the first."""
        with self._lock:
            stream = self._streams.get(name)
        if stream is None:
            raise KeyError(name)
        return stream.latest

    def status(self, name: str) -> dict:
        """What the page and ``GET /streams`` show of one stream."""
        with self._lock:
            stream = self._streams.get(name)
        if stream is None:
            raise KeyError(name)
        reader = stream.reader
        run = self._run_summary(stream)
        info = reader.info
        return {
            "name": name, "source": stream.spec, "task": stream.task_name, "state": reader.state,
            "live": reader.live, "width": info.width if info else None,
            "height": info.height if info else None, "frames_in": run.frames_in,
            "frames_out": run.frames_out, "dropped": run.dropped,
            "reconnects": reader.source_reconnects, "fps": round(reader.stats.recent_fps(), 2),
            "latency_ms": None if stream.last_latency is None else round(1000 * stream.last_latency, 1),
            "latency_ms_p95": None if run.latency_ms_p95 is None else round(run.latency_ms_p95, 1),
            "queued": self.hub.depths().get(name, 0),
            "output_queued": stream.feeder.waiting() if stream.feeder else 0,
            "error": reader.error or (describe_error(stream.feeder.error)
                                      if stream.feeder and stream.feeder.error else None),
            "out": stream.out, "raw": stream.raw,
        }

    def statuses(self) -> list[dict]:
        return [self.status(name) for name in self.names() if name in self._streams]

    def histograms(self) -> dict[str, tuple[tuple[float, ...], list[int], float]]:
        """Per stream: (bucket bounds, cumulative counts incl. +Inf, sum of latencies)."""
        with self._lock:
            streams = list(self._streams.values())
        return {s.name: (s.reader.latency.bounds, *s.reader.latency.snapshot()) for s in streams}

    def busy_share(self, window: float = 10.0) -> float:
        """Share of the last ``window`` seconds the device loop spent on batches."""
        now = time.monotonic()
        recent = [(t, busy) for t, busy in list(self._busy_samples) if t >= now - window]
        span = min(window, now - self.started)
        return min(1.0, sum(busy for _, busy in recent) / span) if span > 0 else 0.0

    # ---- running ------------------------------------------------------------------------
    def run(self) -> MultiSummary:
        """Serve batches in this thread until every stream has ended (or ``stop()``)."""
        try:
            self._loop(until_done=True)
        except KeyboardInterrupt:
            self._interrupted = True
        return self.close()

    def start(self) -> None:
        """Serve batches in a background thread until ``close()``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(False,), name="device", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """The background device loop is serving batches."""
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` or ``abort()`` was called (``stop_on_signals`` asks)."""
        return self._stopping.is_set()

    def stop(self, interrupted: bool = True) -> None:
        """Ask the device loop to finish (safe from signal handlers and other threads)."""
        self._interrupted = self._interrupted or interrupted
        self._stopping.set()
        self.hub.stop()

    def abort(self) -> None:
        """Stop at once (a second Ctrl-C): video outputs skip their slow finishing steps."""
        with self._lock:
            feeders = [stream.feeder for stream in self._streams.values() if stream.feeder is not None]
        hurry(sink for feeder in feeders for sink in feeder.sinks)
        self.stop(interrupted=True)

    def close(self) -> MultiSummary:
        """Stop everything, finalise every output and return the summary of all streams."""
        if self.summary is not None:
            return self.summary
        self._stopping.set()
        self.hub.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        for name in self.names():
            self.remove(name)
        with self._lock:
            streams = list(self._retired)
        self.summary = MultiSummary(streams, time.monotonic() - self.started, self._interrupted,
                                    self._error)
        return self.summary

    def _loop(self, until_done: bool) -> None:
        """Serve batches; an unexpected error ends the engine and is reported in the summary."""
        try:
            self._serve_batches(until_done)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the summary, never lost
            self._error = f"device loop failed: {describe_error(exc)}"
            self.stop(interrupted=False)

    def _serve_batches(self, until_done: bool) -> None:
        pending: collections.deque = collections.deque()
        depth = 2 if self.device.type == "cuda" else 1
        while not self._stopping.is_set():
            batch = self.hub.take(self.batch, self.batch_timeout, idle=0.0 if pending else 0.1)
            if batch is None:
                break
            if batch.frames:
                follow_load()
                started = time.perf_counter()
                try:
                    stage = self._stage(batch.group)
                    pending.append((batch, stage, stage.submit(batch.frames)))
                except Exception as exc:  # noqa: BLE001 - fails these streams, not the engine
                    self._fail_batch(batch, exc)
                self._busy(time.perf_counter() - started)
            while pending and (not batch.frames or len(pending) >= depth):
                done, stage, in_flight = pending.popleft()
                started = time.perf_counter()
                try:
                    results = stage.fetch(in_flight)
                except Exception as exc:  # noqa: BLE001 - as above
                    self._fail_batch(done, exc)
                    continue
                self._busy(time.perf_counter() - started)
                self._deliver(done.names, results)
            if not pending:
                self._end_finished()
                if until_done and self._all_done():
                    break
        while pending:
            done, stage, in_flight = pending.popleft()
            self._deliver(done.names, stage.fetch(in_flight))

    def _busy(self, seconds: float) -> None:
        self.device_seconds += seconds
        self._busy_samples.append((time.monotonic(), seconds))

    def _fail_batch(self, batch, exc: BaseException) -> None:
        message = f"device stage failed: {describe_error(exc)}"
        with self._lock:
            streams = [self._streams.get(name) for name in set(batch.names)]
        for stream in streams:
            if stream is not None:
                stream.reader.fail(message)

    def _deliver(self, names: list[str], results: list[StageResult]) -> None:
        now = time.monotonic()
        for name, result in zip(names, results):
            with self._lock:
                stream = self._streams.get(name)
            if stream is None or stream.feeder is None or stream.reader.state in ("removed", "failed"):
                continue
            reader = stream.reader
            latency = now - result.frame.captured
            reader.stats.frame_out(result.frame.captured)
            reader.latency.observe(latency)
            stream.last_latency = latency
            outputs = _host_outputs(result.outputs) if stream.raw else {}
            if self.hud:
                draw_hud(result.image, self._hud_text(stream, latency))
            self._sequence += 1
            stream.latest = (self._sequence, result.image)
            stream.feeder.put(StageResult(result.frame, result.image, outputs))
            if stream.feeder.stop_requested:
                reader.stop("ended")

    def _hud_text(self, stream: _Stream, latency: float) -> str:
        reader = stream.reader
        return (f"{stream.name} | {stream.task_name} | {reader.stats.recent_fps():.1f} fps | latency "
                f"{1000 * latency:.0f} ms | drops {reader.dropped}")

    def _end_finished(self) -> None:
        """Finalise the outputs of streams whose input has ended and whose frames are all out."""
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            if not stream.ended and stream.reader.finished and not self.hub.has_lane(stream.name):
                stream.ended = True
                if stream.feeder is not None:
                    stream.feeder.end()

    def _all_done(self) -> bool:
        with self._lock:
            return all(stream.ended for stream in self._streams.values())

    # ---- helpers ----------------------------------------------------------------------
    def _opener(self, spec, live: bool | None) -> Callable[[], object]:
        return lambda: open_source(spec, live=live, hwaccel=self._hwaccel)

    def _task_for(self, task, model, label: str) -> tuple[Hashable, _TaskEntry]:
        options = dict(self._defaults)
        if task is not None:
            options.update(task=task, model=model)
        elif model is not None:
            options["model"] = model
        chosen = options["task"]
        if isinstance(chosen, Task):
            key: Hashable = ("object", id(chosen))
        else:
            key = (chosen, options["model"], options["refine"], str(options["infer_size"]), options["init_box"])
            if "track" in chosen.split(","):
                key += (label,)  # a tracker's state belongs to one stream
        with self._lock:
            entry = self._tasks.get(key)
        if entry is None:
            task_obj = chosen if isinstance(chosen, Task) else build_task(
                chosen, options["model"], options["init_box"], options["refine"], options["infer_size"])
            task_obj.prepare(self.device)
            renderer = make_renderer(task_obj, self.device, layout=self.layout, **self._drawing)
            entry = _TaskEntry(task_obj, renderer)
            with self._lock:
                entry = self._tasks.setdefault(key, entry)
        return key, entry

    def _opened(self, name: str, info: StreamInfo) -> Hashable:
        """A stream's first source is open: open its outputs and say which batches it joins."""
        with self._lock:
            stream = self._streams[name]
        entry = self._tasks[stream.task_key]
        scale = getattr(entry.task, "scale", 1)
        out_h, out_w = entry.renderer.output_size(info.height * scale, info.width * scale)
        out_info = replace(info, width=out_w, height=out_h, name=name)
        sinks = list(stream.extra_sinks)
        try:
            if stream.out or not sinks:
                sinks.append(open_sink(stream.out or "null", out_info, codec=self._encoder,
                                       overwrite=self.overwrite, **stream.encoding))
            if stream.raw:
                sinks.append(RawSink(stream.raw, depth_format=self._depth_format, inputs=info.inputs,
                                     overwrite=self.overwrite))
            if self._sink_factory is not None:
                sinks.extend(self._sink_factory(name, out_info))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        stream.feeder = OutputFeeder(name, sinks, stream.reader.stats, live=bool(info.live),
                                     capacity=self.queue_size, on_room=self.hub.wake,
                                     on_error=lambda exc: stream.reader.fail(describe_error(exc)))
        return (stream.task_key, info.height, info.width)

    def _blocked(self, name: str) -> bool:
        stream = self._streams.get(name)
        return stream is not None and stream.feeder is not None and not stream.feeder.live \
            and stream.feeder.full

    def _stage(self, group: Hashable) -> DeviceStage:
        stage = self._stages.get(group)
        if stage is None:
            entry = self._tasks[group[0]]
            stage = DeviceStage(entry.task, entry.renderer, self.device, self.dtype, batch=self.batch,
                                raw_keys=RAW_KEYS)
            self._stages[group] = stage
        return stage

    def _unique_name(self, name: str) -> str:
        taken = set(self._streams) | {summary.name for summary in self._retired}
        if name not in taken:
            return name
        n = 2
        while f"{name}_{n}" in taken:
            n += 1
        return f"{name}_{n}"

    def _run_summary(self, stream: _Stream):
        reader = stream.reader
        feeder = stream.feeder
        dropped = reader.dropped + (feeder.dropped if feeder else 0)
        error = reader.error or (describe_error(feeder.error) if feeder and feeder.error else None)
        return reader.stats.summary(dropped, self._interrupted, error)

    def _summarise(self, stream: _Stream) -> StreamSummary:
        return StreamSummary(stream.name, stream.task_name, self._run_summary(stream),
                             stream.reader.source_reconnects, stream.reader.state)


def _fill(template: str | None, name: str) -> str | None:
    return None if template is None else template.replace("{name}", name)


def _default_name(source: SourceSpec) -> str:
    """A short name from the source spec: the file stem, the URL's last part, ``cameraN``."""
    from ..sources.base import safe_name

    if callable(source):
        return "stream"
    text = str(source)
    if text.isdigit():
        return f"camera{text}"
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme == "synth":
            return safe_name(f"synth_{rest.split('?', 1)[0]}")
        rest = rest.split("?", 1)[0].rstrip("/")
        return safe_name(rest.rsplit("/", 1)[-1] or scheme)
    stem = text.rstrip("/").rsplit("/", 1)[-1]
    return safe_name(stem.rsplit(".", 1)[0] if "." in stem else stem)


def _host_outputs(outputs: dict) -> dict:
    """Raw outputs as the raw sink writes them; a tracker's box becomes its one CSV row."""
    outputs = dict(outputs)
    if "boxes" in outputs:
        x, y, w, h = (float(v) for v in outputs.pop("boxes"))
        score = float(outputs.pop("scores", float("nan")))
        outputs["box"] = (x, y, w, h, score, bool(outputs.pop("lost", False)))
    return outputs
