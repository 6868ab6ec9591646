"""Wiring of one run: a source thread, the device stage in the caller's thread, a thread per sink.

Offline input is lossless (every frame read gives one output, in order, same timestamps);
live input keeps only the newest frame waiting and counts drops. On end of input, ``stop()``
(Ctrl-C, SIGTERM, a window's q) or an error in any thread, the run drains what is in flight,
finalises every sink and reports a ``RunSummary``.
"""
from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
from typing import Callable, Iterator

from .buffers import END, FrameBuffer
from .compiling import compile_task, should_compile
from .cpu_share import follow_load
from .engine import DeviceStage, StageResult, select_device, select_precision
from .errors import DenseStreamError, describe_error
from .overlay import draw_hud
from .sinks import hurry
from .stats import RunStats, RunSummary

ProgressCallback = Callable[[int, int | None, float], None]


def _attach_track_row(outputs: dict) -> None:
    """Tracking outputs as the single (x, y, w, h, score, lost) row that raw sinks write."""
    if "boxes" in outputs:
        x, y, w, h = (float(v) for v in outputs.pop("boxes"))
        score = float(outputs.pop("scores", float("nan")))
        lost = bool(outputs.pop("lost", False))
        outputs["box"] = (x, y, w, h, score, lost)


def check_run_options(batch: int, max_frames: int | None) -> None:
    """Refuse a batch size or frame limit below 1 (before anything is opened)."""
    if batch < 1:
        raise DenseStreamError("--batch must be at least 1")
    if max_frames is not None and max_frames < 1:
        raise DenseStreamError("--max-frames must be at least 1")


