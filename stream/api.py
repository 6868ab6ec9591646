"""The Python API that the ``densestream`` command is a thin layer over."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from nets.sizes import parse_size

from .cpu_share import choose_threads
from .engine import select_device, select_precision, set_cpu_threads
from .errors import DenseStreamError
from .overlay import OverlayRenderer
from .overlay.labels import CAMVID_CLASSES, class_ids
from .hwcodecs import pick_decoder_accel, pick_encoder
from .pipeline import Pipeline, ProgressCallback, check_run_options, stop_on_signals
from .sinks import RawSink, WindowSink, open_sink
from .sinks.video import VIDEO_FORMATS
from .sources import open_source
from .stats import RunSummary
from .tasks import Task, build_task, request_probabilities

LAYOUTS = ("overlay", "side-by-side", "grid")
RAW_KEYS = ("labels", "depth", "boxes", "scores", "lost")
OUTPUT_NAMES = ("labels", "depth", "probs", "restored", "boxes")
RAW_FORMATS = {"png": "png16", "npy": "npy", "both": "both"}


def parse_box(text: str | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """'x,y,w,h' in pixels (or four numbers) to a tuple; finite numbers, width and height positive."""
    try:
        x, y, w, h = (float(part) for part in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError) as exc:
        raise DenseStreamError(f"--init-box '{text}' is not x,y,w,h (four numbers)") from exc
    if not all(math.isfinite(value) for value in (x, y, w, h)):
        raise DenseStreamError(f"--init-box '{text}' must hold finite numbers")
    if w <= 0 or h <= 0:
        raise DenseStreamError(f"--init-box '{text}' needs a positive width and height")
    return x, y, w, h


def parse_depth_range(text: str | tuple[float, float]) -> str | tuple[float, float]:
    """'auto', 'NEAR,FAR' in metres, or a (near, far) pair; 0 < near < far."""
    if text == "auto":
        return "auto"
    try:
        near, far = (float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        raise DenseStreamError(f"--depth-range '{text}' is not auto or NEAR,FAR in metres, e.g. 1,80") from None
    if not 0 < near < far < float("inf"):
        raise DenseStreamError(f"--depth-range '{text}' needs 0 < NEAR < FAR")
    return near, far


def parse_output_size(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """'WIDTHxHEIGHT' (or a pair) as (width, height), each at least 16; None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        return parse_size(text, minimum=16)
    except ValueError:
        raise DenseStreamError(f"--size '{text}' is not WIDTHxHEIGHT with sides of at least 16, e.g. 1280x720") from None


def encoding_options(out: str | None, quality: int | None, preset: str | None, bitrate: str | None) -> dict:
    """The encoder options for a video ``out``; an error when they are given for anything else."""
    given = {key: value for key, value in (("crf", quality), ("preset", preset), ("bitrate", bitrate))
             if value is not None}
    if out and Path(out).suffix.lower() in VIDEO_FORMATS:
        return given
    if given:
        raise DenseStreamError("--quality, --preset and --bitrate apply to video file outputs (.mp4, .mkv, .mov)")
    return {}


