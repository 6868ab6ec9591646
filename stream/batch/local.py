"""The local backend: the videos of a batch in this process (one worker) or on worker processes
of this machine, each with its share of the cores and, with CUDA, its own GPU. A worker process
that dies costs only the video it was on, which is tried again."""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import signal
from dataclasses import replace
from typing import Callable

from .job import Event, Job, run_job
from .manifest import FAILED, INTERRUPTED, Record

POLL_SECONDS = 0.1


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None) -> int | None:
    """torch threads for each of ``workers`` processes: ``threads`` when given, else an even
    share of the cores (one process keeps torch's own choice)."""
    if threads is not None or workers == 1:
        return threads
    return max(1, usable_cores() // workers)


def run_local(jobs: list[Job], workers: int, retries: int, on_event: Callable[[Event], None],
              on_result: Callable[[Record], None]) -> None:
    """Run ``jobs`` on ``workers`` processes (1: in this process), calling ``on_event`` with
    the workers' progress and ``on_result`` with each finished record. A video whose worker
    process dies is tried again up to ``retries`` times, then recorded as failed."""
    if not jobs:
        return
    threads = threads_per_worker(workers, jobs[0].settings.threads)
    jobs = [replace(job, settings=replace(job.settings, threads=threads)) for job in jobs]
    if workers == 1:
        for job in jobs:
            record = run_job(job, on_event)
            on_result(record)
            if record.status == INTERRUPTED:
                return
        return
    _Pool(min(workers, len(jobs)), _gpu_count(jobs[0].settings.device), on_event, on_result).run(jobs, retries)


class _Pool:
    """Worker processes, each with its own pipe: one job at a time goes out, its events and
    record come back. Pipes rather than a shared queue, so that a worker killed mid-write
    cannot leave a lock held that every other worker then waits on."""

    def __init__(self, size: int, gpus: int, on_event: Callable[[Event], None],
                 on_result: Callable[[Record], None]) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.gpus = gpus
        self.on_event, self.on_result = on_event, on_result
        self.workers = [self._start(slot) for slot in range(size)]
        self.busy: dict[int, Job] = {}

    def _start(self, slot: int):
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(slot, self.gpus, theirs),
                                       name=f"densestream-batch-{slot}", daemon=True)
        process.start()
        theirs.close()
        return process, ours

    def run(self, jobs: list[Job], retries: int) -> None:
        waiting = collections.deque(jobs)
        attempts = collections.Counter()
        try:
            while waiting or self.busy:
                for slot in range(len(self.workers)):
                    if slot not in self.busy and waiting:
                        job = waiting.popleft()
                        attempts[job.name] += 1
                        self.busy[slot] = job
                        self._send(slot, job)
                for slot in self._collect(POLL_SECONDS):
                    job = self.busy.pop(slot)
                    exitcode = self.workers[slot][0].exitcode
                    self.workers[slot] = self._start(slot)
                    if attempts[job.name] <= retries:
                        waiting.appendleft(job)
                    else:
                        self.on_result(job.record(FAILED, error=f"its worker process died (exit code {exitcode})"))
        except KeyboardInterrupt:
            self._finish_interrupted()
            raise
        finally:
            self._stop()

    def _send(self, slot: int, job: Job) -> None:
        """Hand ``job`` to the worker at ``slot``, replacing the worker if it died while idle."""
        try:
            self.workers[slot][1].send(job)
        except OSError:
            self.workers[slot][0].join()
            self.workers[slot] = self._start(slot)
            self.workers[slot][1].send(job)

    def _collect(self, timeout: float) -> list[int]:
        """Handle what the busy workers sent within ``timeout`` s; the slots whose process died."""
        pipes = {self.workers[slot][1]: slot for slot in self.busy}
        dead = []
        for pipe in multiprocessing.connection.wait(list(pipes), timeout):
            slot = pipes[pipe]
            try:
                while pipe.poll():
                    kind, message = pipe.recv()
                    if kind == "event":
                        self.on_event(message)
                    else:
                        del self.busy[slot]
                        self.on_result(message)
            except (EOFError, OSError):
                self.workers[slot][0].join()
                dead.append(slot)
        return dead

    def _finish_interrupted(self) -> None:
        """After Ctrl-C (which reaches the workers too): the records the workers still send."""
        try:
            while self.busy:
                for slot in self._collect(POLL_SECONDS):
                    del self.busy[slot]
        except KeyboardInterrupt:
            return

    def _stop(self) -> None:
        for process, pipe in self.workers:
            try:
                pipe.send(None)
            except OSError:
                pass
        for process, pipe in self.workers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
            pipe.close()


def _gpu_count(device: str) -> int:
    """GPUs to spread the workers over: all CUDA devices for 'auto' or 'cuda', none otherwise."""
    if device not in ("auto", "cuda"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _serve(slot: int, gpus: int, pipe) -> None:
    """A worker process: its own GPU when there are several, then jobs until told to stop.
    Ctrl-C is left to the run in progress (which stops gracefully), ignored between videos."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    while (job := pipe.recv()) is not None:
        record = run_job(job, lambda event: pipe.send(("event", event)))
        pipe.send(("record", record))
