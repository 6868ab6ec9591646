"""What a multi-stream run reports: one row per stream and the totals."""
from __future__ import annotations

from dataclasses import dataclass

from .streams import StreamSummary


@dataclass
class MultiSummary:
    """Every stream's summary; ``exit_code`` is 1 when any stream failed, 130 when interrupted."""

    streams: list[StreamSummary]
    seconds: float
    interrupted: bool = False
    error: str | None = None

    @property
    def frames_out(self) -> int:
        return sum(stream.run.frames_out for stream in self.streams)

    @property
    def fps(self) -> float:
        """Aggregate output frames per second over the whole run."""
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> list[StreamSummary]:
        return [stream for stream in self.streams if stream.run.error]

    @property
    def exit_code(self) -> int:
        if self.error or self.failed:
            return 1
        return 130 if self.interrupted else 0

    def stream(self, name: str) -> StreamSummary:
        return next(stream for stream in self.streams if stream.name == name)

    def as_dict(self) -> dict:
        """JSON-ready: ``streams`` (per stream its name, task, state and reconnects plus every
        ``RunSummary.as_dict`` key) and the run's totals (``--json`` with several sources)."""
        streams = [{"name": s.name, "task": s.task, "state": s.state, "reconnects": s.reconnects,
                    **s.run.as_dict()} for s in self.streams]
        return {"streams": streams, "frames_out": self.frames_out, "seconds": self.seconds, "fps": self.fps,
                "interrupted": self.interrupted, "error": self.error, "exit_code": self.exit_code}

    def lines(self) -> list[str]:
        """A table, one stream a row, then the totals (errors: ``failed``)."""
        header = f"{'stream':<20} {'task':<10} {'out':>7} {'in':>7} {'dropped':>7} {'reconn':>6} " \
                 f"{'fps':>7} {'p50 ms':>7} {'p95 ms':>7}"
        rows = [header]
        for s in self.streams:
            run = s.run
            fps = run.frames_out / run.seconds if run.seconds > 0 else 0.0
            p50 = "-" if run.latency_ms_p50 is None else f"{run.latency_ms_p50:.0f}"
            p95 = "-" if run.latency_ms_p95 is None else f"{run.latency_ms_p95:.0f}"
            rows.append(f"{s.name[:20]:<20} {s.task[:10]:<10} {run.frames_out:>7} {run.frames_in:>7} "
                        f"{run.dropped:>7} {s.reconnects:>6} {fps:>7.2f} {p50:>7} {p95:>7}")
        rows.append(f"total: {self.frames_out} frames from {len(self.streams)} stream(s) in "
                    f"{self.seconds:.2f} s, {self.fps:.2f} frames/s")
        return rows
