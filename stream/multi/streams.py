"""One stream of a multi-stream run: its reader thread (open, reopen after outages, hand frames
to the hub), its counters and its state, as the summary, the metrics and the page show them."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import DenseStreamError, SourceError, describe_error
from ..frames import Frame, StreamInfo
from ..sources.live_audio import Relay
from ..stats import RunStats, RunSummary
from .hub import Hub

# Latency histogram buckets in seconds (Prometheus' le= bounds; +Inf is implied).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
STATES = ("connecting", "running", "reconnecting", "ended", "failed", "removed")


@dataclass(frozen=True)
class StreamSummary:
    """How one stream went: the single-stream ``RunSummary`` plus its reconnects and task."""

    name: str
    task: str
    run: RunSummary
    reconnects: int
    state: str


class LatencyHistogram:
    """Cumulative counts of latencies per bucket, their sum and count (thread-safe)."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = int(np.searchsorted(self.bounds, seconds, side="left"))
        with self._lock:
            self.counts[index] += 1
            self.total += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """(cumulative counts per bound then +Inf, sum of all latencies)."""
        with self._lock:
            return list(np.cumsum(self.counts).tolist()), self.total


class StreamReader:
    """Reads one stream into its hub lane until it ends, fails or is stopped.

    ``opener()`` returns a fresh source; ``on_open(info)`` is called with the first source's
    info and returns the lane group (it opens the outputs, so later sources' audio is relayed
    into the first one's feed); ``reopen_for`` seconds is how long an outage may last before the
    stream fails (None: forever); ``reopen`` False makes any end final (files, synthetic
    scenes); ``max_frames`` ends the stream after that many frames.
    """

    def __init__(self, name: str, opener: Callable[[], object], hub: Hub, *,
                 on_open: Callable[[StreamInfo], object], live: bool | None, reopen: bool,
                 reopen_for: float | None = 60.0, capacity: int = 8, retry_delay: float = 0.5,
                 max_delay: float = 8.0, blocked: Callable[[], bool] | None = None,
                 on_end: Callable[[], None] = lambda: None, max_frames: int | None = None) -> None:
        self.name = name
        self.stats = RunStats()
        self.latency = LatencyHistogram()
        self.reconnects = 0
        self.error: str | None = None
        self.info: StreamInfo | None = None
        self.live = live
        self._opener, self._hub, self._on_open, self._on_end = opener, hub, on_open, on_end
        self._reopen, self._reopen_for = reopen, reopen_for
        self._capacity, self._blocked = capacity, blocked
        self._retry_delay, self._max_delay = retry_delay, max_delay
        self._max_frames = max_frames
        self._state = "connecting"
        self._source = None
        self._source_drops = 0
        self._inner_reconnects = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next_index = 0
        self._pts_offset = 0
        self._last_pts: int | None = None
        self._relay: Relay | None = None
        self._thread = threading.Thread(target=self._run, name=f"source {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def state(self) -> str:
        source = self._source
        if self._state == "running" and getattr(source, "reconnecting", False):
            return "reconnecting"
        return self._state

    @property
    def finished(self) -> bool:
        """The reader is done (ended, failed or stopped)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Frames dropped before the device: in the source and in the hub lane."""
        source = self._source
        return self._source_drops + int(getattr(source, "dropped", 0) or 0) + self._hub.dropped(self.name)

    @property
    def source_reconnects(self) -> int:
        """Reopened by the engine plus sessions the source re-established itself."""
        return self.reconnects + int(getattr(self._source, "reconnects", 0) or 0) + self._inner_reconnects

    def stop(self, state: str | None = None) -> None:
        """End the stream now (from any thread); waits briefly for the reader."""
        self._stop.set()
        if state and self._state not in ("ended", "failed"):
            self._state = state
        source = self._source
        if source is not None:
            source.close()
        self._hub.close_lane(self.name)
        if self._thread.ident is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def fail(self, message: str) -> None:
        """An output or the device failed for this stream: record it and stop reading."""
        self.error = self.error or message
        self._state = "failed"
        self._stop.set()
        source = self._source
        if source is not None:
            source.close()
        self._hub.close_lane(self.name)

    def _run(self) -> None:
        outage_started: float | None = None
        delay = self._retry_delay
        try:
            while not self._stop.is_set():
                try:
                    source = self._opener()
                except DenseStreamError:
                    outage_started = outage_started or time.monotonic()
                    if not self._may_retry(outage_started):
                        raise
                    self._state = "reconnecting"
                    if self._stop.wait(delay):
                        break
                    delay = min(2 * delay, self._max_delay)
                    continue
                if not self._adopt(source):
                    break
                outage_started, delay = None, self._retry_delay
                ended_with = self._pump(source)
                self._retire(source)
                if self._stop.is_set() or not self._reopen or self._at_limit():
                    if ended_with is not None:
                        raise ended_with
                    break
                outage_started = time.monotonic()
                self.reconnects += 1
                self._state = "reconnecting"
            if self._state not in ("failed", "removed"):
                self._state = "ended"
        except BaseException as exc:  # noqa: BLE001 - the stream fails, the others go on
            self.error = self.error or describe_error(exc)
            self._state = "failed"
        finally:
            if self._source is not None:
                self._retire(self._source)
            self._hub.end_lane(self.name)
            self._on_end()

    def _may_retry(self, outage_started: float) -> bool:
        """Whether to try opening again after a failed open."""
        if not self._reopen:
            return False
        return self._reopen_for is None or time.monotonic() - outage_started < self._reopen_for

    def _adopt(self, source) -> bool:
        """Take a freshly opened source into use; False when the stream must end instead."""
        with self._lock:
            if self._stop.is_set():
                source.close()
                return False
            self._source = source
        info = source.info
        if self.info is None:
            self.info = info
            self.live = bool(info.live)
            group = self._on_open(info)
            self._hub.open_lane(self.name, group, self.live, 1 if self.live else self._capacity,
                                self._blocked)
        elif (info.width, info.height) != (self.info.width, self.info.height) or \
                info.time_base != self.info.time_base:
            source.close()
            raise SourceError(f"{self.name}: came back as {info.width}x{info.height} (time base "
                              f"{info.time_base}), was {self.info.width}x{self.info.height} "
                              f"({self.info.time_base}); a stream must keep its size")
        else:
            self._relay = self._relay_audio(info)
        self._state = "running"
        return True

    def _relay_audio(self, info: StreamInfo) -> Relay | None:
        """Send a later source's audio into the recording's track (the first source's feed) when
        that track can hold it (same codec, rate and channels; else it says so once)."""
        recording, feed = self.info.audio_feed, info.audio_feed
        if recording is None or feed is None or not recording.accepts(feed.stream):
            return None
        relay = Relay(recording)
        feed.send_to(relay)
        return relay

    def _pump(self, source) -> BaseException | None:
        """Hand over frames until the source ends; returns the error it ended with, if any."""
        first_of_session = True
        try:
            for frame in source:
                if self._stop.is_set():
                    break
                self._restamp(frame, first_of_session)
                first_of_session = False
                if not self._hub.put(self.name, frame):
                    break
                self.stats.frame_read()
                if self._at_limit():
                    break
        except DenseStreamError as exc:
            return exc
        return None

    def _at_limit(self) -> bool:
        return self._max_frames is not None and self._next_index >= self._max_frames

    def _restamp(self, frame: Frame, new_session: bool) -> None:
        """Number frames across reopened sessions and keep their timestamps increasing; a later
        source's audio is shifted as its frames are."""
        if new_session and self._last_pts is not None and frame.pts + self._pts_offset <= self._last_pts:
            self._pts_offset = self._last_pts + 1 - frame.pts
        if self.reconnects:
            frame.meta = {**frame.meta, "name": f"frame_{self._next_index:06d}"}
        frame.index = self._next_index
        frame.pts += self._pts_offset
        if new_session and self._relay is not None:
            self._relay.place(self._pts_offset, frame.pts)
        self._last_pts = frame.pts
        self._next_index += 1

    def _retire(self, source) -> None:
        """Close a source and keep its counters."""
        source.close()
        with self._lock:
            if self._source is source:
                self._source_drops += int(getattr(source, "dropped", 0) or 0)
                self._inner_reconnects += int(getattr(source, "reconnects", 0) or 0)
                self._source = None

    def join(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:
            self._thread.join(timeout)
