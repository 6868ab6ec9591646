"""Task adapters: turn uint8 frames on the device into the outputs the overlay and sinks use.

A task takes N x 3 x H x W uint8 images (channels_last memory, on the run's device) and returns
a dict of device tensors with any of: ``labels`` (N x H x W uint8 class ids), ``depth``
(N x H x W float32 metres), ``boxes`` (N x 4 x, y, w, h), ``scores`` (N), ``lost`` (N bool),
``restored`` (N x 3 x H' x W' uint8), ``probs`` (N x C x H x W float16 class probabilities,
from segmenting tasks when ``want_probs`` is set) and ``display`` (the image to draw on, when it differs
from the input, e.g. the bicubic upscale for super-resolution). Models come from ``nets.zoo``.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from nets.errors import NetsError
from nets.resizing import run_at_size
from nets.sizes import parse_size

from .errors import DenseStreamError, ModelError
from .refinement import Refinement

TASK_NAMES = ("seg", "depth", "seg+depth", "track", "denoise", "sr", "jpeg", "deblur")

DEFAULT_MODELS = {
    "seg": "lwrefinenet-mbv2-camvid",
    "depth": "joint-mbv2-camvid",
    "seg+depth": "joint-mbv2-camvid",
    "track": "siamfc-alexnet",
    "denoise": "rednet-denoise",
    "sr": "rednet-sr2",
    "jpeg": "rednet20-jpeg",
    "deblur": "rednet-deblur",
}

DEFAULT_DEPTH_RANGE = (1.0, 80.0)

DENSE_TASKS = ("seg", "depth", "seg+depth")


class Task:
    """Base of all tasks: a name, what the overlay needs to know, and the per-batch call."""

    name = "task"
    outputs: tuple[str, ...] = ()
    classes: list[str] | None = None
    depth_range: tuple[float, float] | None = None

    def prepare(self, device: torch.device) -> None:
        """Move weights and state to ``device``; called once before the first batch."""

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class _Normaliser:
    """uint8 RGB to the model's normalised float input, as one fused multiply-add."""

    def __init__(self, mean, std, value_scale: float = 1.0 / 255.0) -> None:
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.scale = value_scale / std_t
        self.shift = -mean_t / std_t

    def to(self, device: torch.device) -> None:
        self.scale = self.scale.to(device)
        self.shift = self.shift.to(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, images.float(), self.scale)


@dataclass(frozen=True)
class InferSize:
    """Where the seg/depth networks run: at ``fixed`` (width, height); or, with ``max_height``,
    frames taller than that are shrunk to it (aspect kept); else at the frame's own size."""

    fixed: tuple[int, int] | None = None
    max_height: int | None = None

    def for_frame(self, height: int, width: int) -> tuple[int, int] | None:
        """The (width, height) to run a height x width frame at; None for its own size."""
        if self.fixed is not None:
            return self.fixed
        if self.max_height is not None and height > self.max_height:
            return max(1, round(width * self.max_height / height)), self.max_height
        return None


def parse_infer_size(text: str) -> str | tuple[int, int]:
    """'auto', 'native', or 'WIDTHxHEIGHT' as (width, height) with each side at least 16."""
    if text in ("auto", "native"):
        return text
    try:
        width, height = parse_size(text, minimum=0)
    except ValueError:
        raise DenseStreamError(f"--infer-size '{text}' is not auto, native or WIDTHxHEIGHT, e.g. 480x360") from None
    if width < 16 or height < 16:
        raise DenseStreamError(f"--infer-size '{text}' needs both sides of at least 16 pixels")
    return width, height


def _infer_size(choice: str | tuple[int, int], spec) -> InferSize:
    """'auto': shrink frames taller than the height the model's shipped metrics were measured at
    (its trained scale); 'native': never resize; (width, height): always that size."""
    if choice == "native":
        return InferSize()
    if choice == "auto":
        return InferSize(max_height=spec.eval_size[1]) if spec.eval_size else InferSize()
    return InferSize(fixed=tuple(choice))


class _ModelTask(Task):
    """A task backed by one ``nets`` model with its zoo spec."""

    def __init__(self, model: torch.nn.Module, spec) -> None:
        self.model = model.eval()
        self.spec = spec
        self.normalise = _Normaliser(spec.mean, spec.std)

    def prepare(self, device: torch.device) -> None:
        self.model.to(device=device, memory_format=torch.channels_last)
        self.normalise.to(device)


class _DenseTask(_ModelTask):
    """A per-pixel model task: the network runs where ``infer_size`` says, with refinement after."""

    def __init__(self, model, spec, refine: Refinement, infer_size: InferSize) -> None:
        super().__init__(model, spec)
        self.refine = refine
        self.infer_size = infer_size
        self.want_probs = False

    def with_probs(self, outputs: dict, logits: torch.Tensor) -> dict:
        """``outputs`` plus the network's class probabilities (before refinement) when asked for."""
        if self.want_probs:
            outputs["probs"] = logits.float().softmax(1).half()
        return outputs

    def predict(self, images: torch.Tensor):
        """The network's output for the frames, at the frames' size."""
        size = self.infer_size.for_frame(*images.shape[-2:])
        return run_at_size(self.model, self.normalise(images), size)


