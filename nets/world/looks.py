"""Domain randomisation: a seeded look for a town (weather and sky, sun, haze, surface colours and
the camera rig), drawn far wider than the default daylight so trained models meet clear, overcast,
hazy and dusk scenes, light and dark roads and many camera mounts."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .paints import Paints
from .scene import GroundStyle, Lighting
from .seeding import generator

SKIES = ("clear", "overcast", "hazy", "dusk")
_SKY_ODDS = (0.4, 0.25, 0.2, 0.15)
_STREAM = 6


@dataclass(frozen=True)
class Look:
    """Everything randomisation changes about a town: its sky kind (one of ``SKIES``), lighting,
    paints, ground colours, and the camera's height (m), mean pitch (rad, up positive) and
    horizontal field of view (degrees)."""

    sky: str
    lighting: Lighting
    paints: Paints
    ground: GroundStyle
    camera_height: float
    camera_pitch: float
    fov_deg: float


def draw_look(seed: int) -> Look:
    """The look of town ``seed``; the same seed always gives the same look. Sky, paints, ground and
    camera come from separate sub-streams, so each can be retuned without reshuffling the others."""
    rng = generator(seed, _STREAM, 0)
    sky = SKIES[int(rng.choice(len(SKIES), p=_SKY_ODDS))]
    rig = generator(seed, _STREAM, 3)
    return Look(
        sky=sky, lighting=_LIGHTING[sky](rng), paints=_paints(generator(seed, _STREAM, 1)),
        ground=_ground(generator(seed, _STREAM, 2)), camera_height=float(rig.uniform(1.1, 2.6)),
        camera_pitch=float(rig.uniform(-0.12, 0.04)), fov_deg=float(rig.uniform(45.0, 95.0)),
    )


def _u(rng: np.random.Generator, lo, hi) -> tuple[float, ...]:
    """Uniform draws between ``lo`` and ``hi`` (same-length tuples), as a tuple of floats."""
    return tuple(float(v) for v in rng.uniform(lo, hi))


def _scaled(colour: tuple[float, ...], k: float) -> tuple[float, float, float]:
    return tuple(float(c * k) for c in colour)


def _between(a: tuple[float, ...], b: tuple[float, ...], f: float) -> tuple[float, float, float]:
    """The colour a fraction ``f`` of the way from ``a`` to ``b``."""
    return tuple(float(x + (y - x) * f) for x, y in zip(a, b))


def _clear(rng: np.random.Generator) -> Lighting:
    """Blue sky from deep to pale, white sun, few to some cumulus."""
    pale = float(rng.uniform(0.0, 1.0))
    zenith = _between((0.03, 0.12, 0.62), (0.2, 0.36, 0.78), pale)
    horizon = _between((0.2, 0.38, 0.8), (0.66, 0.76, 0.9), pale)
    sun = _scaled(_u(rng, (1.0, 0.94, 0.86), (1.0, 1.0, 0.97)), float(rng.uniform(0.9, 1.15)))
    return Lighting.from_angles(
        float(rng.uniform(15.0, 70.0)), float(rng.uniform(0.0, 360.0)), sun_colour=sun,
        sky_zenith=zenith, sky_horizon=horizon,
        ambient=_scaled((0.85, 0.95, 1.15), float(rng.uniform(0.22, 0.36))),
        fog_distance=float(rng.uniform(400.0, 900.0)), cloud_cover=float(rng.uniform(0.0, 0.5)),
    )


def _overcast(rng: np.random.Generator) -> Lighting:
    """Flat grey-white sky nearly covered in slightly darker cloud, weak sun, faint shadows, strong
    sky light."""
    level = float(rng.uniform(0.55, 1.2))
    tint = _u(rng, (0.97, 0.98, 1.0), (1.0, 1.0, 1.06))
    sky = _scaled(tint, level)
    return Lighting.from_angles(
        float(rng.uniform(20.0, 70.0)), float(rng.uniform(0.0, 360.0)),
        sun_colour=_scaled((1.0, 0.98, 0.95), float(rng.uniform(0.05, 0.2))),
        sky_zenith=_scaled(sky, float(rng.uniform(0.85, 1.0))), sky_horizon=sky,
        ambient=_scaled(tint, float(rng.uniform(0.7, 1.0))),
        fog_distance=float(rng.uniform(250.0, 700.0)), cloud_cover=float(rng.uniform(0.85, 1.0)),
        cloud_colour=_scaled(sky, float(rng.uniform(0.8, 1.05))), shadow_strength=float(rng.uniform(0.15, 0.4)),
    )


def _hazy(rng: np.random.Generator) -> Lighting:
    """Whitish-blue sky over a pale grey-yellow horizon, dim warm sun, softer shadows, thick distance
    haze."""
    level = float(rng.uniform(0.7, 0.95))
    horizon = _scaled(_u(rng, (1.0, 0.96, 0.86), (1.0, 1.0, 1.0)), level)
    zenith = _u(rng, (0.38, 0.48, 0.6), (0.58, 0.65, 0.8))
    sun = _scaled(_u(rng, (1.0, 0.9, 0.76), (1.0, 0.97, 0.88)), float(rng.uniform(0.5, 0.85)))
    return Lighting.from_angles(
        float(rng.uniform(10.0, 60.0)), float(rng.uniform(0.0, 360.0)), sun_colour=sun,
        sky_zenith=zenith, sky_horizon=horizon, ambient=_scaled(horizon, float(rng.uniform(0.4, 0.55))),
        fog_distance=float(rng.uniform(60.0, 250.0)), cloud_cover=float(rng.uniform(0.0, 0.4)),
        cloud_colour=_scaled(horizon, 1.05), shadow_strength=float(rng.uniform(0.6, 0.9)),
    )


def _dusk(rng: np.random.Generator) -> Lighting:
    """Low orange sun, orange-to-pink horizon under a deep blue-violet zenith, dim bluish sky light."""
    sun = _scaled(_u(rng, (1.0, 0.48, 0.22), (1.0, 0.7, 0.4)), float(rng.uniform(0.8, 1.2)))
    horizon = _between((0.95, 0.5, 0.22), (0.9, 0.45, 0.5), float(rng.uniform(0.0, 1.0)))
    return Lighting.from_angles(
        float(rng.uniform(5.0, 14.0)), float(rng.uniform(0.0, 360.0)), sun_colour=sun,
        sky_zenith=_u(rng, (0.06, 0.08, 0.25), (0.16, 0.16, 0.45)), sky_horizon=horizon,
        ambient=_scaled((0.8, 0.8, 1.1), float(rng.uniform(0.18, 0.3))),
        fog_distance=float(rng.uniform(300.0, 900.0)), cloud_cover=float(rng.uniform(0.0, 0.6)),
        cloud_colour=_between(sun, horizon, 0.5),
    )


_LIGHTING = {"clear": _clear, "overcast": _overcast, "hazy": _hazy, "dusk": _dusk}


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _paints(rng: np.random.Generator) -> Paints:
    """Facades from grey and beige to colourful plaster, any town brightness; a car palette of
    mostly white, grey and black with some saturated paints; foliage from dark green to olive and
    yellow green."""
    colourful = float(rng.uniform(0.05, 0.6))
    bright = float(rng.uniform(0.6, 1.3))
    facades = []
    for _ in range(10):
        hue = float(rng.uniform(0.0, 0.15)) if rng.random() < 0.6 else float(rng.random())
        facades.append(_hsv(hue, float(rng.uniform(0.0, colourful)), bright * float(rng.uniform(0.18, 0.72))))
    cars = []
    for _ in range(10):
        if rng.random() < 0.6:
            level = (0.04, 0.35, 0.78)[int(rng.integers(0, 3))] * float(rng.uniform(0.7, 1.1))
            cars.append(_scaled(_u(rng, (0.97,) * 3, (1.03,) * 3), level))
        else:
            cars.append(_hsv(float(rng.random()), float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.15, 0.7))))
    green = float(rng.uniform(0.1, 0.28))
    foliage = np.array([green * float(rng.uniform(0.2, 1.1)), green, green * float(rng.uniform(0.1, 0.55))])
    return Paints(facades=np.array(facades), cars=np.array(cars), foliage=foliage)


def _ground(rng: np.random.Generator) -> GroundStyle:
    """Asphalt from near black to light grey with a slight tint; red, green or no bike lanes;
    pavements and curbs lighter or darker, grey to warm."""
    asphalt = float(np.exp(rng.uniform(np.log(0.6), np.log(3.5))))
    tint = _u(rng, (0.95, 0.95, 0.97), (1.06, 1.05, 1.1))
    bike = ((1.5, 0.75, 0.7), (0.8, 1.3, 0.9), (1.0, 1.0, 1.0))[int(rng.choice(3, p=(0.35, 0.2, 0.45)))]
    pavement = _scaled(_u(rng, (0.85, 0.83, 0.8), (1.15, 1.13, 1.1)), float(rng.uniform(0.6, 1.8)))
    curb = _scaled((1.0, 1.0, 1.0), float(rng.uniform(0.7, 1.4)))
    return GroundStyle(asphalt=asphalt, asphalt_tint=tint, bike_tint=bike, pavement=pavement, curb=curb)
