"""The Python API that the ``densestream`` command is a thin layer over."""
from __future__ import annotations

from dataclasses import replace

from .engine import select_device, set_cpu_threads
from .errors import DenseStreamError
from .overlay import OverlayRenderer
from .hwcodecs import pick_decoder_accel, pick_encoder
from .pipeline import Pipeline, ProgressCallback, stop_on_signals
from .sinks import RawSink, WindowSink, open_sink
from .sources import open_source
from .stats import RunSummary
from .tasks import Task, build_task

LAYOUTS = ("overlay", "side-by-side", "grid")
RAW_KEYS = ("labels", "depth", "boxes", "scores", "lost")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' in pixels to a tuple; width and height must be positive."""
    try:
        x, y, w, h = (float(part) for part in text.split(","))
    except ValueError as exc:
        raise DenseStreamError(f"--init-box '{text}' is not x,y,w,h (four numbers)") from exc
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
                   infer_size: str | tuple[int, int] = "auto",
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
    model was evaluated at are shrunk to it), 'native', or a (width, height).
    """
    if layout not in LAYOUTS:
        raise DenseStreamError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    if not (out or raw or show):
        raise DenseStreamError("nothing to write: give --out, --raw or --show")
    if threads is not None:
        set_cpu_threads(threads)
    torch_device = select_device(device)
    encoder = pick_encoder(hw_codecs, torch_device)
    src = open_source(source, live=live, hwaccel=pick_decoder_accel(hw_codecs, torch_device))
    sinks = []
    try:
        task_obj = task if isinstance(task, Task) else build_task(task, model, init_box, refine, infer_size)
        renderer = OverlayRenderer(layout=layout, classes=task_obj.classes,
                                   depth_range=task_obj.depth_range or (1.0, 80.0),
                                   device=torch_device, expect=task_obj.outputs)
        out_h, out_w = renderer.output_size(*_display_size(task_obj, src.info))
        out_info = replace(src.info, width=out_w, height=out_h)
        if out:
            sinks.append(open_sink(out, out_info, codec=encoder))
        if raw:
            sinks.append(RawSink(raw))
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


def run_many(sources, task: str | Task = "seg", *, out: str | None = "null", raw: str | None = None,
             live: bool | None = None, **options):
    """Process several sources in one process and return a ``stream.multi.MultiSummary``.

    ``sources`` are specs or (name, spec[, live]) tuples; ``out``/``raw`` are per-stream targets
    with ``{name}`` in them; ``live`` overrides every stream's policy; ``options`` go to
    ``stream.multi.MultiStream`` (batch, batch_timeout, device, ...). Ctrl-C and SIGTERM stop
    it gracefully from the main thread.
    """
    from .multi import MultiStream, as_entry

    engine = MultiStream(task, **options)
    for name, spec, policy in map(as_entry, sources):
        engine.add(spec, name=name, out=out, raw=raw, live=policy if live is None else live)
    with stop_on_signals(engine):
        return engine.run()


def serve(sources=(), task: str | Task = "seg", *, host: str = "127.0.0.1", port: int = 8080, **options):
    """Start ``densestream serve`` in the background and return the running ``stream.serve.Server``
    (``server.url``; ``engine.add``/``engine.remove``; ``close()`` returns the summary).
    Needs the ``serve`` extra."""
    from .serve import start_server

    return start_server(sources, host=host, port=port, task=task, **options)
