"""Run statistics: per-stage busy time, throughput, latency percentiles and the final summary."""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class RunSummary:
    """What a finished run reports; ``exit_code`` is 0 (done), 130 (interrupted) or 1 (error)."""

    frames_in: int
    frames_out: int
    dropped: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    interrupted: bool = False
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    @property
    def discarded(self) -> int:
        """Frames read but never processed: left in the queue when the run was stopped."""
        return max(0, self.frames_in - self.frames_out - self.dropped)

    @property
    def exit_code(self) -> int:
        if self.error:
            return 1
        return 130 if self.interrupted else 0

    def as_dict(self) -> dict:
        """Every field plus ``fps`` and ``exit_code``, as JSON-ready values (``--json``)."""
        return {**asdict(self), "fps": self.fps, "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        """Human-readable summary, one fact a line."""
        out = [f"frames: {self.frames_out} written of {self.frames_in} read, {self.dropped} dropped",
               f"time: {self.seconds:.2f} s, {self.fps:.2f} frames/s"]
        if self.frames_out:
            per_stage = ", ".join(f"{name} {1000 * busy / self.frames_out:.1f}"
                                  for name, busy in self.stage_seconds.items())
            out.append(f"stage ms/frame: {per_stage}")
        if self.latency_ms_p50 is not None:
            out.append(f"latency: p50 {self.latency_ms_p50:.0f} ms, p95 {self.latency_ms_p95:.0f} ms")
        return out


class RunStats:
    """Thread-safe counters fed by the pipeline's threads while a run goes on."""

    def __init__(self, latency_window: int = 10_000, rate_window: int = 30) -> None:
        self.started = time.monotonic()
        self.frames_in = 0
        self.frames_out = 0
        self._busy: dict[str, float] = {}
        self._latencies: collections.deque[float] = collections.deque(maxlen=latency_window)
        self._recent_outputs: collections.deque[float] = collections.deque(maxlen=rate_window)
        self._lock = threading.Lock()

    def add_busy(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._busy[stage] = self._busy.get(stage, 0.0) + seconds

    def frame_read(self) -> None:
        with self._lock:
            self.frames_in += 1

    def frame_out(self, captured: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_out += 1
            self._latencies.append(now - captured)
            self._recent_outputs.append(now)

    def recent_fps(self) -> float:
        """Output rate over the last few frames (what the HUD and progress bar show)."""
        with self._lock:
            if len(self._recent_outputs) < 2:
                return 0.0
            span = self._recent_outputs[-1] - self._recent_outputs[0]
            return (len(self._recent_outputs) - 1) / span if span > 0 else 0.0

    def summary(self, dropped: int, interrupted: bool, error: str | None) -> RunSummary:
        with self._lock:
            latencies = np.array(self._latencies) * 1000.0
            p50 = float(np.percentile(latencies, 50)) if latencies.size else None
            p95 = float(np.percentile(latencies, 95)) if latencies.size else None
            return RunSummary(self.frames_in, self.frames_out, dropped,
                              time.monotonic() - self.started, dict(self._busy), p50, p95,
                              interrupted, error)
