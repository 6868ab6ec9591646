"""Training recipes: one small frozen dataclass per shipped weight, sized for a 2-core CPU by
default; ``recipe(name, gpu=True)`` applies the recipe's full-resolution GPU settings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nets import sizes
from nets.errors import NetsError, first_line

__all__ = ["Recipe", "RECIPES", "ZOO_INIT", "INIT_RECORD", "shipped_entry", "OPTIONAL_OPTIONS", "recipe", "run_recipe",
           "parse_size", "default_camvid_root"]

OBJECTIVES = ("segment", "segment-roads", "joint", "joint-roads", "restore", "track")
ZOO_INIT = "zoo:"  # ``init`` prefix naming shipped weights (``zoo:MODEL``) instead of a run folder
INIT_RECORD = "init.json"  # a run's copy of the manifest entry of the shipped weights it started from
_DISTILL = ("distill_weight", "teacher", "distill_on")  # teaching a shipped model's scores, off unless set
OPTIONAL_OPTIONS = {"restore": ("source_scale",), "segment-roads": _DISTILL,  # options an objective reads only when present
                    "joint-roads": ("plane_weight", "plane_log_weight", "contact_moves_ground", "synth_crop", *_DISTILL)}
OPTIMISERS = ("adamw", "sgd")
SCHEDULES = ("poly", "cosine")


def default_camvid_root() -> str:
    """CamVid next to the repository (``../shared/data/camvid``), the development machine's layout."""
    return str(Path(__file__).resolve().parents[3] / "shared" / "data" / "camvid")


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run. ``size`` is the training crop (width, height);
    ``eval_size`` the (width, height) frames are evaluated at; ``options`` holds the
    objective's own settings (see docs/training.md); ``init`` is a run folder whose best weights
    this run starts from (a fine-tuning stage; empty for random initialisation); ``ema`` is the
    decay of an exponential moving average of the weights that is evaluated and kept as the
    best weights instead of the raw ones (0: off)."""

    name: str
    model: str
    objective: str
    data: str
    size: tuple[int, int]
    eval_size: tuple[int, int]
    batch: int
    steps: int
    lr: float
    optimiser: str = "adamw"
    weight_decay: float = 1e-4
    schedule: str = "poly"
    warmup: int = 0
    seed: int = 0
    camvid_root: str = field(default_factory=default_camvid_root)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 50
    checkpoint_minutes: float = 10.0
    eval_every: int = 0
    log_every: int = 10
    gpu: Mapping[str, Any] = field(default_factory=dict)
    init: str = ""
    ema: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.optimiser not in OPTIMISERS:
            problems.append(f"optimiser must be one of {OPTIMISERS}, got {self.optimiser!r}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.batch < 1 or self.steps < 1 or not self.lr > 0:
            problems.append(f"batch, steps and lr must be positive, got {self.batch}, {self.steps}, {self.lr}")
        if min(*self.size, *self.eval_size) < 8:
            problems.append(f"size and eval_size must be at least 8x8, got {self.size} and {self.eval_size}")
        if self.checkpoint_every < 1 or self.eval_every < 0 or self.log_every < 1 or self.warmup < 0:
            problems.append("checkpoint_every and log_every must be >= 1, eval_every and warmup >= 0")
        if not 0.0 <= self.ema < 1.0:
            problems.append(f"ema must be in [0, 1), got {self.ema}")
        if problems:
            raise NetsError(f"recipe {self.name!r}: {'; '.join(problems)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Recipe:
        """The recipe saved by ``to_dict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise NetsError(f"saved recipe has unknown fields: {', '.join(unknown)}")
        fixed = {k: tuple(v) if k in ("size", "eval_size") else v for k, v in values.items()}
        return cls(**fixed)


def run_recipe(run_dir: str | Path) -> Recipe:
    """The recipe a run folder was trained with (its ``recipe.json``)."""
    try:
        return Recipe.from_dict(json.loads((Path(run_dir) / "recipe.json").read_text()))
    except (OSError, ValueError) as exc:  # missing, unreadable or malformed recipe.json
        raise NetsError(f"cannot read the recipe of run {run_dir}: {first_line(exc)}") from None


