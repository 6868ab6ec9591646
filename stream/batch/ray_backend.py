"""The Ray backend: one Ray task per video on an existing cluster, each declaring the CPUs and
GPUs it takes, retried by Ray when its worker process or node is lost."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..errors import DenseStreamError, describe_error
from .job import Event, Job, run_job
from .manifest import FAILED, Record

POLL_SECONDS = 0.2


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise DenseStreamError("--ray needs the ray package: pip install 'densestream[ray]'") from exc
    return ray


def connect(address: str):
    """The ray module, connected to the cluster at ``address`` ('auto': the one this machine is
    part of) unless this process is already connected."""
    ray = _import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address)
        except Exception as exc:  # noqa: BLE001 - Ray raises several kinds for an unreachable cluster
            raise DenseStreamError(f"cannot join the Ray cluster at {address}: {describe_error(exc)}") from exc
    return ray


def run_ray(jobs: list[Job], address: str, cpus: float, gpus: float, retries: int,
            on_event: Callable[[Event], None], on_result: Callable[[Record], None]) -> None:
    """Run every job as a Ray task with ``cpus``/``gpus`` each (torch gets that many threads
    unless the settings say otherwise); ``retries`` is how often Ray may rerun a task whose
    worker died. Progress comes back through a Ray queue, records as the tasks' results."""
    ray = connect(address)
    from ray.util.queue import Queue

    events = Queue(actor_options={"num_cpus": 0})
    task = ray.remote(_ray_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries,
                                         retry_exceptions=False)
    pending = {}
    for job in jobs:
        threads = job.settings.threads or max(1, int(cpus))
        job = replace(job, settings=replace(job.settings, threads=threads))
        pending[task.remote(job, events)] = job
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_SECONDS)
            _drain(events, on_event)
            for ref in done:
                job = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a task lost for good is one failed video
                    record = job.record(FAILED, error=describe_error(exc))
                on_result(record)
        _drain(events, on_event)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        events.shutdown()


def _drain(events, on_event: Callable[[Event], None]) -> None:
    count = events.qsize()
    if count:
        for event in events.get_nowait_batch(count):
            on_event(event)


def _ray_task(job: Job, events) -> Record:
    """What runs on a Ray worker: the ordinary job, reporting into the driver's queue."""
    return run_job(job, events.put_nowait)
