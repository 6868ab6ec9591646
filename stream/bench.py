"""Side-by-side speed measurements of one task on one input; ``measure(...)`` returns a dict.

Rows, all on the same frames and the same model object: ``decode`` (open_source iteration),
``model`` (device tensors in and out, the task's forward only), ``pipeline_null`` and
``pipeline_mp4`` (the real Pipeline into a NullSink / a VideoSink), ``naive`` (the one-thread
OpenCV + eager fp32 NCHW loop a user would write), ``live`` (the input paced at its frame
rate: latency and drops) and ``supervision`` (its ``process_video`` loop, when installed).
Each row holds per-repeat lists (``frames``, ``seconds``, ``fps``) and medians
(``fps_median``, ``ms_per_frame_median``), ``peak_rss_mb`` and ``peak_device_mb``; a
skipped row holds only ``skipped`` (the reason). The result also has ``meta`` (device,
torch, date, precision, settings), ``ratios`` (from the medians) and ``precision_check``.
``soak`` watches host memory over a long synthetic run; ``argmax_disagreement`` measures
the accuracy cost of a reduced precision on any frames.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from nets.sizes import parse_size

from .api import build_pipeline
from .compiling import compile_task
from .hwcodecs import pick_decoder_accel
from .engine import PRECISIONS, select_device, select_precision
from .errors import DenseStreamError
from .frames import Frame, StreamInfo
from .overlay import OverlayRenderer
from .pipeline import ProgressCallback
from .sinks import VideoSink
from .sources import open_source
from .tasks import Task, build_task

ROWS = ("decode", "model", "pipeline_null", "pipeline_mp4", "naive", "live", "supervision")
MEMORY_SHARE = 0.25
WARMUP_BATCHES = 2
Log = Callable[[str], None]


# ---------------------------------------------------------------------------- memory probes


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Resident host memory of this process now (VmRSS), in MiB; None off Linux."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mb() -> float | None:
    """Peak resident host memory (VmHWM) since the last ``reset_peak_rss``, in MiB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


def reset_peak_rss() -> bool:
    """Restart the VmHWM peak at the current RSS (Linux clear_refs); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def _peaks(device: torch.device, into: dict):
    """Record peak host RSS and peak device memory (CUDA) of the enclosed work into ``into``."""
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield
    into["peak_rss_mb"] = peak_rss_mb()
    into["peak_device_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                              if device.type == "cuda" else None)


# ---------------------------------------------------------------------------- the input


def parse_resolution(text: str) -> tuple[int, int]:
    """'960x540' to (960, 540); both sides positive and even (the H.264 clip needs that)."""
    try:
        width, height = parse_size(text, minimum=0)
    except ValueError:
        raise DenseStreamError(f"--resolution '{text}' is not WIDTHxHEIGHT, e.g. 960x540") from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise DenseStreamError(f"--resolution '{text}' needs even sizes of at least 2")
    return width, height


@dataclass
class BenchInput:
    """The frames every row uses: a video clip at the bench size and the first ones in memory."""

    clip: Path
    images: list[np.ndarray]
    count: int
    width: int
    height: int
    fps: float
    reencoded: bool


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def prepare_input(source: str, frames: int, resolution: tuple[int, int] | None,
                  workdir: Path) -> BenchInput:
    """Decode ``frames`` frames of ``source`` once, resized to ``resolution``.

    A local video file already at that size is used as it is; anything else is re-encoded
    (H.264, near lossless) into ``workdir`` so that every file-reading row reads one clip.
    Frames are kept in memory up to a quarter of the available memory.
    """
    if frames < 1:
        raise DenseStreamError("--frames must be at least 1")
    with open_source(source, live=False) as src:
        width, height = resolution or (src.info.width, src.info.height)
        fps = src.info.fps or 25.0
        local_file = isinstance(source, (str, os.PathLike)) and Path(source).is_file()
        reuse = local_file and (width, height) == (src.info.width, src.info.height)
        budget = _available_bytes()
        fitting = frames if budget is None else int(MEMORY_SHARE * budget) // (width * height * 3)
        keep = max(1, min(frames, fitting))
        clip = Path(source) if reuse else workdir / "bench_input.mp4"
        time_base = 1 / Fraction(fps).limit_denominator(1001)
        info = StreamInfo(width, height, time_base, fps=fps, name="bench_input")
        writer = None if reuse else VideoSink(clip, info, crf=10)
        images: list[np.ndarray] = []
        count = 0
        try:
            for frame in itertools.islice(src, frames):
                image = _resized(frame.image, width, height)
                if len(images) < keep:
                    images.append(image)
                if writer is not None:
                    writer.write(Frame(count, count, time_base, image), image, {})
                count += 1
        finally:
            if writer is not None:
                writer.close()
    if count == 0:
        raise DenseStreamError(f"{source}: no frames to benchmark")
    return BenchInput(clip, images, count, width, height, fps, not reuse)


# ---------------------------------------------------------------------------- one row each


def _autocast(device: torch.device, dtype: torch.dtype):
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


def _device_batches(images: list[np.ndarray], frames: int, batch: int,
                    device: torch.device) -> list[torch.Tensor]:
    """``frames`` frames (cycling through ``images``) as N x 3 x H x W uint8 device tensors."""
    order = [images[i % len(images)] for i in range(frames)]
    return [torch.from_numpy(np.stack(order[i:i + batch])).to(device).permute(0, 3, 1, 2)
            for i in range(0, frames, batch)]


def warm_up(task: Task, images: list[np.ndarray], device: torch.device, dtype: torch.dtype,
            batch: int) -> None:
    """A few untimed forwards so that allocator, kernels and caches are ready."""
    for tensor in _device_batches(images, WARMUP_BATCHES * batch, batch, device):
        with torch.inference_mode(), _autocast(device, dtype):
            task(tensor)
    _sync(device)


def time_model(task: Task, images: list[np.ndarray], frames: int, device: torch.device,
               dtype: torch.dtype, batch: int) -> tuple[int, float]:
    """(frames, seconds) of the task's forward alone, inputs already on the device."""
    batches = _device_batches(images, frames, batch, device)
    _sync(device)
    started = time.perf_counter()
    with torch.inference_mode(), _autocast(device, dtype):
        for tensor in batches:
            task(tensor)
    _sync(device)
    return frames, time.perf_counter() - started


