"""Precise BatchNorm statistics: before a model is evaluated, its running means and variances
are re-estimated as the plain average over a fixed set of training batches.

During training they are an exponential average of the last few dozen batches, and when every
batch mixes data sets (CamVid, IDD-lite, synthetic towns) at random, that average swings with the
mix of the last batches: the same weights then score very differently from one evaluation to
the next. A fixed set of batches, averaged with equal weight, removes that noise."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

__all__ = ["recalibrate_batchnorm"]


def recalibrate_batchnorm(model: nn.Module, inputs: Iterable[Tensor],
                          forward: Callable[[nn.Module, Tensor], object] | None = None) -> int:
    """Replace every BatchNorm layer's running statistics by their average over the batches
    ``inputs`` (network inputs, already normalised), leaving the weights alone; returns the number
    of batches used. ``forward(model, x)`` runs the model (default ``model(x)``). The model is
    left in the mode it was in."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every batch counts the same
    model.train()
    count = 0
    try:
        with torch.no_grad():
            for batch in inputs:
                (forward or (lambda net, x: net(x)))(model, batch)
                count += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return count
