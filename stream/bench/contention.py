"""``contend``: the same rows measured on an idle machine and next to N CPU-bound processes.

Rows: ``model`` (the task's forward on device tensors), ``pipeline`` (the real pipeline into a
null sink) and ``drive`` (frames rendered by the ``synth://drive`` source). Every repeat
measures all rows idle, then starts N busy loops (pure Python, one process each), measures
them again and ends the loops, so that slow changes of the machine's load hit both phases.
By default each loop runs in a session of its own, as a job started from another terminal or a
service would (``sessions="own"``); ``sessions="shared"`` keeps them in the bench's session, as
``job1 & job2`` in one shell would. Where the kernel shares the CPU between sessions first
(autogroup), the two differ: a run next to N loops in their own sessions gets 1/(N+1) of the
CPU, and in one session its threads' share of all runnable threads; ``fair_share`` gives that
share of the CPU time it had when idle with the result (its speed can keep more than that share
when fewer threads, each busier, waste less time waiting on each other). The loops are always ended: on return, on
errors, on Ctrl-C and on SIGTERM; a loop whose parent died ends by itself.
"""
from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..cpu_share import enabled, usable_cores
from ..engine import PRECISIONS, select_device, select_precision
from ..errors import DenseStreamError
from ..sources import open_source
from ..tasks import Task, build_task

from .inputs import BenchInput, prepare_input
from .timing import run_pipeline, time_model, warm_up

ROWS = ("model", "pipeline", "drive")
PHASES = ("idle", "contended")
SESSIONS = ("own", "shared")
AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")
SETTLE_SECONDS = 0.3
Log = Callable[[str], None]

# Spins in pure Python; every few tens of milliseconds it checks that its parent still lives.
BUSY_LOOP = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(1_000_000):\n"
    "        pass\n"
)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def busy_loops(count: int, own_sessions: bool = True) -> Iterator[list[int]]:
    """Run ``count`` CPU-bound processes for the body of the ``with``, each in a session of its
    own or in this process's; yields their pids."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-S", "-c", BUSY_LOOP],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=own_sessions))
        time.sleep(SETTLE_SECONDS)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def time_drive(width: int, height: int, frames: int) -> tuple[int, float]:
    """(frames, seconds) to render ``frames`` frames of ``synth://drive`` after a first one."""
    with open_source(f"synth://drive?size={width}x{height}", live=False) as src:
        reading = iter(src)
        next(reading)
        started = time.perf_counter()
        count = sum(1 for _frame in itertools.islice(reading, frames))
        return count, time.perf_counter() - started


def autogroup_enabled() -> bool:
    """Whether the kernel shares the CPU between sessions before threads (Linux autogroup)."""
    try:
        return AUTOGROUP.read_text().strip() == "1"
    except OSError:
        return False


def fair_share(threads: int, cores: int, competitors: int, own_sessions: bool, autogroup: bool) -> float:
    """The share of the CPU time it had when idle that a run of ``threads`` threads gets on
    ``cores`` cores next to ``competitors`` single-threaded busy loops when the kernel shares
    time fairly."""
    idle_cpus = min(threads, cores)
    if own_sessions and autogroup:
        cpus = min(idle_cpus, cores / (competitors + 1))
    else:
        cpus = min(idle_cpus, cores * threads / (threads + competitors))
    return cpus / idle_cpus


def _measure_row(name: str, data: BenchInput, task: Task, device: torch.device, dtype: torch.dtype,
                 precision: str) -> float:
    """One repeat of one row in frames per second."""
    if name == "model":
        frames, seconds = time_model(task, data.images, data.count, device, dtype, 1)
    elif name == "pipeline":
        summary, seconds = run_pipeline(data.clip, task, "null", data.count, device, precision, 1)
        frames = summary.frames_out
    else:
        frames, seconds = time_drive(data.width, data.height, data.count)
    return frames / seconds if seconds > 0 else 0.0


def _summarise(row: dict) -> dict:
    for phase in PHASES:
        row[f"{phase}_median"] = statistics.median(row[phase])
    idle = row["idle_median"]
    row["ratio"] = row["contended_median"] / idle if idle > 0 else None
    return row


