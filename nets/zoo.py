"""Named models: build them, load shipped weights, import published checkpoints.

A registry entry is one ``ModelSpec`` line naming its builder as ``"module:callable"``, imported
only when the model is built. Shipped weights (fp16, cast to fp32 on load) live in
``nets/weights/`` and are listed with their sha256 and metrics in ``nets/weights/manifest.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from nets.backbones import RESNET_CONFIGS
from nets.checkpoints import load_state_strict, read_state_dict
from nets.errors import NetsError
from nets.sizes import parse_size

__all__ = ["ModelSpec", "available", "same_layout", "spec", "build", "load", "import_checkpoint", "WEIGHTS_DIR",
           "TASKS", "sha256_of"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TASKS = ("segment", "depth", "segment+depth", "restore", "track", "classify")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNIT_MEAN = (0.0, 0.0, 0.0)
UNIT_STD = (1.0, 1.0, 1.0)

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                  "Car", "Pedestrian", "Bicyclist")
NYUD40_CLASSES = ("wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window",
                  "bookshelf", "picture", "counter", "blinds", "desk", "shelves", "curtain",
                  "dresser", "pillow", "mirror", "floor mat", "clothes", "ceiling", "books",
                  "refrigerator", "television", "paper", "towel", "shower curtain", "box",
                  "whiteboard", "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag",
                  "otherstructure", "otherfurniture", "otherprop")


def numbered_classes(count: int) -> tuple[str, ...]:
    """Generic names ('class 0', ...) for a head whose class names are not published."""
    return tuple(f"class {i}" for i in range(count))


@dataclass(frozen=True)
class ModelSpec:
    """What a named model is: its layout (``arch``), builder, task, classes and input
    normalisation (mean/std on 0..1 RGB), the ``nets.siamese.SiamFCTracker`` settings a tracker's
    weights are meant for (``tracker``), plus shipped weights, their metrics, the input size
    (width, height) those metrics were measured at, the CPU frames/s at 480x360 and the data they
    were trained on, from the manifest."""

    name: str
    arch: str
    builder: str
    task: str
    classes: tuple[str, ...] = ()
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    depth_range: tuple[float, float] | None = None
    tracker: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    sha256: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    eval_size: tuple[int, int] | None = None
    cpu_fps: float | None = None
    data: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"model {self.name!r}: task must be one of {TASKS}, got {self.task!r}")
        if ":" not in self.builder:
            raise ValueError(f"model {self.name!r}: builder must look like 'module:callable'")


_REDNET_KINDS = {"denoise": {"mode": "denoise"}, "jpeg": {"mode": "jpeg"}, "deblur": {"mode": "deblur"},
                 "sr2": {"mode": "sr", "scale": 2}, "sr4": {"mode": "sr", "scale": 4}}

_REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("lwrefinenet-mbv2-camvid", "lwrefinenet-mbv2", "nets.refinenet:lw_refinenet_mobilenet",
              "segment", CAMVID_CLASSES),
    ModelSpec("lwrefinenet-mbv2-camvid-only", "lwrefinenet-mbv2", "nets.refinenet:lw_refinenet_mobilenet",
              "segment", CAMVID_CLASSES),
    ModelSpec("lwrefinenet-r18-camvid", "lwrefinenet-r18", "nets.refinenet:lw_refinenet_resnet",
              "segment", CAMVID_CLASSES, kwargs={"depth": 18}),
    ModelSpec("lwrefinenet-r50-camvid", "lwrefinenet-r50", "nets.refinenet:lw_refinenet_resnet",
              "segment", CAMVID_CLASSES, kwargs={"depth": 50}),
    ModelSpec("refinenet-r101-camvid", "refinenet-r101", "nets.refinenet:refinenet",
              "segment", CAMVID_CLASSES, kwargs={"depth": 101}),
    ModelSpec("joint-mbv2-camvid", "joint-mbv2", "nets.multitask:joint_refinenet",
              "segment+depth", CAMVID_CLASSES),
    ModelSpec("joint-mbv2-camvid-480", "joint-mbv2", "nets.multitask:joint_refinenet",
              "segment+depth", CAMVID_CLASSES),
    ModelSpec("joint-mbv2-kitti", "joint-mbv2", "nets.multitask:joint_refinenet",
              "segment+depth", numbered_classes(6), depth_range=(0.0, 80.0)),
    ModelSpec("joint-mbv2-nyud", "joint-mbv2", "nets.multitask:joint_refinenet",
              "segment+depth", NYUD40_CLASSES, depth_range=(0.0, 8.0)),
    *(ModelSpec(f"{family}-{kind}", f"{family}-{kind}", "nets.rednet:RedNet", "restore",
                mean=UNIT_MEAN, std=UNIT_STD, kwargs={"depth": depth, "width": 32, **_REDNET_KINDS[kind]})
      for family, depth, kinds in (("rednet", 10, ("denoise", "jpeg", "deblur", "sr2", "sr4")),
                                   ("rednet20", 20, ("jpeg", "sr2")))
      for kind in kinds),
    ModelSpec("siamfc-alexnet", "siamfc-alexnet", "nets.siamese:SiamFCNet", "track",
              mean=UNIT_MEAN, std=UNIT_STD),
)}


def available() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def same_layout(first: str, second: str) -> bool:
    """Whether two registered models are one network (builder, layout, task, classes and
    arguments), so that weights trained for one load into the other."""
    return _network(_registered(first)) == _network(_registered(second))


def _network(model: ModelSpec) -> tuple[Any, ...]:
    return model.builder, model.arch, model.task, model.classes, dict(model.kwargs)


def _registered(name: str) -> ModelSpec:
    """The registered spec of ``name`` (without manifest data); an unknown name is an error."""
    if name not in _REGISTRY:
        raise NetsError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def _manifest(weights_dir: Path) -> dict[str, Any]:
    path = weights_dir / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NetsError(f"weights manifest not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise NetsError(f"cannot read weights manifest {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise NetsError(f"weights manifest {path} must be an object with a 'models' object")
    return data["models"]


def spec(name: str, weights_dir: str | Path | None = None) -> ModelSpec:
    """The spec of a registered model, with its shipped weights and metrics when listed."""
    registered = _registered(name)
    entry = _manifest(Path(weights_dir) if weights_dir else WEIGHTS_DIR).get(name)
    if entry is None:
        return registered
    if not (isinstance(entry, dict) and isinstance(entry.get("file"), str)
            and isinstance(entry.get("sha256"), str)):
        raise NetsError(f"manifest entry for {name!r} needs string 'file' and 'sha256' fields")
    if not isinstance(entry.get("metrics", {}), dict):
        raise NetsError(f"manifest entry for {name!r} has 'metrics' that is not an object")
    return dataclasses.replace(registered, weights=entry["file"], sha256=entry["sha256"].lower(),
                               metrics=dict(entry.get("metrics", {})), eval_size=_size(entry.get("eval_size"), name),
                               cpu_fps=entry.get("fps_cpu_480x360"), data=entry.get("data"))


def _size(text: Any, name: str) -> tuple[int, int] | None:
    """A manifest 'WIDTHxHEIGHT' as (width, height); None when absent."""
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError:
        raise NetsError(f"manifest entry for {name!r} has eval_size {text!r}, not WIDTHxHEIGHT") from None


def _builder(path: str) -> Callable[..., nn.Module]:
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise NetsError(f"cannot import model builder {path!r}: {exc}") from None


def _build_from(model_spec: ModelSpec, overrides: Mapping[str, Any]) -> nn.Module:
    kwargs: dict[str, Any] = {"num_classes": len(model_spec.classes)} if model_spec.classes else {}
    kwargs.update(model_spec.kwargs)
    kwargs.update(overrides)
    try:
        return _builder(model_spec.builder)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise NetsError(f"cannot build {model_spec.name!r}: {exc}") from None


def build(name: str, **overrides: Any) -> nn.Module:
    """A randomly initialised model; ``overrides`` replace the registered builder arguments."""
    return _build_from(spec(name), overrides)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load(name: str, weights_dir: str | Path | None = None) -> tuple[nn.Module, ModelSpec]:
    """A registered model with its shipped weights (sha256-checked, fp32), in eval mode.
    ``weights_dir`` (default ``nets/weights``) holds the manifest and the weight files."""
    weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    model_spec = spec(name, weights_dir)
    if model_spec.weights is None:
        raise NetsError(f"model {name!r} has no shipped weights; build it untrained with build() "
                        f"or import a published checkpoint with import_checkpoint()")
    path = weights_dir / model_spec.weights
    if not path.is_file():
        raise NetsError(f"weights file for {name!r} not found: {path}")
    actual = sha256_of(path)
    if actual != model_spec.sha256:
        raise NetsError(f"weights file {path} fails its checksum (sha256 {actual[:12]}..., "
                        f"manifest says {model_spec.sha256[:12]}...)")
    model = _build_from(model_spec, {})
    load_state_strict(model, read_state_dict(path), path)
    return model.eval(), model_spec


@dataclass(frozen=True)
class _Layout:
    """A published checkpoint layout: builder, task, the tensor giving the class count (None for
    a class-free tracker), builder kwargs and the tracker settings its weights were trained for."""

    builder: str
    task: str
    head: str | None
    kwargs: Mapping[str, Any]
    tracker: Mapping[str, Any] = field(default_factory=dict)


def _layouts() -> dict[str, _Layout]:
    layouts = {
        "lwrefinenet-mbv2": _Layout("nets.refinenet:lw_refinenet_mobilenet", "segment", "segm.weight", {}),
        "joint-mbv2": _Layout("nets.multitask:joint_refinenet", "segment+depth", "segm.weight", {}),
        "mobilenet_v2": _Layout("nets.backbones:mobilenet_v2", "classify", "classifier.1.weight", {}),
        # huanglianghua/siamfc-pytorch's AlexNetV1 + SiamFC head (siamfc_alexnet_e50.pth): the same
        # network as ours; trained and published with the plain cross-correlation response.
        "siamfc-alexnet": _Layout("nets.siamese:SiamFCNet", "track", None, {}, {"centre_exemplar": False}),
    }
    for depth in RESNET_CONFIGS:
        layouts[f"lwrefinenet-r{depth}"] = _Layout("nets.refinenet:lw_refinenet_resnet", "segment",
                                                   "clf_conv.weight", {"depth": depth})
        layouts[f"refinenet-r{depth}"] = _Layout("nets.refinenet:refinenet", "segment",
                                                 "clf_conv.weight", {"depth": depth})
        layouts[f"resnet{depth}"] = _Layout("nets.backbones:resnet", "classify", "fc.weight", {"depth": depth})
    return layouts


LAYOUTS = _layouts()


def _resnet_depth(state: Mapping[str, Tensor]) -> int | None:
    """The ResNet depth whose block type and per-stage block counts match the encoder keys."""
    bottleneck = "layer1.0.conv3.weight" in state
    counts = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5))
    for depth, (block, layers) in RESNET_CONFIGS.items():
        if layers == counts and (block.expansion == 4) == bottleneck:
            return depth
    return None


def _detect(state: Mapping[str, Tensor]) -> str | None:
    """Which published layout a state dict is in, or None."""
    if "pre_depth.weight" in state and "segm.weight" in state:
        return "joint-mbv2"
    if "conv8.weight" in state and "segm.weight" in state:
        return "lwrefinenet-mbv2"
    if "features.0.0.weight" in state and "classifier.1.weight" in state:
        return "mobilenet_v2"
    if "backbone.conv1.0.weight" in state and "backbone.conv5.0.weight" in state:
        return "siamfc-alexnet"
    depth = _resnet_depth(state)
    if depth is None:
        return None
    if "p_ims1d2_outl1_dimred.weight" in state:
        return f"lwrefinenet-r{depth}"
    if "refine4.crp.convs.0.weight" in state:
        return f"refinenet-r{depth}"
    if "fc.weight" in state:
        return f"resnet{depth}"
    return None


def _decoder_channels(arch: str, state: Mapping[str, Tensor]) -> dict[str, Any]:
    if arch in ("lwrefinenet-mbv2", "joint-mbv2") and "conv8.weight" in state:
        return {"decoder_channels": state["conv8.weight"].shape[0]}
    return {}


def _spec_for(arch: str, layout: _Layout, num_classes: int, kwargs: Mapping[str, Any]) -> ModelSpec:
    """The registered spec of the same layout and class count, else a generic one; either with the
    layout's tracker settings."""
    for registered in _REGISTRY.values():
        if registered.arch == arch and len(registered.classes) == num_classes:
            return dataclasses.replace(registered, kwargs=dict(kwargs), tracker=dict(layout.tracker))
    return ModelSpec(name=f"{arch}-imported", arch=arch, builder=layout.builder, task=layout.task,
                     classes=numbered_classes(num_classes), kwargs=dict(kwargs), tracker=dict(layout.tracker))