def build_pipeline(source, task: str | Task = "seg", *, model: str | None = None,
                   out: str | None = None, raw: str | None = None, show: bool = False,
                   layout: str = "overlay", device: str = "auto", precision: str = "auto",
                   batch: int = 1, max_frames: int | None = None,
                   init_box: tuple[float, float, float, float] | None = None,
                   refine: str | None = None, hud: bool | None = None, live: bool | None = None,
                   threads: int | None = None, hw_codecs: str = "auto", compile: str = "auto",
                   infer_size: str | tuple[int, int] = "auto", overwrite: bool = False,
                   progress: ProgressCallback | None = None, opacity: float = 0.5,
                   classes: str | list[str | int] | None = None, palette: str = "contrast",
                   legend: str = "present", depth_range: str | tuple[float, float] | None = None,
                   depth_cmap: str = "turbo", line_width: int | None = None, codec: str = "h264",
                   quality: int | None = None, preset: str | None = None, bitrate: str | None = None,
                   size: str | tuple[int, int] | None = None, full_panels: bool = False,
                   raw_format: str = "png", raw_probs: bool = False,
                   outputs: tuple[str, ...] | list[str] = ()) -> Pipeline:
    """Open the source, the task and every sink asked for, ready to run or iterate.

    ``source`` is a path, URL, camera index, image folder/glob or ``synth://`` spec; ``task``
    a task name (see ``stream.tasks.TASK_NAMES``) or a ready ``Task``; ``out`` a video file,
    an image folder or ``null``; ``raw`` a folder for label/depth maps and track rows;
    ``refine`` optional refinement: 'spn' or 'crf' for labels, 'ccrf' for depth; ``threads``
    torch's CPU threads (None: the cores other jobs leave free, see ``stream.cpu_share``);
    ``hw_codecs`` NVDEC/NVENC for video files ('auto': on CUDA runs, 'on', 'off'; see
    ``stream.hwcodecs``); ``compile`` torch.compile of
    the networks ('auto': offline runs of at least 3000 frames, 'on', 'off'; see ``stream.compiling``);
    ``infer_size`` where the seg/depth networks run: 'auto' (frames taller than the size the
    model was evaluated at are shrunk to it), 'native', or a (width, height); ``hud`` the status
    line: None (default) in windows only, True in every output, False in none; ``overwrite``
    lets ``out`` and ``raw`` replace existing outputs (never an input, see
    ``stream.sinks.safety``). Options are checked before any output is opened.

    Drawing: ``opacity`` of labels and blended depth (0..1); ``classes`` the classes to colour
    (names or ids, a list or 'Road,Car'; the rest keep the input's pixels); ``palette``
    'contrast' or 'camvid'; ``legend`` 'present' (classes in the frame), 'all' or 'off';
    ``depth_range`` 'auto' (robust, smoothed over time), 'NEAR,FAR' or (near, far) in metres,
    default the model's; ``depth_cmap`` one of ``stream.overlay.depth.DEPTH_CMAPS``;
    ``line_width`` the box outline in pixels; ``size`` (width, height) or 'WxH' resizes the
    composed frames; ``full_panels`` keeps the grid's panels at the input's size.

    Video files: ``codec`` 'h264', 'hevc' or 'av1'; ``quality`` the constant-quality CRF (the
    encoder's default when None: 20, 24, 32); ``bitrate`` ('4M', '800k') an average rate instead;
    ``preset`` an x264 speed name (default veryfast).

    Raw maps: ``raw_format`` 'png' (16-bit millimetres), 'npy' (float32 metres) or 'both' for
    depth; ``raw_probs`` adds ``NAME_probs.npy`` (C x H x W float16 class probabilities).
    ``outputs`` names the maps every yielded result carries in ``result.outputs`` as numpy arrays,
    with or without a raw folder: 'labels' (H x W uint8), 'depth' (H x W float32 metres),
    'probs' (C x H x W float16), 'restored' (3 x H x W uint8), 'boxes' (the ``box`` row
    x, y, w, h, score, lost).
    """
    if layout not in LAYOUTS:
        raise DenseStreamError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    unknown = sorted(set(outputs) - set(OUTPUT_NAMES))
    if unknown:
        raise DenseStreamError(f"unknown output {unknown[0]!r} (choose from {', '.join(OUTPUT_NAMES)})")
    if raw_format not in RAW_FORMATS:
        raise DenseStreamError(f"unknown raw format {raw_format!r} (choose from {', '.join(RAW_FORMATS)})")
    if not (out or raw or show or outputs):
        raise DenseStreamError("nothing to write: give --out, --raw or --show")
    if threads is not None:
        set_cpu_threads(threads)
    else:
        choose_threads()
    check_run_options(batch, max_frames)
    torch_device = select_device(device)
    select_precision(torch_device, precision)
    encoder = pick_encoder(hw_codecs, torch_device, codec)
    encoding = encoding_options(out, quality, preset, bitrate)
    out_size = parse_output_size(size)
    box = None if init_box is None else parse_box(init_box)
    src = open_source(source, live=live, hwaccel=pick_decoder_accel(hw_codecs, torch_device))
    sinks = []
    try:
        if box is not None:
            _check_box_in_frame(box, src.info)
        task_obj = task if isinstance(task, Task) else build_task(task, model, box, refine, infer_size)
        renderer = make_renderer(task_obj, torch_device, layout=layout, opacity=opacity, classes=classes,
                                 palette=palette, legend=legend, depth_range=depth_range,
                                 depth_cmap=depth_cmap, line_width=line_width, size=out_size,
                                 full_panels=full_panels)
        raw_keys = _raw_keys(task_obj, raw, raw_probs, outputs)
        out_h, out_w = renderer.output_size(*_display_size(task_obj, src.info))
        out_info = replace(src.info, width=out_w, height=out_h)
        if out:
            sinks.append(open_sink(out, out_info, codec=encoder, overwrite=overwrite, **encoding))
        if raw:
            sinks.append(RawSink(raw, depth_format=RAW_FORMATS[raw_format], inputs=src.info.inputs,
                                 overwrite=overwrite))
        if show:
            sinks.append(WindowSink(f"densestream: {src.info.name}"))
        return Pipeline(src, task_obj, renderer, sinks, device=torch_device, precision=precision,
                        batch=batch, max_frames=max_frames,
                        raw_keys=raw_keys, hud=hud, compile=compile,
                        progress=progress)
    except BaseException:
        for sink in sinks:
            sink.close()
        src.close()
        raise