def run_pipeline(clip: Path, task: Task, out: str, frames: int, device: torch.device,
                 precision: str, batch: int, live: bool = False):
    """Run the real pipeline over the clip; returns (summary, wall seconds incl. finalising)."""
    started = time.perf_counter()
    pipeline = build_pipeline(str(clip), task, out=out, device=device, precision=precision,
                              batch=batch, max_frames=frames, live=live, compile="off")
    summary = pipeline.run()
    seconds = time.perf_counter() - started
    if summary.error:
        raise DenseStreamError(f"pipeline run into {out} failed: {summary.error}")
    return summary, seconds


class NaiveForward:
    """The model call a user would write by hand: numpy normalisation on the host,
    ``torch.from_numpy``, the same weights in fp32 eager NCHW, argmax, ``.cpu()``.

    Tasks without a ``nets`` model (test stand-ins) get the uint8 NCHW tensor directly.
    """

    def __init__(self, task: Task, device: torch.device) -> None:
        self.task = task
        self.device = device
        self.wanted = set(task.outputs)
        model = getattr(task, "model", None)
        spec = getattr(task, "spec", None)
        self.model = None
        if model is not None and spec is not None:
            self.model = copy.deepcopy(model).to(device=device, dtype=torch.float32,
                                                 memory_format=torch.contiguous_format).eval()
            self.mean = np.asarray(spec.mean, dtype=np.float32)
            self.std = np.asarray(spec.std, dtype=np.float32)

    def __call__(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of one H x W x 3 uint8 RGB frame as host arrays."""
        with torch.no_grad():
            if self.model is None:
                tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
                outputs = self.task(tensor.to(self.device))
                return {key: value[0].cpu().numpy() for key, value in outputs.items()}
            normalised = (rgb.astype(np.float32) / 255.0 - self.mean) / self.std
            tensor = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]
            result = self.model(tensor.to(self.device))
            logits, depth = result if isinstance(result, tuple) else (result, None)
            outputs = {}
            if "labels" in self.wanted:
                outputs["labels"] = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            if depth is not None and "depth" in self.wanted:
                outputs["depth"] = depth[0, 0].abs().cpu().numpy()
            return outputs


def task_palette(task: Task) -> np.ndarray:
    """The task's class colours (C x 3 uint8 RGB), the same the device overlay uses."""
    return OverlayRenderer(classes=task.classes, expect=("labels",)).palette.numpy()


def naive_overlay(bgr: np.ndarray, outputs: dict[str, np.ndarray], palette_bgr: np.ndarray,
                  depth_range: tuple[float, float]) -> np.ndarray:
    """Host-side overlay with OpenCV: palette lookup + addWeighted (labels), else a colour-mapped depth."""
    if "labels" in outputs:
        colours = np.take(palette_bgr, outputs["labels"], axis=0, mode="clip")
        return cv2.addWeighted(bgr, 0.5, colours, 0.5, 0.0)
    if "depth" in outputs:
        near, far = depth_range
        depth = np.clip(np.nan_to_num(outputs["depth"], nan=far), near, far)
        fraction = (np.log(depth) - np.log(near)) / (np.log(far) - np.log(near))
        colours = cv2.applyColorMap(((1.0 - fraction) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        return cv2.addWeighted(bgr, 0.5, colours, 0.5, 0.0)
    return bgr


def time_naive(clip: Path, task: Task, frames: int, device: torch.device, out: Path,
               forward: NaiveForward | None = None) -> tuple[int, float]:
    """(frames, seconds) of the one-thread loop: cv2.VideoCapture -> model -> OpenCV overlay ->
    cv2.VideoWriter (mp4v)."""
    forward = forward or NaiveForward(task, device)
    palette_bgr = np.ascontiguousarray(task_palette(task)[:, ::-1]) if task.classes else None
    depth_range = task.depth_range or (1.0, 80.0)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise DenseStreamError(f"{clip}: OpenCV cannot open the clip for the naive loop")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    count = 0
    try:
        while count < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (bgr.shape[1], bgr.shape[0]))
                if not writer.isOpened():
                    raise DenseStreamError(f"{out}: OpenCV cannot write mp4v video")
            outputs = forward(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            writer.write(naive_overlay(bgr, outputs, palette_bgr, depth_range))
            count += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return count, time.perf_counter() - started


def supervision_missing() -> str | None:
    """Why the supervision row cannot run, or None when it can."""
    try:
        import supervision  # noqa: F401 - only probing whether it is installed
    except ImportError as exc:
        return f"supervision is not installed ({exc}); pip install supervision to add this row"
    return None


def time_supervision(clip: Path, task: Task, frames: int, device: torch.device, out: Path,
                     forward: NaiveForward | None = None) -> tuple[int, float]:
    """(frames, seconds) of ``sv.process_video`` driving the same model, labels drawn by its
    MaskAnnotator (one mask per class present)."""
    import supervision as sv

    forward = forward or NaiveForward(task, device)
    colours = sv.ColorPalette([sv.Color(int(r), int(g), int(b)) for r, g, b in task_palette(task)])
    annotator = sv.MaskAnnotator(color=colours, opacity=0.5)
    count = 0

    def annotate(bgr: np.ndarray, index: int) -> np.ndarray:
        nonlocal count
        labels = forward(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))["labels"]
        present = np.unique(labels)
        present = present[present < len(colours.colors)]
        masks = labels[None] == present[:, None, None]
        detections = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks,
                                   class_id=present.astype(int))
        count += 1
        return annotator.annotate(bgr.copy(), detections)

    started = time.perf_counter()
    sv.process_video(str(clip), str(out), annotate, max_frames=frames)
    return count, time.perf_counter() - started


# ---------------------------------------------------------------------------- accuracy cost


def argmax_disagreement(task: Task, images: Iterable[np.ndarray], device: torch.device | str,
                        dtype: torch.dtype, batch: int = 1) -> float:
    """Fraction of pixels whose class differs between fp32 and ``dtype`` (autocast) on ``images``.

    ``images`` are H x W x 3 uint8 RGB frames of one size (bench frames, or CamVid val later).
    """
    if "labels" not in task.outputs:
        raise DenseStreamError(f"task '{task.name}' gives no labels, so no argmax to compare")
    device = select_device(device)
    task.prepare(device)
    differing = total = 0
    pending: list[np.ndarray] = []

    def compare(chunk: list[np.ndarray]) -> None:
        nonlocal differing, total
        tensor = _device_batches(chunk, len(chunk), len(chunk), device)[0]
        with torch.inference_mode():
            reference = task(tensor)["labels"]
            with _autocast(device, dtype):
                reduced = task(tensor)["labels"]
        differing += int((reference != reduced).sum())
        total += reference.numel()

    for image in images:
        pending.append(image)
        if len(pending) == batch:
            compare(pending)
            pending = []
    if pending:
        compare(pending)
    if total == 0:
        raise DenseStreamError("no frames given to compare precisions on")
    return differing / total


# ---------------------------------------------------------------------------- the whole bench


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
    with _peaks(device, peaks):
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


# ---------------------------------------------------------------------------- soak


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


# ---------------------------------------------------------------------------- reporting


ROW_TITLES = {
    "decode": "decode only (open_source)",
    "model": "model only (device tensors)",
    "pipeline_null": "pipeline -> null sink",
    "pipeline_mp4": "pipeline -> MP4 (H.264)",
    "naive": "naive loop (OpenCV, fp32 NCHW)",
    "live": "live (paced at input fps)",
    "supervision": "supervision process_video",
}


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row_notes(row: dict) -> list[str]:
    """Extra facts of a pipeline or live row for the table's notes column."""
    notes = []
    if row.get("device_stage_share_median") is not None:
        notes.append(f"device stage busy {100 * row['device_stage_share_median']:.0f}% of the wall time")
    if row.get("latency_ms_p50_median") is not None:
        notes.append(f"latency p50 {row['latency_ms_p50_median']:.0f} ms, p95 "
                     f"{row['latency_ms_p95_median']:.0f} ms, dropped {100 * row['drop_rate_median']:.0f}%")
    return notes


def format_table(result: dict) -> str:
    """The bench result as a Markdown table of medians, ratios and settings."""
    meta = result["meta"]
    lines = [
        f"device: {meta['device']} ({meta['device_name']}), torch {meta['torch']} "
        f"({meta['torch_threads']} threads), date {meta['date']}",
        f"task {meta['task']} (model {meta['model']}), precision {meta['precision']}"
        f"{', torch.compile' if meta.get('compiled') else ''}, batch "
        f"{meta['batch']}, {meta['resolution'][0]}x{meta['resolution'][1]}, {meta['frames']} frames "
        f"x {meta['repeat']} repeats, source {meta['source']}",
        "",
        "| row | frames/s | ms/frame | peak RSS MiB | peak device MiB | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in result["rows"].items():
        title = ROW_TITLES[name]
        if "skipped" in row:
            lines.append(f"| {title} | - | - | - | - | skipped: {row['skipped']} |")
            continue
        notes = "; ".join(_row_notes(row))
        lines.append(f"| {title} | {_number(row['fps_median'], 2)} | {_number(row['ms_per_frame_median'])} "
                     f"| {_number(row['peak_rss_mb'], 0)} | {_number(row['peak_device_mb'], 0)} | {notes} |")
    ratios = result["ratios"]
    lines += ["", "ratios of median frame rates: "
              f"pipeline->null / model-only {_number(ratios['pipeline_null_over_model'], 2)}, "
              f"pipeline->MP4 / naive {_number(ratios['pipeline_mp4_over_naive'], 2)}, "
              f"pipeline->null / naive {_number(ratios['pipeline_null_over_naive'], 2)}"]
    check = result.get("precision_check") or {}
    if "argmax_disagreement" in check:
        lines.append(f"{check['precision']} vs fp32: {100 * check['argmax_disagreement']:.3f}% of pixels "
                     f"change class on {check['frames']} frames")
    elif "skipped" in check:
        lines.append(f"precision check skipped: {check['skipped']}")
    return "\n".join(lines)


def format_soak(result: dict) -> str:
    """One line on the soak run's memory."""
    growth = result["rss_growth"]
    return (f"soak: {result['frames']} frames of {result['task']} at {result['resolution'][0]}x"
            f"{result['resolution'][1]} in {result['seconds']:.0f} s ({result['fps']:.1f} frames/s); "
            f"RSS {_number(result['rss_mb_at_checkpoint'])} MiB at frame {result['checkpoint']}, "
            f"{_number(result['rss_mb_at_end'])} MiB at the end "
            f"({'-' if growth is None else f'{100 * growth:+.1f}%'})")


def write_json(result: dict, path: str | os.PathLike) -> None:
    """All raw numbers as JSON."""
    try:
        Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DenseStreamError(f"cannot write {path}: {exc.strerror or exc}") from exc