def shipped_entry(model: str) -> dict[str, Any]:
    """The manifest entry of a model's shipped weights (how they were trained and score)."""
    path = Path(__file__).resolve().parents[1] / "weights" / "manifest.json"
    try:
        entry = json.loads(path.read_text())["models"][model]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetsError(f"no shipped weights of {model!r} in {path}: {first_line(exc)}") from None
    return dict(entry)


def parse_size(text: str) -> tuple[int, int]:
    """'240x180' → (240, 180), both sides at least 8."""
    try:
        return sizes.parse_size(text, minimum=8)
    except ValueError:
        raise NetsError(f"size must look like WIDTHxHEIGHT with both at least 8, got {text!r}") from None


_CAMVID = "CamVid train (367 frames), selected on CamVid val (101 frames)"

_CAMVID_IDD = ("CamVid train (367 frames, fine labels) and IDD-lite (real Indian roads, coarse group labels; "
               "research use only) minus every 5th sequence, both with strong photometric augmentation")
_ROAD_OPTIONS = {"class_weighting": "median", "scale": (0.5, 2.0), "jitter": 0.0, "aspect": 0.15,
                 "idd_share": 0.45, "idd_scale": (0.75, 1.6), "idd_weight": 1.0, "idd_val_every": 5,
                 "photometric": True, "clip_frames": 45}