class _SinkWorker:
    """Feeds one sink from its own bounded queue in its own thread; when ``hud_text`` is given,
    each frame gets the status line drawn on its own copy just before the sink takes it."""

    def __init__(self, sink, stats: RunStats, on_error: Callable[[BaseException], None],
                 capacity: int = 8, hud_text: Callable[[StageResult], str] | None = None) -> None:
        self.sink = sink
        self.stats = stats
        self.on_error = on_error
        self.hud_text = hud_text
        self.buffer = FrameBuffer(capacity, lossless=True)
        self.name = type(sink).__name__
        self.thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)

    def _run(self) -> None:
        """Write until the queue ends, then close the sink here (window toolkits want that)."""
        try:
            while (item := self.buffer.get()) is not END:
                started = time.perf_counter()
                image = item.image
                if self.hud_text is not None:
                    image = image.copy()
                    draw_hud(image, self.hud_text(item))
                self.sink.write(item.frame, image, item.outputs)
                self.stats.add_busy(self.name, time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - reported to the run, never lost
            self.buffer.cancel()
            self.on_error(exc)
        finally:
            try:
                self.sink.close()
            except BaseException as exc:  # noqa: BLE001 - a failed close is an error too
                self.on_error(exc)


class Pipeline:
    """One run of ``task`` over ``source`` into ``sinks``; iterate it or call ``run()``.

    ``renderer(images, outputs)`` composes the overlay on the device; ``raw_keys`` names the
    task outputs the sinks receive on the host; ``max_frames`` stops after that many frames;
    ``progress(done, total, fps)`` is called after every frame; ``compile`` ('auto', 'on',
    'off') runs the task's networks through torch.compile (see ``stream.compiling``).
    ``hud`` draws the status line into every sink's frames (True), none (False), or only those
    of sinks that show frames to a person, i.e. whose ``hud_by_default`` is true (None); the
    frames the iteration yields never carry it.
    """

    def __init__(self, source, task, renderer, sinks: list, *, device: str = "auto",
                 precision: str = "auto", batch: int = 1, max_frames: int | None = None,
                 raw_keys: tuple[str, ...] = (), hud: bool | None = None, queue_size: int = 8,
                 compile: str = "off", progress: ProgressCallback | None = None) -> None:
        check_run_options(batch, max_frames)
        self.source = source
        self.task = task
        self.sinks = list(sinks)
        self.device = select_device(device)
        self.dtype = select_precision(self.device, precision)
        self.live = bool(source.info.live)
        self.batch = 1 if self.live else batch
        self.max_frames = max_frames
        self.hud = hud
        self.progress = progress
        self.total = self._expected_total()
        self.compiled = should_compile(compile, self.live, self.total) and compile_task(task, self.device) > 0
        task.prepare(self.device)
        self.sizes_vary = bool(getattr(source.info, "sizes_vary", False))
        self.stage = DeviceStage(task, renderer, self.device, self.dtype, batch=self.batch,
                                 raw_keys=raw_keys, sizes_vary=self.sizes_vary)
        self._carried = None  # a frame read ahead that starts the next batch (a new size)
        self.stats = RunStats()
        capacity = 1 if self.live else max(queue_size, 2 * self.batch)
        self.frames = FrameBuffer(capacity, lossless=not self.live)
        self._stop = threading.Event()
        self._interrupted = False
        self._errors: list[BaseException] = []
        self._error_lock = threading.Lock()
        self._abort = threading.Event()
        self._workers = [_SinkWorker(sink, self.stats, self._fail, hud_text=self._hud_text if wants else None)
                         for sink, wants in zip(self.sinks, self._hud_choices())]
        self._reader = threading.Thread(target=self._read_source, name="source", daemon=True)
        self.summary: RunSummary | None = None

    def _hud_choices(self) -> list[bool]:
        """Per sink, whether its frames carry the status line."""
        if self.hud is not None:
            return [bool(self.hud)] * len(self.sinks)
        return [bool(getattr(sink, "hud_by_default", False)) for sink in self.sinks]

    def _expected_total(self) -> int | None:
        known = self.source.info.frame_count
        if self.max_frames is None:
            return known
        return self.max_frames if known is None else min(known, self.max_frames)

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` or ``abort()`` was called or the run is ending."""
        return self._stop.is_set()

    def stop(self, interrupted: bool = True) -> None:
        """Finish early: frames still queued for the device are discarded (the summary counts
        them), the frames already on the device are finished and written, outputs finalised.
        Safe from signal handlers and other threads."""
        self._interrupted = self._interrupted or interrupted
        self._stop.set()
        self.frames.cancel()

    def abort(self) -> None:
        """Stop at once (a second Ctrl-C): nothing more is processed or written, and outputs
        skip their slow finishing steps (the MP4 remux) but stay playable."""
        self._interrupted = True
        hurry(self.sinks)
        self._abort.set()
        self._stop.set()
        self.frames.cancel()
        for worker in self._workers:
            worker.buffer.cancel()

    def _record(self, exc: BaseException) -> None:
        with self._error_lock:
            self._errors.append(exc)
        self._stop.set()

    def _fail(self, exc: BaseException) -> None:
        """A stage broke: record it and abandon the frames still waiting."""
        self._record(exc)
        self._abort.set()
        self.frames.cancel()

    def _read_source(self) -> None:
        try:
            iterator = iter(self.source)
            while not self._stop.is_set():
                if not self.live and self.max_frames is not None and self.stats.frames_in >= self.max_frames:
                    break  # live input reads on: frames it drops do not count (see _deliver)
                started = time.perf_counter()
                frame = next(iterator, None)
                self.stats.add_busy("decode", time.perf_counter() - started)
                if frame is None or not self.frames.put(frame):
                    break
                self.stats.frame_read()
        except BaseException as exc:  # noqa: BLE001 - reported to the run, never lost
            self._record(exc)
        finally:
            self.frames.close()

    def _next_batch(self, wait: bool) -> list | None:
        """Up to ``batch`` frames of one size; [] when none is ready and ``wait`` is False; None
        at the end."""
        first, self._carried = self._carried, None
        if first is None:
            first = self.frames.get(block=wait, timeout=None)
        if first is END:
            return None
        if first is None:
            return []
        batch = [first]
        while len(batch) < self.batch:
            item = self.frames.get()
            if item is END:
                break
            if self.sizes_vary and item.image.shape != first.image.shape:
                self._carried = item
                break
            batch.append(item)
        return batch

    def _limit_reached(self) -> bool:
        """``max_frames`` counts frames written, so live input that drops frames still gets them all."""
        return self.max_frames is not None and self.stats.frames_out >= self.max_frames

    def _deliver(self, results: list[StageResult]) -> Iterator[StageResult]:
        for result in results:
            if self._limit_reached():
                return
            self.stats.frame_out(result.frame.captured)
            _attach_track_row(result.outputs)
            for worker in self._workers:
                worker.buffer.put(result)
            if self.progress is not None:
                self.progress(self.stats.frames_out, self.total, self.stats.recent_fps())
            if self._limit_reached() or any(getattr(sink, "stop_requested", False) for sink in self.sinks):
                self.stop(interrupted=False)
            yield result

    def _hud_text(self, result: StageResult) -> str:
        """Figures that mean something for the input: live, the capture-to-display latency of
        this frame (read just before the sink shows it) and the drops; offline, the processing
        rate over the last frames and the progress through the input."""
        fps = self.stats.recent_fps()
        rate = f"{fps:.1f} fps" if fps > 0 else "-- fps"
        if self.live:
            latency = 1000 * (time.monotonic() - result.frame.captured)
            return f"{self.task.name} | latency {latency:.0f} ms | {rate} | dropped {self.frames.dropped}"
        done = result.frame.index + 1
        progress = f"frame {done}/{self.total} ({100 * done // self.total}%)" if self.total else f"frame {done}"
        return f"{self.task.name} | {rate} | {progress}"

    def __iter__(self) -> Iterator[StageResult]:
        for worker in self._workers:
            worker.thread.start()
        self._reader.start()
        pending: collections.deque = collections.deque()
        try:
            while not self._abort.is_set():
                batch = self._next_batch(wait=not pending)
                if batch is None:
                    break
                follow_load()
                started = time.perf_counter()
                if batch:
                    pending.append(self.stage.submit(batch))
                ready = []
                while pending and (not batch or len(pending) >= self.stage.depth):
                    ready.extend(self.stage.fetch(pending.popleft()))
                self.stats.add_busy("device", time.perf_counter() - started)
                yield from self._deliver(ready)
            while pending and not self._abort.is_set():
                yield from self._deliver(self.stage.fetch(pending.popleft()))
        except GeneratorExit:
            self.stop(interrupted=False)
        except KeyboardInterrupt:
            self.stop(interrupted=True)
        except BaseException as exc:  # noqa: BLE001 - reported in the summary, never lost
            self._fail(exc)
        finally:
            self._finish()

    def _finish(self) -> None:
        """Stop reading, flush every sink and close everything; sets ``summary``."""
        self._stop.set()
        self.frames.cancel()
        self.source.close()
        for worker in self._workers:
            worker.buffer.close()
        for worker in self._workers:
            if worker.thread.ident is None:
                worker.sink.close()
            else:
                worker.thread.join()
        self._reader.join(timeout=5.0)
        error = describe_error(self._errors[0]) if self._errors else None
        self.summary = self.stats.summary(self.frames.dropped, self._interrupted, error)

    def run(self) -> RunSummary:
        """Process the whole input (or until stopped) and return the summary."""
        for _ in self:
            pass
        return self.summary


@contextlib.contextmanager
def stop_on_signals(pipeline: Pipeline):
    """While active, SIGINT and SIGTERM stop ``pipeline`` gracefully and a second one aborts it
    (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in handled}

    def handler(signum, _frame):
        if pipeline.stopping:
            pipeline.abort()
        else:
            pipeline.stop(interrupted=True)

    for sig in handled:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
