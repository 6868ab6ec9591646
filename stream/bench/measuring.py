"""``measure``: every row side by side on the same frames and model, with medians, ratios and a
precision check."""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..compiling import compile_task
from ..engine import PRECISIONS, select_device, select_precision
from ..errors import DenseStreamError
from ..tasks import Task, build_task

from .accuracy import argmax_disagreement
from .baselines import NaiveForward, supervision_missing, time_naive, time_supervision
from .inputs import BenchInput, prepare_input
from .memory import recording_peaks
from .timing import run_pipeline, time_decode, time_model, warm_up

ROWS = ("decode", "model", "pipeline_null", "pipeline_mp4", "naive", "live", "supervision")
Log = Callable[[str], None]


def _summarise(row: dict) -> dict:
    """Add per-repeat fps and the medians to a row of raw (frames, seconds) lists."""
    row["fps"] = [n / s if s > 0 else 0.0 for n, s in zip(row["frames"], row["seconds"])]
    row["fps_median"] = statistics.median(row["fps"])
    row["ms_per_frame_median"] = 1000.0 / row["fps_median"] if row["fps_median"] > 0 else None
    for key in ("latency_ms_p50", "latency_ms_p95", "drop_rate", "device_stage_share"):
        if key in row:
            values = [v for v in row[key] if v is not None]
            row[key + "_median"] = statistics.median(values) if values else None
    return row


def _record(row: dict, frames: int, seconds: float, peaks: dict) -> None:
    row.setdefault("frames", []).append(frames)
    row.setdefault("seconds", []).append(seconds)
    for key in ("peak_rss_mb", "peak_device_mb"):
        if peaks.get(key) is not None:
            row[key] = max(row.get(key) or 0.0, peaks[key])
        else:
            row.setdefault(key, None)


def compute_ratios(rows: dict) -> dict:
    """Ratios of median frame rates: pipeline over model-only and pipeline over the naive loop."""
    def ratio(top: str, bottom: str) -> float | None:
        a, b = rows.get(top, {}), rows.get(bottom, {})
        if a.get("fps_median") and b.get("fps_median"):
            return a["fps_median"] / b["fps_median"]
        return None

    return {"pipeline_null_over_model": ratio("pipeline_null", "model"),
            "pipeline_mp4_over_naive": ratio("pipeline_mp4", "naive"),
            "pipeline_null_over_naive": ratio("pipeline_null", "naive")}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as info:
            for line in info:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'}, {os.cpu_count()} cores"


def _precision_name(dtype: torch.dtype) -> str:
    return next(name for name, value in PRECISIONS.items() if value is dtype)


