"""DrivingWorld: a seeded town seen from a car driving down its main street, with exact labels."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from .camera import Camera, Pose
from .labels import AGENT_CLASSES
from .looks import draw_look
from .primitives import PrimitiveBuilder, Primitives
from .seeding import generator
from .render import DRAW_DISTANCE, RenderOutput, Renderer
from .scene import AgentInfo, GroundStyle, Scene
from .textures import TEXTURE_PERIOD
from .town import Town
from .traffic import add_agents, draw_lanes

CAMERA_HEIGHT = 1.5
_WOBBLE_PITCH = -0.015
"""Mean pitch (rad) of the default wobbling camera, which looks slightly down."""


@dataclass(frozen=True)
class Box:
    """Visible 2-D extent (pixels; x, y top-left, w, h) of one agent with its track id and class."""

    track_id: int
    cls: int
    x: int
    y: int
    w: int
    h: int


@dataclass
class WorldFrame:
    """One rendered frame. ``depth`` is the z-distance along the camera's optical axis in metres
    (``SKY_DEPTH`` for sky); ``labels`` are CamVid class ids."""

    index: int
    time: float
    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    boxes: list[Box]


class DrivingWorld:
    """A procedural street seen from a forward-moving car; frame ``i`` is a pure function of
    (seed, i), so frames can be rendered in any order. ``wobble=False`` holds the camera straight
    (yaw = 0) at its mean pitch (0 unless randomised), height and lane position.

    ``randomise=True`` draws the town's look from the seed (``looks.draw_look``: sky, sun, haze,
    surface colours, camera height, pitch and field of view; the drawn field of view replaces
    ``fov_deg``); the layout and traffic stay those of the seed. ``self.look`` is None otherwise."""

    def __init__(self, seed: int, width: int = 480, height: int = 360, fov_deg: float = 60.0, fps: float = 25.0,
                 device: torch.device | str | None = None, wobble: bool = True, randomise: bool = False) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.seed = int(seed)
        self.fps = float(fps)
        self.wobble = wobble
        self.look = draw_look(self.seed) if randomise else None
        look = self.look
        self.camera = Camera(width, height, look.fov_deg if look else fov_deg)
        self.town = Town(self.seed, look.paints if look else None)
        self.lighting = look.lighting if look else self.town.lighting
        self.ground = look.ground if look else GroundStyle()
        self.camera_height = look.camera_height if look else CAMERA_HEIGHT
        self.camera_pitch = look.camera_pitch if look else (_WOBBLE_PITCH if wobble else 0.0)
        rng = generator(self.seed, 5)
        self.speed = float(rng.uniform(8.0, 13.0))
        self.start_z = float(rng.uniform(0.0, 2000.0))
        self._phases = rng.uniform(0.0, 2 * math.pi, 6)
        self.lanes = draw_lanes(self.seed, self.town.street, self.speed)
        self.renderer = Renderer(self.camera, device, noise_seed=self.seed)

    def pose(self, index: int) -> Pose:
        """Camera pose at frame ``index`` in world coordinates."""
        t = index / self.fps
        z = self.start_z + self.speed * t
        x = self.town.street.lane_center(1)
        if not self.wobble:
            return Pose(x, self.camera_height, z, pitch=self.camera_pitch)
        ph = self._phases
        return Pose(
            x + 0.15 * math.sin(0.23 * t + ph[0]),
            self.camera_height + 0.012 * math.sin(9.0 * t + ph[1]),
            z,
            yaw=0.008 * math.sin(0.45 * t + ph[2]) + 0.002 * math.sin(2.1 * t + ph[3]),
            pitch=self.camera_pitch + 0.004 * math.sin(1.3 * t + ph[4]) + 0.002 * math.sin(6.1 * t + ph[5]),
        )

    def scene(self, index: int) -> tuple[Scene, Pose]:
        """Scene and camera pose at frame ``index``, shifted along z by a multiple of
        ``TEXTURE_PERIOD`` so coordinates stay small (the picture is unchanged)."""
        if index < 0:
            raise ValueError(f"frame index must be non-negative, got {index}")
        pose = self.pose(index)
        shift = math.floor(pose.z / TEXTURE_PERIOD) * TEXTURE_PERIOD
        z0, z1 = pose.z - 40.0, pose.z + DRAW_DISTANCE + 20.0
        blocks = self.town.blocks_between(z0, z1)
        agents: list[AgentInfo] = []
        movers = PrimitiveBuilder()
        for lane in self.lanes:
            add_agents(movers, agents, self.seed, lane, index / self.fps, pose.z, (z0, z1), self.town.paints.cars)
        prims = Primitives.concat([b.primitives for b in blocks] + [movers.build()])
        near = (prims.center[:, 2] + prims.half[:, 2] >= z0) & (prims.center[:, 2] - prims.half[:, 2] <= z1)
        prims = prims.select(near)
        prims.center = prims.center.astype(np.float64)
        prims.center[:, 2] -= shift
        prims.center = prims.center.astype(np.float32)
        cross = tuple((c0 - shift, c1 - shift) for c0, c1 in (b.cross for b in blocks if b.cross))
        street = replace(self.town.street, cross_streets=cross)
        scene = Scene(prims, street, self.lighting, agents, self.ground)
        return scene, Pose(pose.x, pose.y, pose.z - shift, pose.yaw, pose.pitch)

    def render(self, index: int) -> WorldFrame:
        """Render frame ``index``: RGB, depth, labels and agent boxes."""
        scene, pose = self.scene(index)
        out = self.renderer.render(scene, pose)
        return WorldFrame(
            index=index, time=index / self.fps, rgb=out.rgb.cpu().numpy(), depth=out.depth.cpu().numpy(),
            labels=out.labels.cpu().numpy(), boxes=agent_boxes(out, scene.agents),
        )

    def frames(self, count: int, start: int = 0) -> Iterator[WorldFrame]:
        """Frames ``start`` .. ``start + count - 1`` in order."""
        if count < 0:
            raise ValueError(f"frame count must be non-negative, got {count}")
        for index in range(start, start + count):
            yield self.render(index)


def agent_boxes(out: RenderOutput, agents: list[AgentInfo]) -> list[Box]:
    """Tight boxes around each agent's visible pixels, in agent order."""
    if not agents:
        return []
    h, w = out.agent.shape
    flat = out.agent.flatten()
    seen = flat >= 0
    idx = flat[seen]
    pos = seen.nonzero().squeeze(1)
    ys, xs = pos // w, pos % w
    n = len(agents)
    big = torch.full((n,), h + w, device=idx.device)
    small = torch.full((n,), -1, device=idx.device)
    x0 = big.scatter_reduce(0, idx, xs, "amin")
    y0 = big.scatter_reduce(0, idx, ys, "amin")
    x1 = small.scatter_reduce(0, idx, xs, "amax")
    y1 = small.scatter_reduce(0, idx, ys, "amax")
    boxes = []
    for a, bx0, by0, bx1, by1 in zip(agents, x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist()):
        if bx1 >= 0 and a.cls in AGENT_CLASSES:
            boxes.append(Box(a.track_id, a.cls, bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1))
    return boxes
