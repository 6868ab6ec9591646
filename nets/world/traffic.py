"""Moving agents (cars, cyclists, pedestrians) whose positions are closed-form functions of time.

Each lane holds an endless, evenly spaced queue of slots moving at the lane's speed; slot ``j``
is occupied or not, jittered and styled by a hash of (seed, lane, j). Everything in a lane moves
together, so nothing ever collides, and any instant can be computed directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import BICYCLIST, CAR, PEDESTRIAN
from .paints import CAR_COLOURS
from .primitives import Kind, Material, PrimitiveBuilder
from .seeding import generator, uniform
from .scene import AgentInfo, Street

_CLOTHES = np.array([
    (0.05, 0.05, 0.07), (0.1, 0.12, 0.3), (0.45, 0.08, 0.06), (0.6, 0.6, 0.58), (0.2, 0.3, 0.15),
    (0.35, 0.25, 0.15), (0.7, 0.55, 0.2), (0.15, 0.15, 0.15),
])
_SKIN = np.array([(0.6, 0.42, 0.32), (0.42, 0.27, 0.18), (0.22, 0.13, 0.08), (0.68, 0.5, 0.4)])


@dataclass(frozen=True)
class Lane:
    """A queue of agents of one class along x = ``x`` moving with ``speed`` m/s in z.

    ``follow`` lanes move with the camera: their slots are laid out from ``first`` metres ahead of
    it, so cars ahead in the camera's own lane keep their distance."""

    lane_id: int
    cls: int
    x: float
    speed: float
    spacing: float
    presence: float
    follow: bool = False
    first: float = 0.0


def draw_lanes(seed: int, street: Street, camera_speed: float) -> list[Lane]:
    """Seeded traffic: a followed lane, an overtaking lane, two oncoming lanes, bikes and walkers."""
    rng = generator(seed, 4)
    busy = rng.uniform(0.5, 0.95)
    bike_x = street.carriageway_x + street.bike_lane / 2
    lanes = [
        Lane(0, CAR, street.lane_center(1), camera_speed, float(rng.uniform(25, 45)), busy, True, 14.0),
        Lane(1, CAR, street.lane_center(0), camera_speed + float(rng.uniform(2.5, 6.0)),
             float(rng.uniform(35, 70)), busy),
        Lane(2, CAR, street.lane_center(-1), -float(rng.uniform(9.0, 14.0)), float(rng.uniform(28, 55)), busy),
        Lane(3, CAR, street.lane_center(-2), -float(rng.uniform(7.0, 11.0)), float(rng.uniform(30, 60)), busy),
        Lane(4, BICYCLIST, bike_x, float(rng.uniform(3.5, 6.0)), float(rng.uniform(40, 110)), float(rng.uniform(0.3, 0.8))),
        Lane(5, BICYCLIST, -bike_x, -float(rng.uniform(3.5, 6.0)), float(rng.uniform(40, 110)), float(rng.uniform(0.3, 0.8))),
    ]
    walk_density = rng.uniform(0.3, 0.9)
    for i, (side, offset) in enumerate([(1, 2.0), (1, 3.0), (-1, 2.0), (-1, 3.0)]):
        x = side * (street.curb_x + min(offset, street.pavement_width - 0.7))
        speed = float(rng.uniform(1.0, 1.6)) * (1 if i % 2 == 0 else -1)
        lanes.append(Lane(6 + i, PEDESTRIAN, x, speed, float(rng.uniform(6.0, 18.0)), walk_density))
    return lanes


def add_agents(out: PrimitiveBuilder, agents: list[AgentInfo], seed: int, lane: Lane, time: float,
               camera_z: float, z_range: tuple[float, float], paints: np.ndarray = CAR_COLOURS) -> None:
    """Append the primitives of every agent of ``lane`` whose centre lies in ``z_range``; cars and
    bicycles take their paint from ``paints`` (N x 3)."""
    shift = camera_z + lane.first if lane.follow else lane.speed * time
    j0 = int(np.floor((z_range[0] - shift) / lane.spacing)) - 1
    j1 = int(np.ceil((z_range[1] - shift) / lane.spacing))
    if lane.follow:
        j0 = max(j0, 0)
    if j1 < j0:
        return
    slots = np.arange(j0, j1 + 1)
    draws = uniform(seed, 100 + lane.lane_id, slots, 8)
    z = shift + slots * lane.spacing + draws[:, 0] * (lane.spacing - 7.0)
    for slot, zc, d in zip(slots, z, draws):
        if d[1] >= lane.presence or not z_range[0] <= zc <= z_range[1]:
            continue
        heading = 1.0 if lane.speed >= 0 else -1.0
        index = len(agents)
        agents.append(AgentInfo(lane.lane_id * 1_000_000 + int(slot) % 1_000_000, lane.cls))
        if lane.cls == CAR:
            _car(out, index, lane.x + (d[2] - 0.5) * 0.4, float(zc), heading, d, paints)
        elif lane.cls == BICYCLIST:
            _cyclist(out, index, lane.x + (d[2] - 0.5) * 0.3, float(zc), heading, d, paints)
        else:
            _pedestrian(out, index, lane.x + (d[2] - 0.5) * 0.6, float(zc), heading, d, time * abs(lane.speed))


