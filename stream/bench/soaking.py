"""``soak``: host memory watched over a long synthetic run."""
from __future__ import annotations

import time

from ..api import build_pipeline
from ..errors import DenseStreamError
from ..pipeline import ProgressCallback
from ..tasks import Task, build_task

from .memory import rss_mb


def soak(task: str | Task = "seg", frames: int = 10_000, *, model: str | None = None,
         resolution: tuple[int, int] = (160, 120), checkpoint: int = 1000, every: int = 1000,
         device: str = "auto", precision: str = "auto", batch: int = 1,
         progress: ProgressCallback | None = None) -> dict:
    """Run ``frames`` synthetic frames through the pipeline into a null sink and record the
    host RSS at frame ``checkpoint`` and at the end (growth target: under 5 %); ``progress``
    is called after every frame as in ``build_pipeline``."""
    if not 1 <= checkpoint < frames:
        raise DenseStreamError(f"the soak checkpoint ({checkpoint}) must lie within the {frames} frames")
    task_obj = task if isinstance(task, Task) else build_task(task, model, infer_size="native")
    width, height = resolution
    samples: dict[int, float | None] = {}

    def sample(done: int, total: int | None, fps: float) -> None:
        if done == checkpoint or done % max(1, every) == 0:
            samples[done] = rss_mb()
        if progress is not None:
            progress(done, total, fps)

    spec = f"synth://pattern?frames={frames}&size={width}x{height}"
    started = time.perf_counter()
    pipeline = build_pipeline(spec, task_obj, out="null", device=device, precision=precision,
                              batch=batch, progress=sample)
    summary = pipeline.run()
    seconds = time.perf_counter() - started
    if summary.error:
        raise DenseStreamError(f"soak run failed: {summary.error}")
    at_end = rss_mb()
    at_checkpoint = samples.get(checkpoint)
    growth = (at_end - at_checkpoint) / at_checkpoint if at_end and at_checkpoint else None
    return {"task": task_obj.name, "frames": summary.frames_out, "resolution": [width, height],
            "seconds": seconds, "fps": summary.frames_out / seconds if seconds > 0 else 0.0,
            "checkpoint": checkpoint, "rss_mb_at_checkpoint": at_checkpoint,
            "rss_mb_at_end": at_end, "rss_growth": growth,
            "rss_mb_samples": {str(k): v for k, v in sorted(samples.items())}}
