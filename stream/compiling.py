"""Optional ``torch.compile`` of a task's networks, with an eager fallback.

Compiling fuses the networks' element-wise work into their convolutions: on the 2-core dev CPU
it made the joint seg+depth model 1.6-1.7x faster at 480x360 (bf16; e.g. 335 -> 206 ms a frame),
after a compile of one to two minutes the first time (about 10 s once torch's compile cache holds
that model and size). ``auto`` therefore compiles only long offline runs, where that start-up
cost pays for itself; ``on`` always, ``off`` never. A compiler that fails (no C++
compiler, no Triton) is reported once and the run goes on eagerly.
"""

from __future__ import annotations

import importlib.util
import shutil
import warnings
from typing import Any

import torch
from torch import nn

from .errors import DenseStreamError, describe_error

__all__ = ["COMPILE_CHOICES", "AUTO_COMPILE_MIN_FRAMES", "should_compile", "compiler_missing",
           "CompiledModel", "compile_task"]

COMPILE_CHOICES = ("auto", "on", "off")
AUTO_COMPILE_MIN_FRAMES = 3000
"""Offline runs at least this long (2 minutes of 25 fps video) are compiled under ``auto``."""


def should_compile(choice: str, live: bool, frames: int | None) -> bool:
    """Whether ``choice`` compiles a run of ``frames`` frames (None: unknown) from a live or
    offline source."""
    if choice not in COMPILE_CHOICES:
        raise DenseStreamError(f"unknown compile choice {choice!r} (choose from {', '.join(COMPILE_CHOICES)})")
    if choice != "auto":
        return choice == "on"
    return not live and frames is not None and frames >= AUTO_COMPILE_MIN_FRAMES


def compiler_missing(device: torch.device) -> str | None:
    """Why torch.compile cannot build kernels for ``device`` here, or None."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    if device.type == "cpu" and not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        return "no C++ compiler (g++, c++ or clang++) on PATH"
    return None


class CompiledModel(nn.Module):
    """A network run through ``torch.compile``; the first failure of the compiled version warns
    once and the eager network serves from then on. A batch smaller than the first one (the
    end of a stream) is padded to that size so that no second compile is triggered."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # not a registered submodule: it shares the eager network's parameters
        object.__setattr__(self, "_compiled", torch.compile(model, dynamic=False))
        self._batch: int | None = None

    def forward(self, images: torch.Tensor) -> Any:
        if self._compiled is None:
            return self.model(images)
        count = images.shape[0]
        self._batch = self._batch or count
        padded = images
        if count < self._batch:
            filler = images[-1:].expand(self._batch - count, *images.shape[1:])
            padded = torch.cat([images, filler])
        try:
            result = self._compiled(padded)
        except Exception as error:  # noqa: BLE001 - any compiler failure: warn once, run eagerly
            warnings.warn(f"torch.compile failed ({describe_error(error)[:200]}); running eagerly")
            self._compiled = None
            return self.model(images)
        if count == padded.shape[0]:
            return result
        if isinstance(result, tuple):
            return tuple(part[:count] for part in result)
        return result[:count]


def compile_task(task: Any, device: torch.device) -> int:
    """Wrap the networks of ``task`` (and of a combined task's parts) in ``CompiledModel``;
    returns how many were wrapped (0, with a warning, when no compiler is available). The
    tracker is left eager: its per-frame crops change shape with the target."""
    reason = compiler_missing(device)
    if reason:
        warnings.warn(f"torch.compile unavailable: {reason}; running eagerly")
        return 0
    wrapped = 0
    for part in getattr(task, "tasks", [task]):
        model = getattr(part, "model", None)
        if isinstance(model, nn.Module) and not isinstance(model, CompiledModel):
            part.model = CompiledModel(model)
            wrapped += 1
    return wrapped