def make_renderer(task: Task, device, *, layout: str = "overlay", opacity: float = 0.5,
                  classes: str | list[str | int] | None = None, palette: str = "contrast",
                  legend: str = "present", depth_range: str | tuple[float, float] | None = None,
                  depth_cmap: str = "turbo", line_width: int | None = None,
                  size: str | tuple[int, int] | None = None, full_panels: bool = False) -> OverlayRenderer:
    """The overlay renderer for ``task``'s outputs, the drawing options as in ``build_pipeline``
    (the multi-stream engine draws every stream with one of these per task)."""
    names = task.classes or list(CAMVID_CLASSES)
    try:
        return OverlayRenderer(
            layout=layout, classes=names, device=device, expect=task.outputs,
            palette=palette, alpha=opacity, legend=legend, depth_cmap=depth_cmap, line_width=line_width,
            size=parse_output_size(size), full_panels=full_panels,
            draw_classes=None if classes is None else class_ids(classes, names),
            depth_range=parse_depth_range(depth_range or task.depth_range or (1.0, 80.0)))
    except ValueError as exc:
        raise DenseStreamError(str(exc)) from exc


def _raw_keys(task: Task, raw: str | None, raw_probs: bool, outputs) -> tuple[str, ...]:
    """The task outputs brought back to the host: every raw map for a raw folder, plus those
    the caller names; asks the task for probabilities when they are wanted."""
    wanted = set(outputs)
    if "boxes" in wanted:
        wanted |= {"scores", "lost"}
    if raw:
        wanted |= set(RAW_KEYS) | ({"probs"} if raw_probs else set())
    elif raw_probs:
        raise DenseStreamError("--raw-probs writes into the --raw folder; give --raw DIR too")
    if "probs" in wanted:
        request_probabilities(task)
    return tuple(sorted(wanted))


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

    A list of sources is ``run_many`` (and returns its ``MultiSummary``), as ``densestream run``
    with several sources is. Ctrl-C and SIGTERM stop the run gracefully when called from the
    main thread: frames in flight are finished and every output file is finalised before this returns.
    """
    if isinstance(source, list):
        return run_many(source, task, **options)
    pipeline = build_pipeline(source, task, **options)
    with stop_on_signals(pipeline):
        return pipeline.run()


def run_many(sources, task: str | Task = "seg", *, out: str | None = "null", raw: str | None = None,
             live: bool | None = None, **options):
    """Process several sources in one process and return a ``stream.multi.MultiSummary``; what
    ``run`` with a list of sources and ``densestream run`` with several sources do.

    ``sources`` are specs or (name, spec[, live]) tuples; ``out``/``raw`` are per-stream targets,
    ``out`` with ``{name}`` in it when there are several streams (``raw`` without it becomes
    ``raw/{name}``); ``live`` overrides every stream's policy; ``options`` go to
    ``stream.multi.MultiStream`` (batch, batch_timeout, device, max_frames, overwrite, the
    drawing and encoding options, ...), and the single-source options (show, init_box, compile,
    raw_probs, outputs, progress) other than their defaults are refused. Everything is checked
    before a stream starts. Ctrl-C and SIGTERM stop it gracefully from the main thread.
    """
    from .multi import start_streams

    engine = start_streams(sources, task, out=out, raw=raw, live=live, **options)
    with stop_on_signals(engine):
        return engine.run()


def serve(sources=(), task: str | Task = "seg", *, host: str = "127.0.0.1", port: int = 8080, **options):
    """Start ``densestream serve`` in the background and return the running ``stream.serve.Server``
    (``server.url``; ``engine.add``/``engine.remove``; ``close()`` returns the summary).
    Needs the ``serve`` extra."""
    from .serve import start_server

    return start_server(sources, host=host, port=port, task=task, **options)
