"""Share the CPU fairly with other jobs: torch's OpenMP threads sleep instead of spinning while
they wait, and torch uses only the cores that are free when the first run is set up.

Two steps. ``prepare_environment`` sets ``OMP_WAIT_POLICY=PASSIVE`` before torch is first
imported (OpenMP reads it once, when torch loads it): with the default policy a waiting thread
spins for a while, and when another process holds the core the thread it waits for cannot run,
so a busy machine slows a run tenfold and more. ``choose_threads`` then lowers torch's thread
count to the cores not already busy (affinity minus the 1-minute load average, at least 1).
Both leave alone what the user chose: an ``OMP_WAIT_POLICY`` or ``OMP_NUM_THREADS`` already in
the environment, a thread count already changed with ``torch.set_num_threads``, and
``DENSESTREAM_CPU_SHARE=off`` turns both off.
"""
from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

OFF_SWITCH = "DENSESTREAM_CPU_SHARE"

_chosen = False


def enabled(environ: MutableMapping[str, str] = os.environ) -> bool:
    """False when ``DENSESTREAM_CPU_SHARE`` is 'off' (or '0')."""
    return environ.get(OFF_SWITCH, "").strip().lower() not in ("off", "0")


def prepare_environment(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Ask OpenMP for passive waiting, unless torch is already imported or the user set a
    policy; True when the variable was set here."""
    if not enabled(environ) or "torch" in sys.modules or environ.get("OMP_WAIT_POLICY"):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def free_cores(cores: int, load: float) -> int:
    """Cores left for us out of ``cores`` when ``load`` runnable jobs (on average) hold the rest."""
    return max(1, min(cores, cores - int(round(load))))


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
        load = os.getloadavg()[0]
    except OSError:
        return None
    count = free_cores(cores, load)
    if count != cores:
        torch.set_num_threads(count)
    return count
