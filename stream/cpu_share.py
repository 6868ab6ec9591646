"""Share the CPU fairly with other jobs: torch's OpenMP threads spin only briefly before they
sleep while they wait, and torch uses only the cores that are free when the first run is set up.

Two steps. ``prepare_environment`` sets ``GOMP_SPINCOUNT=10000`` before torch is first imported
(torch's OpenMP, libgomp, reads it once, when torch loads it). By default a waiting thread spins
for about 300,000 rounds: when another process holds the core that the thread it waits for
needs, it burns its time slices spinning, and a run next to two busy processes fell from 34 to
3.5-7 frames/s (bf16 seg at 320x240, 2 threads, this 2-core CPU). Sleeping at once
(``OMP_WAIT_POLICY=PASSIVE``) halves the idle speed instead (16-19 frames/s: every small op
pays a wake-up); 10,000 rounds keep 34 idle and give 9.6-10.3 next to the busy processes
(1,000: 32 and 9.0). ``choose_threads`` then lowers
torch's thread count to the cores not already busy (affinity minus the cores other processes
kept busy over 0.1 s, at least 1: the load average would still count, for a minute, a run that
just ended). Load that comes or goes later is followed: where the threads were chosen here,
``follow_load`` (called by each thread that runs torch work: the device loop, a rendering
source) measures again at most every ``FOLLOW_SECONDS`` what other processes used since the last
look and sets the calling thread's count to match (torch's count is per thread once it has
run). Next to two busy processes in sessions of their own one thread ran the seg pipeline 1.6x
faster than two (10.1 against 6.3 frames/s, autogroup shares the CPU by session, so two threads
spend their third of it waiting on each other). All of this leaves alone what the user chose:
an ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` or ``OMP_NUM_THREADS`` already in the environment, a
thread count already changed with ``torch.set_num_threads`` or given as ``--threads``, and
``DENSESTREAM_CPU_SHARE=off`` turns it all off.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import MutableMapping

OFF_SWITCH = "DENSESTREAM_CPU_SHARE"
FOLLOW_SECONDS = 2.0
"""How often ``follow_load`` measures the other processes' load again."""

_chosen = False


def enabled(environ: MutableMapping[str, str] = os.environ) -> bool:
    """False when ``DENSESTREAM_CPU_SHARE`` is 'off' (or '0')."""
    return environ.get(OFF_SWITCH, "").strip().lower() not in ("off", "0")


SPIN_COUNT = "10000"
"""Rounds a waiting OpenMP thread spins before it sleeps (libgomp's default is 300,000)."""


def prepare_environment(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Ask OpenMP for short spinning, unless torch is already imported or the user chose a
    wait policy or spin count; True when the variable was set here."""
    if not enabled(environ) or "torch" in sys.modules:
        return False
    if environ.get("OMP_WAIT_POLICY") or environ.get("GOMP_SPINCOUNT"):
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def free_cores(cores: int, load: float) -> int:
    """Cores left for us out of ``cores`` when other jobs keep ``load`` cores busy (at least 1)."""
    return max(1, min(cores, cores - int(round(load))))


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot from /proc/stat; None where it is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle and waiting for I/O
    return sum(fields) - idle, sum(fields)


_Mark = tuple[tuple[int, int] | None, os.times_result]


def _mark() -> _Mark:
    return _cpu_times(), os.times()


def _others_between(first: _Mark, second: _Mark) -> float | None:
    """Cores other processes kept busy between two marks (this process's CPU time left out);
    None where /proc/stat is missing or no time passed."""
    (before, mine), (after, mine_after) = first, second
    if before is None or after is None or after[1] <= before[1]:
        return None
    cpus = os.cpu_count() or 1
    ticks = (after[1] - before[1]) / cpus  # clock ticks per CPU between the marks
    own = (mine_after.user + mine_after.system - mine.user - mine.system) * os.sysconf("SC_CLK_TCK")
    return max(0.0, (after[0] - before[0] - own) / ticks)


def busy_cores(window: float = 0.1) -> float:
    """How many cores other processes kept busy over the next ``window`` seconds (this
    process's own CPU time left out); the 1-minute load average where /proc/stat is missing."""
    first = _mark()
    time.sleep(window)
    busy = _others_between(first, _mark())
    return os.getloadavg()[0] if busy is None else busy


class LoadFollower:
    """The thread count for the cores other processes leave free, measured again from what they
    used since the last look, at most every ``interval`` seconds."""

    def __init__(self, cores: int, count: int, interval: float = FOLLOW_SECONDS) -> None:
        self.cores, self.count, self.interval = cores, count, interval
        self._lock = threading.Lock()
        self._last = _mark()
        self._at = time.monotonic()

    def threads(self) -> int:
        """The count to use now (cheap between measurements)."""
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.interval:
                mark = _mark()
                busy = _others_between(self._last, mark)
                self._last, self._at = mark, now
                if busy is not None:
                    self.count = free_cores(self.cores, busy)
            return self.count


_follower: LoadFollower | None = None


def follow_load() -> None:
    """Set the calling thread's torch threads to the cores other processes leave free (see
    ``LoadFollower``), where ``choose_threads`` took charge of them; otherwise do nothing."""
    follower = _follower
    if follower is None:
        return
    count = follower.threads()
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def stop_following() -> None:
    """The user chose a thread count: keep it for the rest of the process."""
    global _follower
    _follower = None


def choose_threads() -> int | None:
    """Once per process: set torch's CPU threads to the free cores when torch still has its own
    default, and follow the load from then on (``follow_load``); returns the count set, or None
    when it left torch as it was."""
    global _chosen, _follower
    if _chosen:
        return None
    _chosen = True
    if not enabled() or os.environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    cores = usable_cores()
    if torch.get_num_threads() != cores:  # someone already chose a count
        return None
    try:
        busy = busy_cores()
    except OSError:
        return None
    count = free_cores(cores, busy)
    if count != cores:
        torch.set_num_threads(count)
    _follower = LoadFollower(cores, count)
    return count