_TRACK_OPTIONS = {
    "train_towns": list(range(2000, 2012)), "frames_per_town": 40, "frame_step": 2, "max_gap": 5, "min_side": 10,
    "camvid_share": 0.5, "region_sides": (24.0, 120.0), "stretch": 0.1, "max_shift": 4.0, "jitter": 0.2,
    "radius": 16.0, "val_towns": list(range(8100, 8140)), "val_sequences": 4, "test_towns": list(range(9100, 9160)),
    "test_sequences": 10, "sequence_frames": 60, "lost_thresholds": [-1.0, 0.15, 0.3, 0.45],
}

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("seg-camvid", "lwrefinenet-mbv2-camvid", "segment", _CAMVID,
           size=(240, 180), eval_size=(480, 360), batch=6, steps=1800, lr=1e-3, weight_decay=1e-4,
           schedule="poly", warmup=20, eval_every=300,
           options={"class_weighting": "median", "scale": (0.5, 2.0), "jitter": 0.3},
           gpu={"size": (480, 360), "batch": 16, "steps": 12000, "eval_every": 1000, "warmup": 200}),
    Recipe("seg-roads", "lwrefinenet-mbv2-camvid", "segment-roads",
           _CAMVID_IDD + "; selected on the mean of CamVid val mIoU and the held-out IDD-lite sequences' group mIoU",
           size=(240, 180), eval_size=(480, 360), batch=6, steps=2400, lr=3e-4, weight_decay=1e-4,
           schedule="poly", warmup=50, eval_every=300, init=ZOO_INIT + "lwrefinenet-mbv2-camvid",
           options=_ROAD_OPTIONS,
           gpu={"size": (480, 360), "batch": 16, "steps": 12000, "eval_every": 1000, "warmup": 200}),
    Recipe("joint-roads", "joint-mbv2-camvid", "joint-roads",
           _CAMVID_IDD + "; domain-randomised synthetic towns 3000-3063 (labels + metric depth), held-out towns "
           "9000-9003; real frames' depth supervised by the ground-plane geometry their labels imply; selected on "
           "the mean of CamVid val mIoU, held-out IDD-lite group mIoU, held-out towns' delta<1.25 and the share "
           "of CamVid val cars as far as the road below them",
           size=(240, 180), eval_size=(240, 180), batch=6, steps=1600, lr=3e-4, schedule="poly", warmup=50,
           eval_every=400, init=ZOO_INIT + "joint-mbv2-camvid",
           options={**_ROAD_OPTIONS, "synth_share": 0.35, "randomise": True, "depth_weight": 0.1,
                    "geometry_weight": 0.5, "ground_margin": 0.004, "max_depth": 80.0,
                    "train_towns": list(range(3000, 3064)), "frames_per_town": 8, "frame_step": 29,
                    "eval_towns": list(range(9000, 9004)), "eval_frames_per_town": 5, "eval_frame_step": 37},
           gpu={"size": (480, 360), "eval_size": (480, 360), "batch": 16, "steps": 16000,
                "eval_every": 1000, "warmup": 200}),
    Recipe("joint-camvid-synth", "joint-mbv2-camvid", "joint",
           _CAMVID + "; synthetic driving world towns 1000-1007 (labels + depth), held-out towns 9000-9003",
           size=(240, 180), eval_size=(240, 180), batch=6, steps=2000, lr=1e-3, schedule="poly", warmup=20,
           eval_every=400,
           options={"class_weighting": "median", "scale": (0.5, 2.0), "jitter": 0.3, "depth_weight": 0.1,
                    "max_depth": 80.0, "train_towns": list(range(1000, 1008)), "frames_per_town": 40,
                    "frame_step": 5, "eval_towns": list(range(9000, 9004)), "eval_frames_per_town": 5,
                    "eval_frame_step": 37},
           gpu={"size": (480, 360), "eval_size": (480, 360), "batch": 16, "steps": 16000,
                "eval_every": 1000, "warmup": 200}),
    *(Recipe(f"rednet-{name}", f"rednet-{name}", "restore",
             "random patches of CamVid train frames; evaluated on CamVid val frames against " + baseline,
             size=(patch, patch), eval_size=(480, 360), batch=16, steps=4000, lr=1e-4, weight_decay=0.0,
             schedule="cosine", eval_every=1000, options={"eval_images": 10, **options},
             gpu={"batch": 64, "steps": 100000, "eval_every": 5000, "options": {"eval_images": 101, **options}})
      for name, patch, baseline, options in (
          ("denoise", 48, "OpenCV fastNlMeansDenoisingColored",
           {"degradation": "noise", "sigma": (5.0, 50.0), "eval_sigma": 25.0}),
          ("sr2", 48, "bicubic upscaling", {"degradation": "sr", "scale": 2}),
          ("sr4", 48, "bicubic upscaling", {"degradation": "sr", "scale": 4}),
          ("jpeg", 48, "the decoded JPEG",
           {"degradation": "jpeg", "quality": (10, 40), "eval_quality": 20}),
          ("deblur", 48, "the blurred frame and OpenCV unsharp masking",
           {"degradation": "blur", "noise_sigma": (0.0, 2.0), "eval_noise_sigma": 0.0}))),
    Recipe("siamfc-synth", "siamfc-alexnet", "track",
           "exemplar/search pairs from synthetic towns 2000-2011 (one track, frames at most 10 apart) and "
           "jittered views of CamVid train regions; lost threshold picked on towns 8100+, one-pass success AUC "
           "on held-out towns 9100+ (10 sequences of 60 frames) against OpenCV TrackerMIL",
           size=(480, 360), eval_size=(480, 360), batch=8, steps=2000, lr=1e-2, optimiser="sgd",
           weight_decay=5e-4, schedule="cosine", warmup=50, eval_every=0, options=_TRACK_OPTIONS,
           gpu={"batch": 32, "steps": 20000, "eval_every": 5000,
                "options": {**_TRACK_OPTIONS, "train_towns": list(range(2000, 2064))}}),
)}


RECIPES.update({f"rednet20-{task}": dataclasses.replace(RECIPES[f"rednet-{task}"], name=f"rednet20-{task}",
                                                         model=f"rednet20-{task}") for task in ("jpeg", "sr2")})


def recipe(name: str, gpu: bool = False, **overrides: Any) -> Recipe:
    """A registered recipe, with its GPU settings when ``gpu`` and then ``overrides`` applied."""
    if name not in RECIPES:
        raise NetsError(f"unknown recipe {name!r}; available: {', '.join(sorted(RECIPES))}")
    base = RECIPES[name]
    changes: dict[str, Any] = dict(base.gpu) if gpu else {}
    changes.update(overrides)
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Recipe)})
    if unknown:
        raise NetsError(f"recipe {name!r} has no setting {', '.join(unknown)}")
    return dataclasses.replace(base, **changes)
