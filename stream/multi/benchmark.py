"""``densestream bench --streams N``: N streams in one process (one device stage batching across
them) against N separate ``densestream run`` processes, on the same frames, side by side.

Both sides read N offline synthetic streams of ``frames`` frames each (lossless, so frames/s
is throughput), write to null sinks and use the same task, model and torch threads. The
one-process figure is all frames over the time its device loop ran; the separate-process
figures are the sum of each process's own frames/s (timed by its own run, like the one
process) and, for the full cost, all frames over the wall time from launch to the last exit.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from ..bench.memory import peak_rss_mb, rss_mb
from ..errors import DenseStreamError
from .engine import MultiStream

Log = Callable[[str], None]


def _source(index: int, frames: int, size: tuple[int, int]) -> str:
    return f"synth://pattern?frames={frames}&size={size[0]}x{size[1]}&seed={index}"


def one_process(count: int, frames: int, size: tuple[int, int], *, task: str, model: str | None,
                threads: int | None, device: str, precision: str, batch: int,
                infer_size: str) -> dict:
    """All streams through one ``MultiStream``; the model is loaded before the clock starts."""
    engine = MultiStream(task, model=model, device=device, precision=precision, batch=batch,
                         threads=threads, infer_size=infer_size)
    for index in range(count):
        engine.add(_source(index, frames, size), name=f"s{index}", out="null")
    started = time.perf_counter()
    summary = engine.run()
    seconds = time.perf_counter() - started
    if summary.failed:
        raise DenseStreamError(f"one-process run failed: {summary.failed[0].run.error}")
    per_stream = [s.run.frames_out / s.run.seconds for s in summary.streams]
    return {"frames": summary.frames_out, "seconds": seconds, "fps": summary.frames_out / seconds,
            "per_stream_fps": per_stream, "peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb()}


_TIME_LINE = re.compile(r"time: ([0-9.]+) s, ([0-9.]+) frames/s")
_FRAMES_LINE = re.compile(r"frames: (\d+) written")


def separate_processes(count: int, frames: int, size: tuple[int, int], *, task: str,
                       model: str | None, threads: int | None, device: str, precision: str,
                       infer_size: str) -> dict:
    """``count`` concurrent ``python -m stream run`` processes, one stream each."""
    commands = []
    for index in range(count):
        command = [sys.executable, "-m", "stream", "run", _source(index, frames, size), "--task", task,
                   "--out", "null", "--device", device, "--precision", precision,
                   "--infer-size", infer_size, "--compile", "off"]
        if model:
            command += ["--model", model]
        if threads is not None:
            command += ["--threads", str(threads)]
        commands.append(command)
    started = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for command in commands]
    outputs = [process.communicate()[1] for process in processes]
    wall = time.perf_counter() - started
    fps, written = [], 0
    for process, text in zip(processes, outputs):
        timing, frames_line = _TIME_LINE.search(text), _FRAMES_LINE.search(text)
        if process.returncode != 0 or not timing or not frames_line:
            raise DenseStreamError(f"a separate run failed (exit {process.returncode}): "
                                   f"{text.strip().splitlines()[-1] if text.strip() else 'no output'}")
        fps.append(float(timing[2]))
        written += int(frames_line[1])
    return {"frames": written, "wall_seconds": wall, "fps_sum": sum(fps), "per_process_fps": fps,
            "fps_wall": written / wall}


def compare(count: int, *, frames: int = 60, size: tuple[int, int] = (320, 240), task: str = "seg",
            model: str | None = None, threads: int | None = None, device: str = "auto",
            precision: str = "auto", batch: int | None = None, infer_size: str = "auto",
            log: Log = lambda text: None) -> dict:
    """Both sides on the same settings; the separate processes run first, alone."""
    if count < 1 or frames < 1:
        raise DenseStreamError("--streams and --frames must be at least 1")
    settings = dict(task=task, model=model, threads=threads, device=device, precision=precision,
                    infer_size=infer_size)
    log(f"{count} separate processes, {frames} frames each ...")
    separate = separate_processes(count, frames, size, **settings)
    log(f"one process, {count} streams ...")
    single = one_process(count, frames, size, batch=batch or count, **settings)
    return {"streams": count, "frames_per_stream": frames, "size": list(size), "batch": batch or count,
            "one_process": single, "separate": separate,
            "meta": {"date": datetime.date.today().isoformat(), "machine": platform.machine(),
                     "cpu_count": os.cpu_count(), "torch": torch.__version__, "task": task,
                     "model": model, "threads": threads, "device": device, "precision": precision,
                     "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}}


def format_comparison(result: dict) -> str:
    """A Markdown table of both sides."""
    one, sep = result["one_process"], result["separate"]
    width, height = result["size"]
    lines = [
        f"{result['streams']} streams x {result['frames_per_stream']} frames at {width}x{height}, "
        f"task {result['meta']['task']}, batch {result['batch']} in one process, torch threads "
        f"{result['meta']['threads'] or 'default'}",
        "",
        "| setup | aggregate frames/s | per stream frames/s | notes |",
        "|---|---|---|---|",
        f"| one process, {result['streams']} streams | {one['fps']:.2f} | "
        f"{' / '.join(f'{v:.2f}' for v in one['per_stream_fps'])} | peak RSS {one['peak_rss_mb'] or 0:.0f} MB |",
        f"| {result['streams']} separate processes | {sep['fps_sum']:.2f} | "
        f"{' / '.join(f'{v:.2f}' for v in sep['per_process_fps'])} | sum of each run's own rate |",
        f"| {result['streams']} separate processes, wall clock | {sep['fps_wall']:.2f} | - | "
        f"incl. start-up and model load, {sep['wall_seconds']:.1f} s |",
    ]
    ratio = one["fps"] / sep["fps_sum"] if sep["fps_sum"] else float("nan")
    lines.append("")
    lines.append(f"one process / separate processes: {ratio:.2f}x")
    return "\n".join(lines)
