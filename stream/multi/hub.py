"""Where many streams' frames wait for the one device stage, and how batches are formed.

Each stream has its own lane: live lanes keep only the newest ``capacity`` frames (older ones
are dropped and counted), offline lanes make their producer wait (lossless). The device thread
asks for a batch: the frames that share the oldest waiting frame's group (same task and size),
oldest first, up to ``size``; a batch that is not full closes once its oldest frame has waited
``timeout`` seconds (at once when every live lane of the group is in it), so a slow or stalled
stream never holds the others back.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from ..frames import Frame


@dataclass
class Lane:
    """One stream's waiting frames; ``group`` says which frames may share a batch with its own."""

    name: str
    group: Hashable
    live: bool
    capacity: int
    frames: collections.deque = field(default_factory=collections.deque)
    blocked: Callable[[], bool] = lambda: False
    closed: bool = False
    ending: bool = False
    since: float = 0.0  # when the lane's oldest waiting frame (or the one it replaced) arrived


@dataclass
class Batch:
    """Frames of one group, each with the name of the lane it came from."""

    group: Hashable
    names: list[str]
    frames: list[Frame]


class Hub:
    """Lanes of ready frames from many producer threads, drained by one consumer thread."""

    def __init__(self) -> None:
        self._lanes: dict[str, Lane] = {}
        self._drops: dict[str, int] = {}
        self._cond = threading.Condition()
        self._stopped = False

    def open_lane(self, name: str, group: Hashable, live: bool, capacity: int,
                  blocked: Callable[[], bool] | None = None) -> None:
        """Start a lane for ``name``; ``blocked()`` True holds its frames back (its outputs are full)."""
        with self._cond:
            self._lanes[name] = Lane(name, group, live, max(1, capacity), blocked=blocked or (lambda: False))
            self._drops[name] = 0
            self._cond.notify_all()

    def end_lane(self, name: str) -> None:
        """No more frames for ``name``: the lane goes once what waits in it was taken."""
        with self._cond:
            lane = self._lanes.get(name)
            if lane is not None:
                lane.ending = True
                if not lane.frames:
                    del self._lanes[name]
            self._cond.notify_all()

    def has_lane(self, name: str) -> bool:
        with self._cond:
            return name in self._lanes

    def close_lane(self, name: str) -> None:
        """Discard a lane and what waits in it; a blocked producer returns False."""
        with self._cond:
            lane = self._lanes.pop(name, None)
            if lane is not None:
                lane.closed = True
                lane.frames.clear()
            self._cond.notify_all()

    def put(self, name: str, frame: Frame) -> bool:
        """Hand over a frame; False once the lane (or the hub) is closed."""
        with self._cond:
            lane = self._lanes.get(name)
            while lane is not None and not lane.live and len(lane.frames) >= lane.capacity \
                    and not lane.closed and not self._stopped:
                self._cond.wait()
            if lane is None or lane.closed or lane.ending or self._stopped:
                return False
            if not lane.frames:
                lane.since = min(frame.captured, time.monotonic())
            elif len(lane.frames) >= lane.capacity:
                lane.frames.popleft()
                self._drops[name] = self._drops.get(name, 0) + 1
            lane.frames.append(frame)
            self._cond.notify_all()
            return True

    def dropped(self, name: str) -> int:
        """Frames of ``name`` replaced by newer ones before the device took them (kept after the lane)."""
        with self._cond:
            return self._drops.get(name, 0)

    def depths(self) -> dict[str, int]:
        """How many frames wait in each lane."""
        with self._cond:
            return {name: len(lane.frames) for name, lane in self._lanes.items()}

    def stop(self) -> None:
        """Wake everyone for good: producers get False, ``take`` returns None."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def wake(self) -> None:
        """Make a waiting ``take`` look again (a lane ended, a stream was removed)."""
        with self._cond:
            self._cond.notify_all()

    def _oldest(self) -> Lane | None:
        waiting = [lane for lane in self._lanes.values() if lane.frames and not lane.blocked()]
        return min(waiting, key=lambda lane: lane.since, default=None)

    def _gather(self, group: Hashable, size: int) -> list[Lane]:
        """The lanes to take the group's ``size`` oldest frames from, one entry per frame."""
        waiting = [(frame.captured, i, lane) for lane in self._lanes.values() if lane.group == group
                   and not lane.blocked() for i, frame in enumerate(lane.frames)]
        waiting.sort(key=lambda item: (item[0], item[1]))
        return [lane for _, _, lane in waiting[:size]]

    def take(self, size: int, timeout: float, idle: float | None = None) -> Batch | None:
        """The next batch (each lane's frames in order), an empty one after ``idle`` seconds
        with nothing ready, or None once stopped."""
        deadline_idle = None if idle is None else time.monotonic() + idle
        with self._cond:
            while True:
                if self._stopped:
                    return None
                first = self._oldest()
                if first is not None:
                    lanes = self._gather(first.group, size)
                    close_at = first.since + timeout
                    if len(lanes) >= size or self._nothing_more(first.group) or time.monotonic() >= close_at:
                        return self._pop(first.group, lanes)
                    self._cond.wait(max(0.0, close_at - time.monotonic()))
                    continue
                if deadline_idle is not None and time.monotonic() >= deadline_idle:
                    return Batch(None, [], [])
                self._cond.wait(None if deadline_idle is None else deadline_idle - time.monotonic())

    def _nothing_more(self, group: Hashable) -> bool:
        """Every live lane of the group already has its frame waiting: waiting longer cannot
        fill the batch further (stalled lanes, with none, still get ``timeout``)."""
        lanes = [lane for lane in self._lanes.values() if lane.group == group and not lane.ending]
        return all(lane.live and lane.frames for lane in lanes)

    def _pop(self, group: Hashable, lanes: list[Lane]) -> Batch:
        frames = [lane.frames.popleft() for lane in lanes]
        for lane in lanes:
            if lane.frames:
                lane.since = lane.frames[0].captured
            if lane.ending and not lane.frames:
                self._lanes.pop(lane.name, None)
        self._cond.notify_all()
        return Batch(group, [lane.name for lane in lanes], frames)