def _car(out: PrimitiveBuilder, index: int, x: float, z: float, heading: float, d: np.ndarray,
         paints: np.ndarray) -> None:
    tall = d[3] < 0.25
    length = 4.0 + 0.9 * d[4] + (0.4 if tall else 0.0)
    half_w = 0.88 + 0.08 * d[5]
    body_top = 1.05 if tall else 0.9 + 0.08 * d[5]
    roof = body_top + (0.75 if tall else 0.52)
    colour = paints[int(d[6] * len(paints))]
    param = (heading, length / 2, body_top, 0.0)
    out.box((x - half_w, 0.3, z - length / 2), (x + half_w, body_top, z + length / 2), CAR, Material.CAR_BODY,
            colour, param, index)
    cabin = length * (0.72 if tall else 0.5)
    back = z - heading * (length / 2 - (0.15 if tall else 0.55))
    front = back + heading * cabin
    out.box((x - half_w + 0.07, body_top, min(back, front)), (x + half_w - 0.07, roof, max(back, front)), CAR,
            Material.CAR_CABIN, colour, param, index)
    for side in (-1.0, 1.0):
        for axle in (-1.0, 1.0):
            out.add(Kind.ELLIPSOID, (x + side * (half_w - 0.1), 0.33, z + axle * (length / 2 - 0.85)),
                    (0.12, 0.33, 0.33), CAR, Material.RUBBER, (0.03, 0.03, 0.03), agent=index)


def _cyclist(out: PrimitiveBuilder, index: int, x: float, z: float, heading: float, d: np.ndarray,
             paints: np.ndarray) -> None:
    for axle in (-1.0, 1.0):
        out.add(Kind.ELLIPSOID, (x, 0.34, z + axle * 0.52), (0.03, 0.34, 0.34), BICYCLIST, Material.RUBBER,
                (0.03, 0.03, 0.03), agent=index)
    out.box((x - 0.03, 0.35, z - 0.45), (x + 0.03, 0.75, z + 0.45), BICYCLIST, Material.METAL,
            paints[int(d[6] * len(paints))], agent=index)
    clothes = _CLOTHES[int(d[4] * len(_CLOTHES))]
    out.add(Kind.CYLINDER, (x, 0.8, z - 0.1 * heading), (0.1, 0.25, 0.1), BICYCLIST, Material.CLOTH,
            _CLOTHES[int(d[5] * len(_CLOTHES))], agent=index)
    out.add(Kind.ELLIPSOID, (x, 1.28, z + 0.05 * heading), (0.21, 0.3, 0.15), BICYCLIST, Material.CLOTH, clothes,
            agent=index)
    out.add(Kind.ELLIPSOID, (x, 1.7, z + 0.12 * heading), (0.12, 0.13, 0.12), BICYCLIST, Material.PLAIN,
            (0.1, 0.1, 0.1) if d[7] < 0.5 else _SKIN[int(d[7] * 8) % len(_SKIN)], agent=index)


def _pedestrian(out: PrimitiveBuilder, index: int, x: float, z: float, heading: float, d: np.ndarray,
                walked: float) -> None:
    scale = 0.88 + 0.22 * d[3]
    swing = 0.16 * np.sin(walked * 2.6 + d[4] * 6.28)
    legs = _CLOTHES[int(d[5] * len(_CLOTHES))]
    for side, sign in ((-1.0, 1.0), (1.0, -1.0)):
        out.add(Kind.CYLINDER, (x + side * 0.09, 0.42 * scale, z + sign * swing), (0.075, 0.42 * scale, 0.075),
                PEDESTRIAN, Material.CLOTH, legs, agent=index)
    out.add(Kind.ELLIPSOID, (x, 1.17 * scale, z), (0.21, 0.33 * scale, 0.13), PEDESTRIAN, Material.CLOTH,
            _CLOTHES[int(d[6] * len(_CLOTHES))], agent=index)
    out.add(Kind.ELLIPSOID, (x, 1.6 * scale, z), (0.1, 0.12, 0.1), PEDESTRIAN, Material.PLAIN,
            _SKIN[int(d[7] * len(_SKIN))], agent=index)
