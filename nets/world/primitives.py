"""Analytic scene primitives (boxes, vertical cylinders, ellipsoids) stored as arrays."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch


class Kind(IntEnum):
    """Geometric shape of a primitive; all are described by a centre and half extents."""

    BOX = 0
    CYLINDER = 1
    ELLIPSOID = 2


class Material(IntEnum):
    """How a primitive's surface is textured and lit (see textures.py)."""

    PLAIN = 0
    FACADE = 1
    CAR_BODY = 2
    CAR_CABIN = 3
    FOLIAGE = 4
    BARK = 5
    METAL = 6
    SIGN = 7
    FENCE = 8
    RUBBER = 9
    CLOTH = 10
    TRAFFIC_LIGHT = 11


@dataclass
class Primitives:
    """Struct of arrays: one row per primitive.

    ``center``/``half`` give the axis-aligned box, the cylinder (radius in x and z, half height
    in y) or the ellipsoid radii. ``param`` holds four material-specific numbers and ``agent``
    the index of the moving agent a primitive belongs to (-1 for static scenery).
    """

    kind: np.ndarray
    center: np.ndarray
    half: np.ndarray
    label: np.ndarray
    material: np.ndarray
    colour: np.ndarray
    param: np.ndarray
    agent: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @staticmethod
    def empty() -> Primitives:
        """A set with no primitives."""
        return Primitives(
            np.zeros(0, np.int64), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32),
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.float32),
            np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
        )

    @staticmethod
    def concat(parts: list[Primitives]) -> Primitives:
        """Join several sets into one, keeping their order."""
        parts = [p for p in parts if len(p)] or [Primitives.empty()]
        return Primitives(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def select(self, keep: np.ndarray) -> Primitives:
        """The rows where ``keep`` is true (or at the given indices)."""
        return Primitives(*(getattr(self, f)[keep] for f in _FIELDS))

    def to_torch(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Tensors on ``device`` keyed by field name (floats as float32, ints as int64)."""
        return {f: torch.from_numpy(np.ascontiguousarray(getattr(self, f))).to(device) for f in _FIELDS}


_FIELDS = ("kind", "center", "half", "label", "material", "colour", "param", "agent")


class PrimitiveBuilder:
    """Collects primitives one by one, then freezes them into a ``Primitives`` set."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(self, kind: Kind, center, half, label: int, material: Material, colour,
            param=(0.0, 0.0, 0.0, 0.0), agent: int = -1) -> None:
        """Append one primitive; sizes are in metres, colours linear RGB in 0..1."""
        if min(half) <= 0:
            raise ValueError(f"primitive half extents must be positive, got {tuple(half)}")
        self._rows.append((int(kind), center, half, label, int(material), colour, param, agent))

    def box(self, lo, hi, label: int, material: Material, colour, param=(0.0, 0.0, 0.0, 0.0),
            agent: int = -1) -> None:
        """Append an axis-aligned box given by its min and max corners."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self.add(Kind.BOX, (lo + hi) / 2, (hi - lo) / 2, label, material, colour, param, agent)

    def build(self) -> Primitives:
        """The collected primitives as arrays."""
        if not self._rows:
            return Primitives.empty()
        cols = list(zip(*self._rows))
        return Primitives(
            np.asarray(cols[0], np.int64), np.asarray(cols[1], np.float32),
            np.asarray(cols[2], np.float32), np.asarray(cols[3], np.int64),
            np.asarray(cols[4], np.int64), np.asarray(cols[5], np.float32),
            np.asarray(cols[6], np.float32), np.asarray(cols[7], np.int64),
        )