class SegmentationTask(_DenseTask):
    """Per-pixel classes from a segmentation network's logits."""

    name = "seg"
    outputs = ("labels",)

    def __init__(self, model, spec, refine: Refinement = Refinement(),
                 infer_size: InferSize = InferSize()) -> None:
        super().__init__(model, spec, refine, infer_size)
        self.classes = list(spec.classes)

    def __call__(self, images):
        logits = self.predict(images)
        return self.with_probs({"labels": self.refine.labels(logits, images)}, logits)


class JointTask(_DenseTask):
    """Segmentation and metric depth from one shared encoder-decoder pass."""

    def __init__(self, model, spec, want_labels: bool = True, refine: Refinement = Refinement(),
                 infer_size: InferSize = InferSize()) -> None:
        super().__init__(model, spec, refine, infer_size)
        self.want_labels = want_labels
        self.name = "seg+depth" if want_labels else "depth"
        self.outputs = ("labels", "depth") if want_labels else ("depth",)
        self.classes = list(spec.classes) if want_labels else None
        self.depth_range = tuple(getattr(spec, "depth_range", None) or DEFAULT_DEPTH_RANGE)

    def __call__(self, images):
        logits, depth = self.predict(images)
        outputs = {"depth": self.refine.depth(depth[:, 0].float().abs(), images)}
        if self.want_labels:
            outputs["labels"] = self.refine.labels(logits, images)
            self.with_probs(outputs, logits)
        return outputs


class RestorationTask(_ModelTask):
    """RED-Net restoration; for super-resolution the bicubic upscale is drawn beside it."""

    def __init__(self, model, spec, mode: str) -> None:
        super().__init__(model, spec)
        self.name = mode
        self.outputs = ("restored",)
        self.scale = int(getattr(model, "scale", 1) or 1)

    def __call__(self, images):
        restored = self.model(self.normalise(images)).float().clamp_(0.0, 1.0)
        outputs = {"restored": restored.mul_(255.0).round_().to(torch.uint8)}
        if self.scale != 1:
            upscaled = F.interpolate(images.float(), scale_factor=self.scale, mode="bicubic",
                                     align_corners=False)
            outputs["display"] = upscaled.clamp_(0, 255).round_().to(torch.uint8)
        return outputs


class TrackingTask(Task):
    """Follows the box given for the first frame with a Siamese tracker kept on the device;
    ``settings`` are the model's ``SiamFCTracker`` settings (e.g. the published head)."""

    name = "track"
    outputs = ("boxes", "scores", "lost")

    def __init__(self, net: torch.nn.Module, init_box: tuple[float, float, float, float],
                 lost_threshold: float | None = None, settings: Mapping[str, float | bool] | None = None) -> None:
        self.net = net.eval()
        self.init_box = init_box
        self.params = dict(settings or {})
        if lost_threshold is not None:
            self.params["lost_threshold"] = lost_threshold
        self.tracker = None
        self.started = False

    def prepare(self, device: torch.device) -> None:
        from nets.siamese import SiamFCTracker

        self.tracker = SiamFCTracker(self.net.to(device), device=device, **self.params)

    def __call__(self, images):
        boxes, scores, lost = [], [], []
        for image in images:
            if not self.started:
                self.tracker.init(image, self.init_box)
                self.started = True
                box, score, is_lost = self.init_box, 1.0, False
            else:
                result = self.tracker.update(image)
                box, score, is_lost = result.box, result.score, result.lost
            boxes.append(box)
            scores.append(score)
            lost.append(is_lost)
        device = images.device
        return {"boxes": torch.tensor(boxes, dtype=torch.float32, device=device),
                "scores": torch.tensor(scores, dtype=torch.float32, device=device),
                "lost": torch.tensor(lost, dtype=torch.bool, device=device)}


