"""One stream's outputs: its sinks fed from a queue in their own thread, never holding up the device."""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from ..engine import StageResult
from ..stats import RunStats


class OutputFeeder:
    """Feeds ``sinks`` in one thread. Live streams drop the oldest waiting result when
    ``capacity`` wait (counted in ``dropped``); offline streams keep every result, and the
    engine holds their frames back while ``full`` is True. ``on_room`` is called after each
    write (the engine wakes its batch former with it)."""

    def __init__(self, name: str, sinks: list, stats: RunStats, live: bool, capacity: int = 8,
                 on_room: Callable[[], None] = lambda: None,
                 on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
        self.name = name
        self.sinks = list(sinks)
        self.stats = stats
        self.live = live
        self.capacity = max(1, capacity)
        self.dropped = 0
        self.error: BaseException | None = None
        self._on_room = on_room
        self._on_error = on_error
        self._items: collections.deque[StageResult] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sinks {name}", daemon=True)
        self._thread.start()

    @property
    def full(self) -> bool:
        with self._cond:
            return len(self._items) >= self.capacity

    @property
    def stop_requested(self) -> bool:
        """A sink (a window's q) asked the stream to stop."""
        return any(getattr(sink, "stop_requested", False) for sink in self.sinks)

    def put(self, result: StageResult) -> None:
        with self._cond:
            if self._closing or self.error is not None:
                return
            if self.live and len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(result)
            self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._items)

    def _next(self) -> StageResult | None:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closing)
            return self._items.popleft() if self._items else None

    def _run(self) -> None:
        try:
            while (result := self._next()) is not None:
                for sink in self.sinks:
                    started = time.perf_counter()
                    sink.write(result.frame, result.image, result.outputs)
                    self.stats.add_busy(type(sink).__name__, time.perf_counter() - started)
                self._on_room()
        except BaseException as exc:  # noqa: BLE001 - reported to the stream, never lost
            self._fail(exc)
        finally:
            for sink in self.sinks:
                try:
                    sink.close()
                except BaseException as exc:  # noqa: BLE001 - a failed close is an error too
                    self._fail(exc)
            self._on_room()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self.error = self.error or exc
            self._items.clear()
        self._on_error(exc)

    def end(self) -> None:
        """No more results: write what waits, then close every sink (returns at once)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """``end()`` and wait until every sink is closed."""
        self.end()
        self._thread.join(timeout)
