"""Hand-over points between pipeline threads: lossless FIFO for files, newest-only for live input."""
from __future__ import annotations

import collections
import threading

END = object()
"""Marker a buffer returns once its producer has finished and everything was taken."""


class FrameBuffer:
    """Bounded hand-over between one producer and one consumer thread.

    ``lossless=True`` (offline input): ``put`` blocks while ``capacity`` items wait, so a slow
    consumer slows the producer and nothing is lost. ``lossless=False`` (live input): ``put``
    never blocks; when the buffer is full the oldest waiting item is dropped and counted, so the
    consumer always gets the newest frame and latency stays bounded.
    """

    def __init__(self, capacity: int, lossless: bool) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.lossless = lossless
        self.dropped = 0
        self._items: collections.deque = collections.deque()
        self._closed = False
        self._cancelled = False
        self._cond = threading.Condition()

    def put(self, item) -> bool:
        """Add an item; returns False (item discarded) once the buffer was cancelled."""
        with self._cond:
            while self.lossless and len(self._items) >= self.capacity and not self._cancelled:
                self._cond.wait()
            if self._cancelled:
                return False
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, block: bool = True, timeout: float | None = None):
        """Next item, ``END`` when the producer closed and all was taken, None if none ready."""
        with self._cond:
            if block:
                self._cond.wait_for(lambda: self._items or self._closed or self._cancelled, timeout)
            if self._items and not self._cancelled:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._closed or self._cancelled:
                return END
            return None

    def close(self) -> None:
        """Producer side: no more items will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Either side: stop now, discard what waits, wake everyone."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._cond.notify_all()
