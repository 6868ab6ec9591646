"""Running a dense network at another size than its input, with the outputs brought back."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["run_at_size"]


def run_at_size(model: torch.nn.Module, inputs: torch.Tensor, size: tuple[int, int] | None):
    """``model(inputs)`` with ``inputs`` resized to ``size`` (width, height) when given
    (antialiased, so shrinking averages rather than skips pixels), and each output tensor (or
    each of a tuple) resized back to the inputs' height and width, bilinearly. The product and the
    evaluation both run their networks through this, so reported metrics match what users get."""
    height, width = inputs.shape[-2:]
    if size is None or tuple(size) == (width, height):
        return model(inputs)
    outputs = model(F.interpolate(inputs, size=(size[1], size[0]), mode="bilinear", align_corners=False,
                                  antialias=True))

    def back(tensor: torch.Tensor) -> torch.Tensor:
        return F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)

    return tuple(back(t) for t in outputs) if isinstance(outputs, tuple) else back(outputs)