class CombinedTask(Task):
    """Several tasks on the same frames, outputs merged (for grid demos of every task)."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks
        self.name = ",".join(task.name for task in tasks)
        self.outputs = tuple(dict.fromkeys(key for task in tasks for key in task.outputs))
        self.classes = next((task.classes for task in tasks if task.classes), None)
        self.depth_range = next((task.depth_range for task in tasks if task.depth_range), None)
        self.scale = max(getattr(task, "scale", 1) for task in tasks)
        if self.scale != 1:
            raise DenseStreamError("super-resolution cannot be combined with other tasks")

    def prepare(self, device: torch.device) -> None:
        for task in self.tasks:
            task.prepare(device)

    def __call__(self, images):
        merged: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            merged.update(task(images))
        return merged


def request_probabilities(task: Task) -> None:
    """Make ``task`` (or each of a combined task's parts) also give ``probs``; an error when none
    of them segments."""
    parts = task.tasks if isinstance(task, CombinedTask) else [task]
    segmenting = [part for part in parts if isinstance(part, _DenseTask) and "labels" in part.outputs]
    if not segmenting:
        raise DenseStreamError(f"class probabilities come from segmenting tasks (seg, seg+depth), not '{task.name}'")
    for part in segmenting:
        part.want_probs = True


def served_tasks(spec) -> tuple[str, ...]:
    """The ``--task`` names that ``build_task`` accepts for the zoo model ``spec``."""
    if spec.task == "segment":
        return ("seg",)
    if spec.task == "segment+depth":
        return ("seg+depth", "depth", "seg")
    if spec.task == "restore":
        return (str(spec.kwargs["mode"]),)
    return (spec.task,)


def resolve_model(model: str | None, task: str):
    """(module, spec) for a zoo name or a checkpoint path; warns when weights are untrained."""
    from nets import zoo

    name = model or DEFAULT_MODELS[task]
    try:
        if Path(name).suffix in (".pt", ".pth", ".ckpt") or Path(name).is_file():
            return zoo.import_checkpoint(name)
        spec = zoo.spec(name)
        if spec.weights:
            return zoo.load(name)
        warnings.warn(f"model '{name}' has no trained weights shipped yet: its output is from "
                      "random initial weights", stacklevel=2)
        return zoo.build(name), spec
    except NetsError as exc:
        raise ModelError(str(exc)) from exc


def build_task(task: str, model: str | None = None,
               init_box: tuple[float, float, float, float] | None = None,
               refine: str | None = None, infer_size: str | tuple[int, int] = "auto") -> Task:
    """The task adapter for a CLI task name (or comma-separated names), with its model.

    ``refine`` ('spn', 'crf', 'ccrf', comma-joined) post-processes labels and depth;
    ``infer_size`` is where the seg/depth networks run, their maps resized back to the frame:
    'auto' (frames taller than the model's evaluated height are shrunk to it), 'native' or a
    (width, height); tracking and restoration always run at the frame's own size. An
    ``init_box`` without the track task, or a refiner whose map the task does not produce, is
    refused (it would do nothing)."""
    if init_box is not None and "track" not in (name.strip() for name in task.split(",")):
        raise DenseStreamError(f"--init-box has no effect with --task {task}: it gives the target of --task track")
    built = _build_task(task, model, init_box, refine, infer_size)
    Refinement.parse(refine).check_applies(built.outputs, task)
    return built


def _build_task(task: str, model: str | None, init_box: tuple[float, float, float, float] | None,
                refine: str | None, infer_size: str | tuple[int, int]) -> Task:
    """``build_task`` without its checks of the whole request (also builds each of several tasks)."""
    names = [name.strip() for name in task.split(",")]
    if isinstance(infer_size, tuple) and not any(name in DENSE_TASKS for name in names):
        raise DenseStreamError(f"--infer-size applies to the {', '.join(DENSE_TASKS)} tasks, not '{task}'")
    if len(names) > 1:
        if model is not None:
            raise DenseStreamError("--model cannot be given with several tasks")
        return CombinedTask([_build_task(name, None, init_box, refine, infer_size if name in DENSE_TASKS else "auto")
                             for name in names])
    refinement = Refinement.parse(refine)
    if task not in TASK_NAMES:
        raise DenseStreamError(f"unknown task '{task}' (choose from {', '.join(TASK_NAMES)})")
    if task == "track" and init_box is None:
        raise DenseStreamError("--task track needs --init-box x,y,w,h (the target in frame 1)")
    module, spec = resolve_model(model, task)
    if task == "seg":
        if spec.task not in ("segment", "segment+depth"):
            raise ModelError(f"model '{spec.name}' does not segment (it does {spec.task})")
        if spec.task == "segment+depth":
            return JointTask(module, spec, refine=refinement, infer_size=_infer_size(infer_size, spec))
        return SegmentationTask(module, spec, refine=refinement, infer_size=_infer_size(infer_size, spec))
    if task in ("depth", "seg+depth"):
        if spec.task != "segment+depth":
            raise ModelError(f"model '{spec.name}' does not predict depth (it does {spec.task})")
        return JointTask(module, spec, want_labels=task == "seg+depth", refine=refinement,
                         infer_size=_infer_size(infer_size, spec))
    if task == "track":
        if spec.task != "track":
            raise ModelError(f"model '{spec.name}' is not a tracker (it does {spec.task})")
        return TrackingTask(module, init_box, spec.metrics.get("lost_threshold"), spec.tracker)
    if spec.task != "restore":
        raise ModelError(f"model '{spec.name}' does not restore images (it does {spec.task})")
    served = served_tasks(spec)
    if task not in served:
        raise ModelError(f"model '{spec.name}' is trained for --task {served[0]}, not {task}")
    return RestorationTask(module, spec, task)