def _class_count(state: Mapping[str, Tensor], head: str, arch: str, path: Path) -> int:
    """Rows of the classifier tensor ``head``; an error when it is absent."""
    weight = state.get(head)
    if weight is None or weight.dim() < 2:
        raise NetsError(f"checkpoint {path} is not a {arch} checkpoint: no {head} tensor")
    return int(weight.shape[0])


def import_checkpoint(path: str | Path, arch: str | None = None) -> tuple[nn.Module, ModelSpec]:
    """Load a published checkpoint (LW-RefineNet ResNet/MobileNet-v2, also as saved by its train
    script, joint KITTI/NYUD, torchvision ResNet/MobileNet-v2, the PyTorch SiamFC AlexNet, or our
    own RefineNet) strictly, detecting its layout unless ``arch`` names one of ``LAYOUTS``.
    Returns the model in eval mode and its spec."""
    path = Path(path)
    if arch is not None and arch not in LAYOUTS:
        raise NetsError(f"unknown checkpoint layout {arch!r}; known: {', '.join(sorted(LAYOUTS))}")
    state = read_state_dict(path)
    arch = arch or _detect(state)
    if arch is None:
        raise NetsError(f"checkpoint {path} is in none of the known layouts ({', '.join(sorted(LAYOUTS))})")
    layout = LAYOUTS[arch]
    num_classes = 0 if layout.head is None else _class_count(state, layout.head, arch, path)
    kwargs = {**layout.kwargs, **_decoder_channels(arch, state)}
    model_spec = _spec_for(arch, layout, num_classes, kwargs)
    model = _build_from(model_spec, {"num_classes": num_classes} if num_classes else {})
    load_state_strict(model, state, path)
    return model.eval(), model_spec
