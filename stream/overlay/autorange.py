"""A depth colour range that follows the scene: robust percentiles, smoothed over time, held steady."""
from __future__ import annotations

import math

import torch

from .depth import depth_valid

SAMPLES_PER_FRAME = 16384


def nice(value: float) -> float:
    """``value`` rounded to two significant figures (so scale-bar labels stay short)."""
    return float(f"{value:.2g}")


class AutoDepthRange:
    """(near, far) in metres from the ``low`` and ``high`` percentiles of each batch's valid depth.

    The percentiles ignore stray pixels (sky read as 1000 m, a speck at 0.1 m); they are smoothed
    in log depth with an exponential average that gives each new frame the weight ``rate``; and the
    range shown only moves once the smoothed one has drifted more than ``hold`` (a fraction) from
    it, so colours stay put from frame to frame and change in rare small steps. Measuring costs
    one small device-to-host copy per batch.
    """

    def __init__(self, low: float = 2.0, high: float = 98.0, rate: float = 0.1, hold: float = 0.1) -> None:
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
        self.quantiles = torch.tensor([low / 100.0, high / 100.0])
        self.rate = rate
        self.hold = math.log1p(hold)
        self._smoothed: tuple[float, float] | None = None
        self.shown: tuple[float, float] | None = None

    def update(self, depth: torch.Tensor) -> tuple[float, float] | None:
        """Take one N x H x W batch of depth; return the range to draw it with (None until a
        batch holds any valid depth)."""
        count, height, width = depth.shape
        step = max(1, math.isqrt(height * width // SAMPLES_PER_FRAME))  # a strided sample is plenty for percentiles
        sample = depth[:, ::step, ::step].float()
        values = sample[depth_valid(sample)]
        if values.numel() == 0:
            return self.shown
        near, far = torch.quantile(values, self.quantiles.to(values.device)).clamp_min(1e-3).log().tolist()
        if self._smoothed is None:
            self._smoothed = (near, far)
        else:
            weight = 1.0 - (1.0 - self.rate) ** count
            self._smoothed = tuple(old + weight * (new - old) for old, new in zip(self._smoothed, (near, far)))
        if self.shown is None or any(abs(s - math.log(v)) > self.hold for s, v in zip(self._smoothed, self.shown)):
            low, high = (math.exp(v) for v in self._smoothed)
            low = nice(low)
            self.shown = (low, max(nice(high), nice(low * 1.5)))
        return self.shown
