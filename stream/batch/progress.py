"""Progress across a batch: videos done of the total, aggregate frames/s, an ETA, and what each
worker is on right now."""
from __future__ import annotations

import time
from dataclasses import dataclass

from .job import Event
from .manifest import DONE, FAILED, Record


@dataclass
class WorkerState:
    """The video a worker process is on and how far it got."""

    name: str
    pid: int
    frames: int = 0
    total: int | None = None


class BatchProgress:
    """Fed the workers' events and the finished records; read by whatever shows progress."""

    def __init__(self, total: int, skipped: int) -> None:
        self.total = total
        self.skipped = skipped
        self.started = time.monotonic()
        self.finished: list[Record] = []
        self.workers: dict[str, WorkerState] = {}
        self.starts: dict[str, int] = {}
        self._finished_names: set[str] = set()

    def event(self, event: Event) -> None:
        """Follow a worker; a late event of a video already finished is ignored."""
        if event.name in self._finished_names:
            return
        if event.kind == "start":
            self.workers[event.worker] = WorkerState(event.name, event.pid)
            self.starts[event.name] = self.starts.get(event.name, 0) + 1
        elif (state := self.workers.get(event.worker)) is not None and state.name == event.name:
            state.frames, state.total = event.frames, event.total

    def result(self, record: Record) -> None:
        self.finished.append(record)
        self._finished_names.add(record.name)
        for worker in [w for w, state in self.workers.items() if state.name == record.name]:
            del self.workers[worker]

    @property
    def done(self) -> int:
        return sum(record.status == DONE for record in self.finished)

    @property
    def failed(self) -> list[Record]:
        return [record for record in self.finished if record.status == FAILED]

    @property
    def frames(self) -> int:
        """Frames processed so far: finished videos' plus running ones'."""
        return (sum(record.frames for record in self.finished)
                + sum(state.frames for state in self.workers.values()))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the pace so far, counting part-done videos by their frames."""
        progress = len(self.finished) + sum(state.frames / state.total for state in self.workers.values()
                                            if state.total)
        if progress <= 0:
            return None
        return self.elapsed * max(self.total - progress, 0.0) / progress

    def line(self) -> str:
        """'videos 3/8 (1 failed) | 41.2 frames/s | ETA 12 s | host:123 a/b.mp4 40/120'."""
        failed = len(self.failed)
        text = f"videos {len(self.finished)}/{self.total}" + (f" ({failed} failed)" if failed else "")
        text += f" | {self.fps:.1f} frames/s"
        eta = self.eta()
        if eta is not None:
            text += f" | ETA {eta:.0f} s"
        for worker, state in sorted(self.workers.items()):
            of = f"/{state.total}" if state.total else ""
            text += f" | {worker} {state.name} {state.frames}{of}"
        return text
