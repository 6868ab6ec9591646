"""The local backend: the videos of a batch in this process (one worker) or in a pool of worker
processes on this machine, each with its share of the cores and, with CUDA, its own GPU."""
from __future__ import annotations

import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable

from ..errors import describe_error
from .job import Event, Job, run_job
from .manifest import FAILED, Record

POLL_SECONDS = 0.1
_events: multiprocessing.Queue | None = None


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
            if record.status == "interrupted":
                return
        return
    _run_pool(jobs, workers, retries, on_event, on_result)


def _run_pool(jobs: list[Job], workers: int, retries: int, on_event: Callable[[Event], None],
              on_result: Callable[[Record], None]) -> None:
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    gpus = _gpu_count(jobs[0].settings.device)
    attempts = {job.name: 0 for job in jobs}
    waiting = list(jobs)
    while waiting:
        slots = context.Queue()
        for slot in range(workers):
            slots.put(slot)
        with ProcessPoolExecutor(min(workers, len(waiting)), mp_context=context, initializer=_start_worker,
                                 initargs=(events, slots, gpus)) as pool:
            running: dict[Future, Job] = {}
            for job in waiting:
                attempts[job.name] += 1
                running[pool.submit(_work, job)] = job
            waiting = []
            started: set[str] = set()
            try:
                while running:
                    done, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    _drain(events, on_event, started)
                    for future in done:
                        job = running.pop(future)
                        try:
                            record = future.result()
                        except BrokenProcessPool:
                            if job.name not in started:
                                attempts[job.name] -= 1  # never began: cut short by another video
                            if attempts[job.name] <= retries:
                                waiting.append(job)
                                continue
                            record = job.record(FAILED, error="its worker process died")
                        except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
                            record = job.record(FAILED, error=describe_error(exc))
                        on_result(record)
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                _finish_interrupted(running, on_result)
                raise
        _drain(events, on_event, set())


def _finish_interrupted(running: dict[Future, Job], on_result: Callable[[Record], None]) -> None:
    """After Ctrl-C: the record of every video whose worker got to finish it (interrupted or not)."""
    for future in running:
        if future.done() and not future.cancelled() and future.exception() is None:
            on_result(future.result())


def _drain(events: multiprocessing.Queue, on_event: Callable[[Event], None], started: set[str]) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if event.kind == "start":
            started.add(event.name)
        on_event(event)


def _gpu_count(device: str) -> int:
    """GPUs to spread the workers over: all CUDA devices for 'auto' or 'cuda', none otherwise."""
    if device not in ("auto", "cuda"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _start_worker(events: multiprocessing.Queue, slots: multiprocessing.Queue, gpus: int) -> None:
    """In each new worker process: where to report, and its own GPU when there are several."""
    global _events
    _events = events
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)


def _work(job: Job) -> Record:
    return run_job(job, _events.put)