def measure(source: str = "synth://pattern", task: str | Task = "seg", *,
            model: str | None = None, resolution: tuple[int, int] | None = None,
            frames: int = 30, repeat: int = 3, device: str = "auto", precision: str = "auto",
            batch: int = 1, rows: Iterable[str] = ROWS, compile: bool = False, log: Log | None = None) -> dict:
    """Measure every row in ``rows`` ``repeat`` times, round robin, on the same frames and model;
    ``compile`` runs the model and pipeline rows through torch.compile (compiled in the warm-up;
    the naive loop stays eager, as a user would write it)."""
    if repeat < 1:
        raise DenseStreamError("--repeat must be at least 1")
    if batch < 1:
        raise DenseStreamError("--batch must be at least 1")
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise DenseStreamError(f"unknown bench rows {', '.join(sorted(unknown))} (known: {', '.join(ROWS)})")
    say = log or (lambda _text: None)
    torch_device = select_device(device)
    dtype = select_precision(torch_device, precision)
    # the networks run at the bench resolution itself, so rows compare across resolutions and runs
    task_obj = task if isinstance(task, Task) else build_task(task, model, infer_size="native")
    if not {"labels", "depth"} & set(task_obj.outputs):
        raise DenseStreamError("bench needs a task with labels or depth (seg, depth, seg+depth), "
                               f"not '{task_obj.name}'")
    wanted = [name for name in ROWS if name in set(rows)]
    forward = NaiveForward(task_obj, torch_device) if {"naive", "supervision"} & set(wanted) else None
    compiled = compile and compile_task(task_obj, torch_device) > 0
    task_obj.prepare(torch_device)
    with tempfile.TemporaryDirectory(prefix="densestream-bench-") as workdir:
        work = Path(workdir)
        say(f"decoding {frames} frames of {source} once")
        data = prepare_input(source, frames, resolution, work)
        warm_up(task_obj, data.images, torch_device, dtype, batch)
        results: dict[str, dict] = {name: {} for name in wanted}
        if "supervision" in results and (reason := supervision_missing() or _supervision_unfit(task_obj)):
            results["supervision"] = {"skipped": reason}
            wanted.remove("supervision")
        for round_index in range(repeat):
            for name in wanted:
                say(f"repeat {round_index + 1}/{repeat}: {name}")
                _measure_row(name, results[name], data, task_obj, torch_device, dtype, precision,
                             batch, work, forward)
        for name in wanted:
            _summarise(results[name])
        check = _precision_check(task_obj, data, torch_device, dtype, batch, say)
    return {
        "meta": {
            "device": str(torch_device), "device_name": _device_name(torch_device),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "precision": _precision_name(dtype), "task": task_obj.name,
            "model": getattr(getattr(task_obj, "spec", None), "name", None) or type(task_obj).__name__,
            "source": str(source), "resolution": [data.width, data.height], "frames": data.count,
            "frames_in_memory": len(data.images), "input_reencoded": data.reencoded,
            "fps_of_input": data.fps, "repeat": repeat, "batch": batch, "compiled": compiled,
        },
        "rows": results,
        "ratios": compute_ratios(results),
        "precision_check": check,
    }


def _supervision_unfit(task: Task) -> str | None:
    if "labels" not in task.outputs:
        return f"the supervision row draws class masks; task '{task.name}' gives no labels"
    return None


def _measure_row(name: str, row: dict, data: BenchInput, task: Task, device: torch.device,
                 dtype: torch.dtype, precision: str, batch: int, work: Path,
                 forward: NaiveForward | None) -> None:
    """One repeat of one row, appended to ``row``."""
    peaks: dict = {}
    with recording_peaks(device, peaks):
        if name == "decode":
            frames, seconds = time_decode(data.clip, data.count, device)
        elif name == "model":
            frames, seconds = time_model(task, data.images, data.count, device, dtype, batch)
        elif name in ("pipeline_null", "pipeline_mp4", "live"):
            out = str(work / "pipeline.mp4") if name == "pipeline_mp4" else "null"
            summary, seconds = run_pipeline(data.clip, task, out, data.count, device, precision,
                                            batch, live=name == "live")
            frames = summary.frames_out
            row.setdefault("device_stage_share", []).append(
                summary.stage_seconds.get("device", 0.0) / seconds if seconds > 0 else 0.0)
            if name == "live":
                row.setdefault("latency_ms_p50", []).append(summary.latency_ms_p50)
                row.setdefault("latency_ms_p95", []).append(summary.latency_ms_p95)
                row.setdefault("drop_rate", []).append(summary.dropped / max(1, summary.frames_in))
        elif name == "naive":
            frames, seconds = time_naive(data.clip, task, data.count, device, work / "naive.mp4", forward)
        else:
            frames, seconds = time_supervision(data.clip, task, data.count, device,
                                               work / "supervision.mp4", forward)
    _record(row, frames, seconds, peaks)


def _precision_check(task: Task, data: BenchInput, device: torch.device, dtype: torch.dtype,
                     batch: int, say: Log) -> dict:
    if dtype is torch.float32:
        return {"skipped": "the bench ran in fp32: nothing to compare with"}
    if "labels" not in task.outputs:
        return {"skipped": f"task '{task.name}' gives no labels"}
    say(f"comparing fp32 and {_precision_name(dtype)} labels on {len(data.images)} frames")
    fraction = argmax_disagreement(task, data.images, device, dtype, batch)
    return {"precision": _precision_name(dtype), "frames": len(data.images),
            "argmax_disagreement": fraction}
