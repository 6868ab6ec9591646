"""Scene description: street geometry, lighting, and what a renderer draws at one instant."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .primitives import Primitives


@dataclass(frozen=True)
class Street:
    """Cross-section of the straight main street running along +z (all distances in metres).

    Lanes: ``lanes_each_way`` of ``lane_width`` on each side of x = 0 (traffic drives on the
    right, in +z for x > 0), then a bike lane, a curb of ``curb_height`` at |x| = ``curb_x`` and
    a pavement up to the building line. ``cross_streets`` lists (z0, z1) spans where a side
    street crosses: there the whole ground is road.
    """

    lane_width: float = 3.5
    lanes_each_way: int = 2
    bike_lane: float = 1.5
    curb_height: float = 0.14
    pavement_width: float = 4.0
    cross_streets: tuple[tuple[float, float], ...] = ()

    @property
    def carriageway_x(self) -> float:
        """|x| of the edge line between the car lanes and the bike lane."""
        return self.lane_width * self.lanes_each_way

    @property
    def curb_x(self) -> float:
        return self.carriageway_x + self.bike_lane

    @property
    def building_x(self) -> float:
        return self.curb_x + self.pavement_width

    def lane_center(self, lane: int) -> float:
        """x of lane ``lane``: 0, 1, ... count outwards on the +z side, -1, -2, ... on the oncoming side."""
        return (lane + 0.5) * self.lane_width


@dataclass(frozen=True)
class Lighting:
    """Daylight: unit vector towards the sun, linear RGB colours and distance fog. Clouds are lit
    with ``cloud_colour``, or with the sun's colour when it is None; ``shadow_strength`` scales how
    much cast shadows darken (1 full, lower under diffuse overcast light)."""

    sun_dir: tuple[float, float, float] = (0.4, 0.75, -0.5)
    sun_colour: tuple[float, float, float] = (1.0, 0.96, 0.88)
    sky_zenith: tuple[float, float, float] = (0.18, 0.36, 0.75)
    sky_horizon: tuple[float, float, float] = (0.68, 0.78, 0.9)
    ambient: tuple[float, float, float] = (0.32, 0.38, 0.48)
    fog_distance: float = 450.0
    cloud_cover: float = 0.35
    cloud_colour: tuple[float, float, float] | None = None
    shadow_strength: float = 1.0

    @staticmethod
    def from_angles(elevation_deg: float, azimuth_deg: float, **kw) -> Lighting:
        """Sun at ``elevation_deg`` above the horizon, ``azimuth_deg`` clockwise from +z."""
        e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
        return Lighting(sun_dir=(math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)), **kw)


@dataclass(frozen=True)
class GroundStyle:
    """Colour multipliers of the street surface: asphalt brightness and tint, the bike lanes'
    tint over the asphalt, and the pavement slabs' and curb stones' colour."""

    asphalt: float = 1.0
    asphalt_tint: tuple[float, float, float] = (1.0, 1.0, 1.04)
    bike_tint: tuple[float, float, float] = (1.5, 0.75, 0.7)
    pavement: tuple[float, float, float] = (1.0, 0.98, 0.95)
    curb: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class AgentInfo:
    """A moving object in the scene: stable track id and CamVid class."""

    track_id: int
    cls: int


@dataclass
class Scene:
    """Everything drawn at one instant: primitives over a ground plane shaped by ``street`` and
    coloured by ``ground``."""

    primitives: Primitives
    street: Street = field(default_factory=Street)
    lighting: Lighting = field(default_factory=Lighting)
    agents: list[AgentInfo] = field(default_factory=list)
    ground: GroundStyle = field(default_factory=GroundStyle)

    def __post_init__(self) -> None:
        bad = self.primitives.agent[self.primitives.agent >= len(self.agents)]
        if bad.size:
            raise ValueError(f"primitive refers to agent {int(bad[0])} but the scene has {len(self.agents)} agents")
