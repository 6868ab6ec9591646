"""Base colours (linear RGB albedo) of painted and planted surfaces: the default palettes and the
``Paints`` set a town is built with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FACADES = np.array([
    (0.55, 0.48, 0.38), (0.45, 0.18, 0.12), (0.42, 0.42, 0.42), (0.7, 0.68, 0.62), (0.66, 0.58, 0.36),
    (0.35, 0.26, 0.2), (0.36, 0.4, 0.46), (0.6, 0.42, 0.32), (0.25, 0.25, 0.27), (0.62, 0.55, 0.5),
])
CAR_COLOURS = np.array([
    (0.8, 0.8, 0.8), (0.03, 0.03, 0.035), (0.45, 0.46, 0.48), (0.5, 0.04, 0.03), (0.05, 0.12, 0.4),
    (0.2, 0.2, 0.22), (0.7, 0.6, 0.45), (0.08, 0.25, 0.12), (0.85, 0.55, 0.05), (0.6, 0.62, 0.66),
])
FOLIAGE = np.array([0.09, 0.2, 0.05])


@dataclass(frozen=True)
class Paints:
    """Facade palette (10 x 3; a town picks 5), car and bicycle paints (10 x 3) and the mean
    foliage colour (3)."""

    facades: np.ndarray = field(default_factory=lambda: FACADES)
    cars: np.ndarray = field(default_factory=lambda: CAR_COLOURS)
    foliage: np.ndarray = field(default_factory=lambda: FOLIAGE)
