"""The Python API that the ``densestream`` command is a thin layer over."""
from __future__ import annotations

import math
from dataclasses import replace

from .engine import select_device, select_precision, set_cpu_threads
from .errors import DenseStreamError
from .overlay import OverlayRenderer
from .hwcodecs import pick_decoder_accel, pick_encoder
from .pipeline import Pipeline, ProgressCallback, check_run_options, stop_on_signals
from .sinks import RawSink, WindowSink, open_sink
from .sources import open_source
from .stats import RunSummary
from .tasks import Task, build_task

LAYOUTS = ("overlay", "side-by-side", "grid")
RAW_KEYS = ("labels", "depth", "boxes", "scores", "lost")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' in pixels to a tuple; finite numbers, width and height positive."""
    try:
        x, y, w, h = (float(part) for part in text.split(","))
    except ValueError as exc:
        raise DenseStreamError(f"--init-box '{text}' is not x,y,w,h (four numbers)") from exc
    if not all(math.isfinite(value) for value in (x, y, w, h)):
        raise DenseStreamError(f"--init-box '{text}' must hold finite numbers")
    if w <= 0 or h <= 0:
        raise DenseStreamError(f"--init-box '{text}' needs a positive width and height")
    return x, y, w, h


def build_pipeline(source, task: str | Task = "seg", *, model: str | None = None,
                   out: str | None = None, raw: str | None = None, show: bool = False,
                   layout: str = "overlay", device: str = "auto", precision: str = "auto",
                   batch: int = 1, max_frames: int | None = None,
                   init_box: tuple[float, float, float, float] | None = None,
                   refine: str | None = None, hud: bool = True, live: bool | None = None,
                   threads: int | None = None, hw_codecs: str = "auto", compile: str = "auto",
                   infer_size: str | tuple[int, int] = "auto", overwrite: bool = False,
                   progress: ProgressCallback | None = None) -> Pipeline:
    """Open the source, the task and every sink asked for, ready to run or iterate.

    ``source`` is a path, URL, camera index, image folder/glob or ``synth://`` spec; ``task``
    a task name (see ``stream.tasks.TASK_NAMES``) or a ready ``Task``; ``out`` a video file,
    an image folder or ``null``; ``raw`` a folder for label/depth maps and track rows;
    ``refine`` optional refinement: 'spn' or 'crf' for labels, 'ccrf' for depth; ``threads``
    torch's CPU threads (None keeps torch's choice); ``hw_codecs`` NVDEC/NVENC for video files
    ('auto': on CUDA runs, 'on', 'off'; see ``stream.hwcodecs``); ``compile`` torch.compile of
    the networks ('auto': offline runs of at least 3000 frames, 'on', 'off'; see ``stream.compiling``);
    ``infer_size`` where the seg/depth networks run: 'auto' (frames taller than the size the
    model was evaluated at are shrunk to it), 'native', or a (width, height); ``overwrite``
    lets ``out`` and ``raw`` replace existing outputs (never an input, see
    ``stream.sinks.safety``). Options are checked before any output is opened.
    """
    if layout not in LAYOUTS:
        raise DenseStreamError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    if not (out or raw or show):
        raise DenseStreamError("nothing to write: give --out, --raw or --show")
    if threads is not None:
        set_cpu_threads(threads)
    check_run_options(batch, max_frames)
    torch_device = select_device(device)
    select_precision(torch_device, precision)
    encoder = pick_encoder(hw_codecs, torch_device)
    src = open_source(source, live=live, hwaccel=pick_decoder_accel(hw_codecs, torch_device))
    sinks = []
    try:
        if init_box is not None:
            _check_box_in_frame(init_box, src.info)
        task_obj = task if isinstance(task, Task) else build_task(task, model, init_box, refine, infer_size)
        renderer = OverlayRenderer(layout=layout, classes=task_obj.classes,
                                   depth_range=task_obj.depth_range or (1.0, 80.0),
                                   device=torch_device, expect=task_obj.outputs)
        out_h, out_w = renderer.output_size(*_display_size(task_obj, src.info))
        out_info = replace(src.info, width=out_w, height=out_h)
        if out:
            sinks.append(open_sink(out, out_info, codec=encoder, overwrite=overwrite))
        if raw:
            sinks.append(RawSink(raw, inputs=src.info.inputs, overwrite=overwrite))
        if show:
            sinks.append(WindowSink(f"densestream: {src.info.name}"))
        return Pipeline(src, task_obj, renderer, sinks, device=torch_device, precision=precision,
                        batch=batch, max_frames=max_frames,
                        raw_keys=RAW_KEYS if raw else (), hud=hud, compile=compile, progress=progress)
    except BaseException:
        for sink in sinks:
            sink.close()
        src.close()
        raise


def _check_box_in_frame(box: tuple[float, float, float, float], info) -> None:
    x, y, w, h = box
    if x >= info.width or y >= info.height or x + w <= 0 or y + h <= 0:
        raise DenseStreamError(f"--init-box {x:g},{y:g},{w:g},{h:g} lies outside the "
                               f"{info.width}x{info.height} frame")


def _display_size(task: Task, info) -> tuple[int, int]:
    """(height, width) of the image the overlay draws on (upscaled for super-resolution)."""
    scale = getattr(task, "scale", 1)
    return info.height * scale, info.width * scale


def run(source, task: str | Task = "seg", **options) -> RunSummary:
    """Process ``source`` to the outputs given in ``options`` (see ``build_pipeline``).

    Ctrl-C and SIGTERM stop the run gracefully when called from the main thread: frames in
    flight are finished and every output file is finalised before this returns.
    """
    pipeline = build_pipeline(source, task, **options)
    with stop_on_signals(pipeline):
        return pipeline.run()
