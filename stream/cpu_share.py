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
just ended). Both leave alone what the user chose: an ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``
or ``OMP_NUM_THREADS`` already in the environment, a thread count already changed with
``torch.set_num_threads``, and ``DENSESTREAM_CPU_SHARE=off`` turns both off.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import MutableMapping

OFF_SWITCH = "DENSESTREAM_CPU_SHARE"

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


def busy_cores(window: float = 0.1) -> float:
    """How many cores other processes kept busy over the next ``window`` seconds (this
    process's own CPU time left out); the 1-minute load average where /proc/stat is missing."""
    first, mine = _cpu_times(), os.times()
    if first is None:
        return os.getloadavg()[0]
    time.sleep(window)
    second, mine_after = _cpu_times(), os.times()
    if second is None or second[1] <= first[1]:
        return os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    ticks = (second[1] - first[1]) / cpus  # clock ticks per CPU over the window
    own = (mine_after.user + mine_after.system - mine.user - mine.system) * os.sysconf("SC_CLK_TCK")
    return max(0.0, (second[0] - first[0] - own) / ticks)


def choose_threads() -> int | None:
    """Once per process: set torch's CPU threads to the free cores when torch still has its own
    default; returns the count set, or None when it left torch as it was."""
    global _chosen
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
    return count
