"""One timed row each: decoding alone, the model alone on device tensors, the real pipeline."""
from __future__ import annotations

import contextlib
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from ..api import build_pipeline
from ..cpu_share import follow_load
from ..hwcodecs import pick_decoder_accel
from ..errors import DenseStreamError
from ..sources import open_source
from ..tasks import Task

WARMUP_BATCHES = 2


def autocast(device: torch.device, dtype: torch.dtype):
    """The same autocast the device stage uses (none for fp32)."""
    if dtype is torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_decode(clip: Path, frames: int, device: torch.device = torch.device("cpu")) -> tuple[int, float]:
    """(frames, seconds) to iterate the clip through ``open_source``, pixels included, decoded
    as the pipeline rows decode it (NVDEC on CUDA runs where it works)."""
    accel = pick_decoder_accel("auto", device)
    started = time.perf_counter()
    count = 0
    with open_source(str(clip), live=False, hwaccel=accel) as src:
        for _frame in itertools.islice(src, frames):
            count += 1
    return count, time.perf_counter() - started


def device_batches(images: list[np.ndarray], frames: int, batch: int,
                    device: torch.device) -> list[torch.Tensor]:
    """``frames`` frames (cycling through ``images``) as N x 3 x H x W uint8 device tensors."""
    order = [images[i % len(images)] for i in range(frames)]
    return [torch.from_numpy(np.stack(order[i:i + batch])).to(device).permute(0, 3, 1, 2)
            for i in range(0, frames, batch)]


def warm_up(task: Task, images: list[np.ndarray], device: torch.device, dtype: torch.dtype,
            batch: int) -> None:
    """A few untimed forwards so that allocator, kernels and caches are ready."""
    for tensor in device_batches(images, WARMUP_BATCHES * batch, batch, device):
        with torch.inference_mode(), autocast(device, dtype):
            task(tensor)
    _sync(device)


def time_model(task: Task, images: list[np.ndarray], frames: int, device: torch.device,
               dtype: torch.dtype, batch: int) -> tuple[int, float]:
    """(frames, seconds) of the task's forward alone, inputs already on the device."""
    batches = device_batches(images, frames, batch, device)
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode(), autocast(device, dtype):
        for tensor in batches:
            follow_load()
            task(tensor)
    _sync(device)
    return frames, time.perf_counter() - started


def run_pipeline(clip: Path, task: Task, out: str, frames: int, device: torch.device,
                 precision: str, batch: int, live: bool = False):
    """Run the real pipeline over the clip; returns (summary, wall seconds incl. finalising).
    Each repeat replaces the previous repeat's output file in the benchmark's own folder."""
    started = time.perf_counter()
    pipeline = build_pipeline(str(clip), task, out=out, device=device, precision=precision,
                              batch=batch, max_frames=frames, live=live, compile="off", overwrite=True)
    summary = pipeline.run()
    seconds = time.perf_counter() - started
    if summary.error:
        raise DenseStreamError(f"pipeline run into {out} failed: {summary.error}")
    return summary, seconds