def contend(competitors: int | None = None, source: str = "synth://pattern", task: str | Task = "seg", *,
            model: str | None = None, resolution: tuple[int, int] | None = (320, 240),
            frames: int = 30, repeat: int = 3, device: str = "auto", precision: str = "auto",
            sessions: str = "own", log: Log | None = None) -> dict:
    """Measure every row idle and with ``competitors`` busy loops (default one per core, each in
    a session of its own or, with ``sessions="shared"``, in this one), ``repeat`` times
    interleaved; medians and the contended/idle ratio per row, and the fair share."""
    count = usable_cores() if competitors is None else competitors
    if sessions not in SESSIONS:
        raise DenseStreamError(f"--contend-sessions must be one of {', '.join(SESSIONS)}, got {sessions!r}")
    if count < 1:
        raise DenseStreamError("--contend needs at least 1 competing process")
    if repeat < 1:
        raise DenseStreamError("--repeat must be at least 1")
    say = log or (lambda _text: None)
    torch_device = select_device(device)
    dtype = select_precision(torch_device, precision)
    task_obj = task if isinstance(task, Task) else build_task(task, model, infer_size="native")
    task_obj.prepare(torch_device)
    load_before = os.getloadavg()[0]
    threads = torch.get_num_threads()  # idle count; following the load may lower it later
    autogroup = autogroup_enabled()
    rows: dict[str, dict] = {name: {phase: [] for phase in PHASES} for name in ROWS}
    pids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="densestream-contend-") as workdir:
        work = Path(workdir)
        say(f"decoding {frames} frames of {source} once")
        data = prepare_input(source, frames, resolution, work)
        warm_up(task_obj, data.images, torch_device, dtype, 1)
        for round_index in range(repeat):
            for phase in PHASES:
                say(f"repeat {round_index + 1}/{repeat}: {phase}")
                with busy_loops(count, sessions == "own") if phase == "contended" else contextlib.nullcontext([]) as started:
                    pids += started
                    for name in ROWS:
                        rows[name][phase].append(
                            _measure_row(name, data, task_obj, torch_device, dtype, precision))
    return {
        "meta": {
            "device": str(torch_device), "torch": torch.__version__,
            "torch_threads": threads, "cores": usable_cores(),
            "competitors": count, "competitor_pids": pids, "load_average_before": load_before,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"), "cpu_share": enabled(),
            "sessions": sessions, "autogroup": autogroup,
            "fair_share": fair_share(threads, usable_cores(), count, sessions == "own", autogroup),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "precision": next(name for name, value in PRECISIONS.items() if value is dtype),
            "task": task_obj.name, "source": str(source), "resolution": [data.width, data.height],
            "frames": data.count, "repeat": repeat,
        },
        "rows": {name: _summarise(row) for name, row in rows.items()},
    }


ROW_TITLES = {"model": "model only (device tensors)", "pipeline": "pipeline -> null sink",
              "drive": "synth://drive source"}


def format_contention(result: dict) -> str:
    """The contention result as a Markdown table of medians and ratios."""
    meta = result["meta"]
    lines = [
        f"{meta['competitors']} competing busy loop(s) on {meta['cores']} core(s), load average "
        f"{meta['load_average_before']:.2f} before, torch {meta['torch']} ({meta['torch_threads']} "
        f"threads), OMP_WAIT_POLICY={meta['omp_wait_policy'] or 'unset'}, "
        f"GOMP_SPINCOUNT={meta['gomp_spincount'] or 'unset'}, date {meta['date']}",
        f"loops in {'sessions of their own' if meta['sessions'] == 'own' else 'the bench session'}, "
        f"autogroup {'on' if meta['autogroup'] else 'off'}: a fair share is {meta['fair_share']:.2f} of the idle CPU time",
        f"task {meta['task']} on {meta['source']}, {meta['resolution'][0]}x{meta['resolution'][1]}, "
        f"{meta['frames']} frames x {meta['repeat']} repeats, device {meta['device']}, {meta['precision']}",
        "",
        "| row | idle frames/s | contended frames/s | contended / idle |",
        "|---|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {ROW_TITLES[name]} | {row['idle_median']:.2f} | {row['contended_median']:.2f} "
                     f"| {ratio} |")
    return "\n".join(lines)
