"""``stream.batch``: many videos, each an ordinary run, on local workers or a Ray cluster, with
a manifest that makes the batch resumable."""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from ..errors import DenseStreamError
from .inputs import Input, check_outputs_spare_inputs, find_inputs
from .job import STAGING, Job
from .local import run_local
from .manifest import DONE, FAILED, INTERRUPTED, Manifest, Record
from .progress import BatchProgress
from .ray_backend import run_ray
from .settings import Settings

SETTING_NAMES = frozenset(f.name for f in fields(Settings)) - {"task", "video", "raw"}


@dataclass
class BatchSummary:
    """What a batch did: ``found`` inputs, ``skipped`` already done, ``records`` of this run."""

    found: int
    skipped: int
    records: list[Record]
    seconds: float
    interrupted: bool
    manifest: Path

    @property
    def done(self) -> list[Record]:
        return [record for record in self.records if record.status == DONE]

    @property
    def failed(self) -> list[Record]:
        return [record for record in self.records if record.status == FAILED]

    @property
    def frames(self) -> int:
        return sum(record.frames for record in self.records)

    @property
    def exit_code(self) -> int:
        """1 when a video failed, 130 when the batch was interrupted, else 0."""
        if self.failed:
            return 1
        return 130 if self.interrupted else 0

    def lines(self) -> list[str]:
        """The closing report, failures listed last with their error lines."""
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        out = [f"batch: {len(self.done)} done, {len(self.failed)} failed, {self.skipped} already done, "
               f"of {self.found} videos",
               f"time: {self.seconds:.1f} s, {self.frames} frames, {rate:.1f} frames/s",
               f"manifest: {self.manifest}"]
        if self.failed:
            out.append(f"failed ({len(self.failed)}):")
            out.extend(f"  {record.name}: {record.error}" for record in self.failed)
        return out


def batch(inputs: str | os.PathLike | list, task: str, out_dir: str | os.PathLike, *,
          video: bool = True, raw: bool = False, workers: int = 1, ray: str | None = None,
          cpus_per_video: float = 1.0, gpus_per_video: float = 0.0, retries: int = 2,
          progress: Callable[[BatchProgress], None] | None = None, **options) -> BatchSummary:
    """Process every video that ``inputs`` names (files, folders, globs, list files) into
    ``out_dir``, mirroring the input tree: ``STEM.mp4`` overlays (``video``) and ``STEM/`` raw
    maps (``raw``), exactly as ``stream.run`` writes them. Videos done earlier with the same
    settings are skipped. ``workers`` local processes, or Ray tasks on the cluster at ``ray``
    ('auto' or an address) with ``cpus_per_video``/``gpus_per_video`` each; ``retries`` reruns
    of a video whose worker died; ``progress(board)`` after every event. ``options`` are
    ``stream.run``'s (model, layout, device, precision, batch, max_frames, refine, infer_size,
    hud, hw_codecs, compile, threads); ``hud`` is off unless asked for."""
    unknown = sorted(set(options) - SETTING_NAMES)
    if unknown:
        raise DenseStreamError(f"batch does not take {', '.join(unknown)}")
    settings = Settings(task=task, video=video, raw=raw, **options)
    settings.check()
    _check_resources(workers, ray, cpus_per_video, gpus_per_video, retries)
    out = Path(out_dir).resolve()
    specs = [os.fspath(inputs)] if isinstance(inputs, (str, os.PathLike)) else [os.fspath(i) for i in inputs]
    found = find_inputs(specs, exclude=out)
    check_outputs_spare_inputs(found, out, video, raw)
    manifest = Manifest(out)
    started = time.monotonic()
    records: list[Record] = []
    jobs, skipped = _plan(found, manifest, settings, out, records)
    board = BatchProgress(len(jobs) + len(records), skipped)

    def on_event(event) -> None:
        board.event(event)
        if progress is not None:
            progress(board)

    def on_result(record: Record) -> None:
        manifest.add(record)
        records.append(record)
        board.result(record)
        if progress is not None:
            progress(board)

    for record in records:
        manifest.add(record)
        board.result(record)
    interrupted = False
    try:
        if ray:
            run_ray(jobs, ray, cpus_per_video, gpus_per_video, retries, on_event, on_result)
        else:
            run_local(jobs, workers, retries, on_event, on_result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        _remove_empty_staging(out)
    interrupted = interrupted or any(record.status == INTERRUPTED for record in records)
    return BatchSummary(len(found), skipped, records, time.monotonic() - started, interrupted, manifest.path)


def _check_resources(workers: int, ray: str | None, cpus: float, gpus: float, retries: int) -> None:
    if workers < 1:
        raise DenseStreamError(f"--workers must be at least 1, got {workers}")
    if ray and workers > 1:
        raise DenseStreamError("give --workers or --ray, not both (on Ray the cluster's free CPUs and GPUs decide)")
    if cpus <= 0 or gpus < 0:
        raise DenseStreamError("--cpus-per-video must be above 0 and --gpus-per-video at least 0")
    if retries < 0:
        raise DenseStreamError(f"--retries must be at least 0, got {retries}")


def _plan(found: list[Input], manifest: Manifest, settings: Settings, out: Path,
          unreadable: list[Record]) -> tuple[list[Job], int]:
    """The jobs still to do, how many were skipped as done; inputs that cannot be read at all
    go straight into ``unreadable`` as failed records."""
    fingerprint = settings.fingerprint()
    jobs, skipped = [], 0
    for item in found:
        try:
            stat = item.path.stat()
        except OSError as exc:
            unreadable.append(Record(str(item.path), item.name, 0, 0.0, fingerprint, FAILED,
                                     error=f"cannot read {item.path}: {exc.strerror or exc}"))
            continue
        if manifest.is_done(item.path, stat.st_size, stat.st_mtime, fingerprint):
            skipped += 1
            continue
        jobs.append(Job(str(item.path), item.name, item.stem, str(out), stat.st_size, stat.st_mtime,
                        settings, fingerprint))
    return jobs, skipped


def _remove_empty_staging(out: Path) -> None:
    staging = out / STAGING
    if staging.is_dir() and not any(staging.iterdir()):
        shutil.rmtree(staging, ignore_errors=True)
