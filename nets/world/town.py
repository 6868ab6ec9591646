"""Seeded static town: blocks of buildings, street furniture and trees along the main street.

The street is cut into blocks of equal length; block ``k`` is generated from (seed, k) alone, so
any stretch of the town can be built in any order and always comes out the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import BUILDING, FENCE, POLE, SIGN, TREE
from .paints import FACADES, Paints
from .primitives import Kind, Material, PrimitiveBuilder, Primitives
from .seeding import generator
from .scene import Lighting, Street

@dataclass(frozen=True)
class TownStyle:
    """Per-town knobs drawn once from the seed."""

    block_length: float
    cross_width: float
    cross_prob: float
    height_range: tuple[float, float]
    palette: tuple[int, ...]
    tree_prob: float
    sign_prob: float
    railing_prob: float
    yard_prob: float
    lamp_spacing: float

    @staticmethod
    def draw(seed: int) -> TownStyle:
        rng = generator(seed, 1)
        low = rng.uniform(5.0, 14.0)
        return TownStyle(
            block_length=float(rng.uniform(80.0, 130.0)),
            cross_width=float(rng.uniform(11.0, 16.0)),
            cross_prob=float(rng.uniform(0.4, 0.9)),
            height_range=(low, low + float(rng.uniform(8.0, 35.0))),
            palette=tuple(int(i) for i in rng.choice(len(FACADES), size=5, replace=False)),
            tree_prob=float(rng.uniform(0.2, 0.9)),
            sign_prob=float(rng.uniform(0.2, 0.6)),
            railing_prob=float(rng.uniform(0.1, 0.5)),
            yard_prob=float(rng.uniform(0.03, 0.2)),
            lamp_spacing=float(rng.uniform(22.0, 34.0)),
        )


def draw_lighting(seed: int) -> Lighting:
    """Seeded daylight: sun height and direction, sky tint, haze and cloudiness."""
    rng = generator(seed, 2)
    warmth = rng.uniform(0.0, 1.0)
    haze = rng.uniform(0.0, 1.0)
    return Lighting.from_angles(
        float(rng.uniform(22.0, 65.0)), float(rng.uniform(0.0, 360.0)),
        sun_colour=(1.0, 0.97 - 0.08 * warmth, 0.92 - 0.2 * warmth),
        sky_zenith=(0.16 + 0.1 * haze, 0.33 + 0.1 * haze, 0.72 + 0.05 * haze),
        sky_horizon=(0.66 + 0.1 * warmth, 0.74 + 0.05 * haze, 0.86),
        ambient=(0.25 + 0.05 * haze, 0.3 + 0.04 * haze, 0.38),
        fog_distance=float(900.0 - 500.0 * haze),
        cloud_cover=float(rng.uniform(0.1, 0.6)),
    )


@dataclass(frozen=True)
class Block:
    """One generated stretch of street: an optional cross street and its static primitives."""

    cross: tuple[float, float] | None
    primitives: Primitives


class Town:
    """The static part of a seeded world, generated block by block on demand."""

    def __init__(self, seed: int, paints: Paints | None = None) -> None:
        self.seed = seed
        self.paints = paints if paints is not None else Paints()
        self.style = TownStyle.draw(seed)
        self.street = Street(pavement_width=float(generator(seed, 3).uniform(3.5, 5.0)))
        self.lighting = draw_lighting(seed)
        self._cache: dict[int, Block] = {}

    def block(self, k: int) -> Block:
        """Block ``k``, covering z in [k, k + 1) block lengths."""
        if k not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[k] = self._generate(k)
        return self._cache[k]

    def blocks_between(self, z0: float, z1: float) -> list[Block]:
        """All blocks overlapping z in [z0, z1]."""
        length = self.style.block_length
        return [self.block(k) for k in range(int(np.floor(z0 / length)), int(np.floor(z1 / length)) + 1)]

    def _generate(self, k: int) -> Block:
        rng = generator(self.seed, 10, k)
        style = self.style
        start = k * style.block_length
        end = start + style.block_length
        cross = None
        if rng.random() < style.cross_prob:
            cross = (end - style.cross_width, end)
            end = cross[0]
        out = PrimitiveBuilder()
        for side in (-1.0, 1.0):
            self._buildings(out, rng, side, start, end)
            self._back_row(out, rng, side, start, end)
            self._furniture(out, rng, side, start, end, cross)
        return Block(cross, out.build())

    def _facade(self, rng: np.random.Generator) -> np.ndarray:
        base = self.paints.facades[rng.choice(self.style.palette)]
        return np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0.0, 0.025, 3), 0.03, 0.9)

    def _facade_param(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        return (float(rng.uniform(3.0, 3.8)), float(rng.uniform(2.0, 3.6)), float(rng.uniform(0.35, 0.65)),
                float(rng.random()))

    def _buildings(self, out: PrimitiveBuilder, rng: np.random.Generator, side: float, start: float,
                   end: float) -> None:
        x_front = self.street.building_x
        z = start
        lo_h, hi_h = self.style.height_range
        while z < end - 1.0:
            width = min(float(rng.uniform(8.0, 26.0)), end - z)
            if end - z - width < 5.0:
                width = end - z
            if rng.random() < 0.12 and width > 6.0:
                z += float(rng.uniform(2.0, 4.0))
                width = min(width, end - z)
            if rng.random() < self.style.yard_prob:
                self._yard(out, rng, side, z, z + width)
            else:
                setback = float(rng.uniform(0.0, 1.2)) if rng.random() < 0.4 else 0.0
                depth = float(rng.uniform(10.0, 22.0))
                height = float(rng.uniform(lo_h, hi_h))
                x0, x1 = x_front + setback, x_front + setback + depth
                _side_box(out, side, (x0, x1), (0.0, height), (z, z + width), BUILDING, Material.FACADE,
                          self._facade(rng), self._facade_param(rng))
            z += width

    def _yard(self, out: PrimitiveBuilder, rng: np.random.Generator, side: float, z0: float, z1: float) -> None:
        x = self.street.building_x + 0.2
        height = float(rng.uniform(1.2, 2.2))
        _side_box(out, side, (x, x + 0.08), (0.0, height), (z0, z1), FENCE, Material.FENCE,
                  np.array([0.38, 0.27, 0.17]) * rng.uniform(0.7, 1.2, 3))
        for _ in range(int(rng.integers(1, 4))):
            self._tree(out, rng, side * (x + rng.uniform(3.0, 8.0)), float(rng.uniform(z0 + 2, max(z0 + 2.1, z1 - 2))))

    def _back_row(self, out: PrimitiveBuilder, rng: np.random.Generator, side: float, start: float,
                  end: float) -> None:
        lo_h, hi_h = self.style.height_range
        for _ in range(int(rng.integers(1, 3))):
            x0 = float(rng.uniform(35.0, 60.0))
            width = float(rng.uniform(12.0, 30.0))
            z0 = float(rng.uniform(start, max(start + 0.1, end - width)))
            height = float(rng.uniform(hi_h, hi_h + 30.0))
            _side_box(out, side, (x0, x0 + 20.0), (0.0, height), (z0, min(z0 + width, end)), BUILDING,
                      Material.FACADE, self._facade(rng), self._facade_param(rng))

    def _furniture(self, out: PrimitiveBuilder, rng: np.random.Generator, side: float, start: float, end: float,
                   cross: tuple[float, float] | None) -> None:
        curb = self.street.curb_x
        spacing = self.style.lamp_spacing
        z = start + float(rng.uniform(2.0, spacing))
        while z < end - 2.0:
            self._lamp(out, side, curb + 0.4, z)
            mid = z + spacing / 2
            if mid < end - 2.0:
                if rng.random() < self.style.tree_prob:
                    self._tree(out, rng, side * (curb + 1.3), mid)
                elif rng.random() < self.style.sign_prob:
                    self._sign(out, rng, side, curb + 0.3, mid)
            z += spacing
        if cross is not None:
            self._traffic_light(out, side, curb + 0.5, cross[0] - 1.5 if side > 0 else cross[1] + 1.5,
                                float(rng.integers(0, 3)))
            if rng.random() < self.style.railing_prob:
                length = float(rng.uniform(8.0, 20.0))
                z0 = cross[0] - 1.0 - length if side > 0 else cross[1] + 1.0
                self._railing(out, side, curb + 0.15, max(start, z0), z0 + length)

    def _lamp(self, out: PrimitiveBuilder, side: float, x: float, z: float) -> None:
        metal = (0.25, 0.26, 0.27)
        out.add(Kind.CYLINDER, (side * x, 3.75, z), (0.09, 3.75, 0.09), POLE, Material.METAL, metal)
        arm_end = x - 1.8
        _side_box(out, side, (arm_end, x), (7.3, 7.42), (z - 0.05, z + 0.05), POLE, Material.METAL, metal)
        _side_box(out, side, (arm_end - 0.25, arm_end + 0.35), (7.18, 7.34), (z - 0.15, z + 0.15), POLE,
                  Material.METAL, (0.5, 0.5, 0.48))

    def _sign(self, out: PrimitiveBuilder, rng: np.random.Generator, side: float, x: float, z: float) -> None:
        out.add(Kind.CYLINDER, (side * x, 1.35, z), (0.045, 1.35, 0.045), POLE, Material.METAL, (0.4, 0.4, 0.4))
        facing = -side
        kind = float(rng.integers(0, 3))
        out.box((side * x - 0.35, 2.0, z - 0.02 * facing - 0.02), (side * x + 0.35, 2.7, z - 0.02 * facing + 0.02),
                SIGN, Material.SIGN, (0.6, 0.6, 0.6), (kind, facing, 0.0, 0.0))

    def _traffic_light(self, out: PrimitiveBuilder, side: float, x: float, z: float, lit: float) -> None:
        out.add(Kind.CYLINDER, (side * x, 1.6, z), (0.08, 1.6, 0.08), POLE, Material.METAL, (0.2, 0.2, 0.2))
        out.box((side * x - 0.16, 2.3, z - 0.14), (side * x + 0.16, 3.2, z + 0.14), SIGN, Material.TRAFFIC_LIGHT,
                (0.05, 0.05, 0.05), (-side, lit, 0.0, 0.0))

    def _tree(self, out: PrimitiveBuilder, rng: np.random.Generator, x: float, z: float) -> None:
        trunk = float(rng.uniform(2.0, 3.0))
        radius = float(rng.uniform(1.4, 2.4))
        out.add(Kind.CYLINDER, (x, trunk / 2, z), (0.17, trunk / 2, 0.17), TREE, Material.BARK, (0.22, 0.15, 0.09))
        ry = radius * float(rng.uniform(1.0, 1.4))
        green = self.paints.foliage * rng.uniform(0.7, 1.3) + np.array([0.03, 0.02, 0.0]) * rng.random()
        out.add(Kind.ELLIPSOID, (x, trunk + 0.6 * ry, z), (radius, ry, radius), TREE, Material.FOLIAGE, green,
                (float(rng.random()), 0.0, 0.0, 0.0))

    def _railing(self, out: PrimitiveBuilder, side: float, x: float, z0: float, z1: float) -> None:
        colour = (0.5, 0.5, 0.52)
        for y0, y1 in ((0.9, 1.0), (0.35, 0.42)):
            out.box((side * x - 0.03, y0, z0), (side * x + 0.03, y1, z1), FENCE, Material.METAL, colour)
        for z in np.arange(z0, z1 + 0.01, 2.0):
            out.box((side * x - 0.03, 0.0, z - 0.03), (side * x + 0.03, 1.0, z + 0.03), FENCE, Material.METAL, colour)


def _side_box(out: PrimitiveBuilder, side: float, x_span: tuple[float, float], y_span: tuple[float, float],
              z_span: tuple[float, float], label: int, material: Material, colour, param=(0.0, 0.0, 0.0, 0.0)) -> None:
    """Add a box spanning |x| in ``x_span`` on the given side of the street (side = +1 or -1)."""
    x0, x1 = sorted((side * x_span[0], side * x_span[1]))
    out.box((x0, y_span[0], z_span[0]), (x1, y_span[1], z_span[1]), label, material, colour, param)
