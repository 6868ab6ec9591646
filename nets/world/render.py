"""Tile-based ray caster: analytic street ground plus primitives, z-buffered, shaded, labelled.

Each primitive is tested only against the 8x8-pixel tiles its projected bounding box touches;
all (tile, primitive) pairs of a kind are intersected in one batched tensor operation and the
nearest hit per pixel is found with one scatter-min over packed (depth, id) keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .camera import Camera, Pose
from .gather import take, where_true
from .intersect import HIT_FUNCTIONS, hit_box_inverse, normals
from .labels import BUILDING, PAVEMENT, POLE, ROAD, SKY
from .primitives import Kind
from .scene import Lighting, Scene, Street
from .textures import Noise, ground_albedo, surface_albedo

SKY_DEPTH = 1000.0
"""Depth (metres) reported for sky pixels: farther than anything drawn."""
GROUND_LIMIT = 900.0
"""Ground farther than this along the optical axis is drawn as sky (it is lost in haze)."""
DRAW_DISTANCE = 320.0
"""Primitives whose nearest point is farther than this are not drawn."""
SHADOW_DISTANCE = 40.0
"""Primitives within this distance cast ray-traced shadows (except buildings, which shade the
street through their skyline, and thin poles)."""
NEAR = 0.05
TILE = 8
_PASS_DEPTHS = (25.0, 70.0)
_PROFILE_STEP = 0.25
_PROFILE_BEHIND = 80.0
_GROUND_ID = 0xFFFE
_SKY_ID = 0xFFFF
_SHADOW_EPS = 1e-3


@dataclass
class RenderOutput:
    """Per-pixel results on the render device: rgb uint8 (H, W, 3), depth float32 (H, W),
    labels uint8 (H, W) and agent index int64 (H, W; -1 where no agent is visible)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    labels: torch.Tensor
    agent: torch.Tensor


class Renderer:
    """Draws ``Scene`` objects through a ``Camera`` on one torch device."""

    def __init__(self, camera: Camera, device: torch.device | str | None = None, noise_seed: int = 0) -> None:
        self.camera = camera
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.noise = Noise(noise_seed, self.device)
        self.rows = -(-camera.height // TILE) * TILE
        self.cols = -(-camera.width // TILE) * TILE
        ty, tx = torch.meshgrid(torch.arange(self.rows // TILE), torch.arange(self.cols // TILE), indexing="ij")
        self.tile_base = (ty * TILE * self.cols + tx * TILE).flatten().to(self.device)
        oy, ox = torch.meshgrid(torch.arange(TILE), torch.arange(TILE), indexing="ij")
        self.tile_offsets = (oy * self.cols + ox).flatten().to(self.device)
        ys = (torch.arange(self.rows) + 0.5 - camera.height / 2) / (camera.height / 2)
        xs = (torch.arange(self.cols) + 0.5 - camera.width / 2) / (camera.width / 2)
        vignette = 1.0 - 0.09 * (xs[None, :] ** 2 + ys[:, None] ** 2)
        self.vignette = (vignette * _LUT_SCALE).reshape(-1, 1).to(self.device)
        self.tone_lut = _TONE_LUT.to(self.device)

    @torch.no_grad()
    def render(self, scene: Scene, pose: Pose) -> RenderOutput:
        """Ray cast ``scene`` from ``pose``."""
        if len(scene.primitives) >= _GROUND_ID:
            raise ValueError(f"a scene holds at most {_GROUND_ID - 1} primitives, got {len(scene.primitives)}")
        dev, cam = self.device, self.camera
        rays = cam.rays(pose, self.rows, self.cols, dev).reshape(-1, 3)
        origin = torch.tensor(pose.origin, dtype=torch.float32, device=dev)
        prims = scene.primitives.to_torch(dev)
        cross = torch.tensor(scene.street.cross_streets, dtype=torch.float32, device=dev).reshape(-1, 2)

        t_ground, ground_normal, ground_kind = ground_hit(origin, rays, scene.street, cross)
        t_ground = torch.where(t_ground > GROUND_LIMIT, torch.inf, t_ground)
        keys = _pack(t_ground, torch.where(t_ground.isinf(), _SKY_ID, _GROUND_ID))
        lo, hi = prims["center"] - prims["half"], prims["center"] + prims["half"]
        self._primary(pose, origin, rays, prims, lo, hi, keys)
        depth, ident = _unpack(keys)

        is_sky, is_ground = ident == _SKY_ID, ident == _GROUND_ID
        is_prim = ~is_sky & ~is_ground
        ground_px, prim_px, sky_px = where_true(is_ground), where_true(is_prim), where_true(is_sky)
        hit = torch.cat([ground_px, prim_px])
        t = take(depth, hit)
        point = torch.addcmul(origin, t[:, None], take(rays, hit))
        footprint = t / cam.focal
        n_ground = ground_px.numel()
        ground = _ground_surface(point[:n_ground], take(ground_normal, ground_px), take(ground_kind, ground_px),
                                 scene, cross, self.noise, footprint[:n_ground])
        prim_id = take(ident, prim_px)
        solid = _primitive_surface(point[n_ground:], prims, prim_id, self.noise, footprint[n_ground:])
        normal, albedo, reflect, emit = (torch.cat([g, p]) for g, p in zip(ground, solid))

        shadow = self._shadow(scene, pose, prims, lo, hi, hit, point, normal)
        shaded = shade(scene.lighting, take(rays, hit), t, albedo, normal, reflect, emit, shadow)
        direction = take(rays, sky_px)
        direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
        sky = sky_colour(scene.lighting, direction, self.noise)
        colour = torch.empty_like(rays).index_copy_(0, torch.cat([hit, sky_px]), torch.cat([shaded, sky]))
        labels, agent = _label_maps(prims, ident, is_ground, is_prim, ground_kind)
        return RenderOutput(
            rgb=self._crop(self._encode(colour)),
            depth=self._crop(torch.where(is_sky, SKY_DEPTH, depth)),
            labels=self._crop(labels).to(torch.uint8),
            agent=self._crop(agent),
        )

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        """Padded flat pixels back to the image's (H, W, ...) layout."""
        return x.reshape(self.rows, self.cols, *x.shape[1:])[:self.camera.height, :self.camera.width]

    def _encode(self, colour: torch.Tensor) -> torch.Tensor:
        """Vignette, tone map and gamma-encode linear RGB to uint8 through a lookup table
        (``self.vignette`` already holds the table's steps per unit of intensity)."""
        index = (colour * self.vignette).clamp_(0, _TONE_LUT.numel() - 1).long()
        return take(self.tone_lut, index)

    def _primary(self, pose: Pose, origin: torch.Tensor, rays: torch.Tensor, prims: dict[str, torch.Tensor],
                 lo: torch.Tensor, hi: torch.Tensor, keys: torch.Tensor) -> None:
        """Z-buffer the primitives into ``keys``, nearest first, skipping (tile, primitive) pairs
        that lie wholly behind everything already drawn in the tile."""
        tiles, prim_of, near = self._pairs(pose, lo, hi)
        inv_rays = 1.0 / torch.where(rays == 0, torch.full_like(rays, 1e-12), rays)
        bounds = (0.0, *_PASS_DEPTHS, torch.inf)
        for start, stop in zip(bounds[:-1], bounds[1:]):
            batch = (near >= start) & (near < stop)
            if start > 0:
                depth, _ = _unpack(keys)
                tile_far = take(depth, self.tile_base[:, None] + self.tile_offsets).amax(1)
                batch &= near <= take(tile_far, tiles)
            for kind, hit in HIT_FUNCTIONS.items():
                sel = where_true(batch & (take(prims["kind"], prim_of) == kind))
                if sel.numel():
                    pix = take(self.tile_base, take(tiles, sel))[:, None] + self.tile_offsets
                    pid = take(prim_of, sel)
                    centre, half = take(prims["center"], pid)[:, None], take(prims["half"], pid)[:, None]
                    if kind == Kind.BOX:
                        t = hit_box_inverse(origin, take(inv_rays, pix), centre, half, NEAR)
                    else:
                        t = hit(origin, take(rays, pix), centre, half, NEAR)
                    ident = torch.where(t.isinf(), _SKY_ID, pid[:, None])
                    keys.scatter_reduce_(0, pix.flatten(), _pack(t, ident).flatten(), "amin")

    def _pairs(self, pose: Pose, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(tile index, primitive index, primitive's nearest depth) for every tile touched by a
        box's screen rectangle."""
        rect, near = self.camera.project_boxes(pose, lo, hi, NEAR)
        n_ty, n_tx = self.rows // TILE, self.cols // TILE
        visible = (rect[:, 2] >= 0) & (rect[:, 0] < self.camera.width) & (rect[:, 3] >= 0) & (
            rect[:, 1] < self.camera.height) & (rect[:, 0] <= rect[:, 2]) & (near < DRAW_DISTANCE)
        idx = visible.nonzero().squeeze(1)
        r = rect[idx]
        x0 = (r[:, 0] / TILE).floor().clamp(0, n_tx - 1).long()
        x1 = (r[:, 2] / TILE).floor().clamp(0, n_tx - 1).long()
        y0 = (r[:, 1] / TILE).floor().clamp(0, n_ty - 1).long()
        y1 = (r[:, 3] / TILE).floor().clamp(0, n_ty - 1).long()
        nx, count = x1 - x0 + 1, (x1 - x0 + 1) * (y1 - y0 + 1)
        owner = torch.repeat_interleave(torch.arange(idx.numel(), device=idx.device), count)
        start = torch.cumsum(count, 0) - count
        local = torch.arange(int(count.sum()), device=idx.device) - start[owner]
        tiles = (y0[owner] + local // nx[owner]) * n_tx + x0[owner] + local % nx[owner]
        return tiles, idx[owner], near[idx][owner]

    def _shadow(self, scene: Scene, pose: Pose, prims: dict[str, torch.Tensor], lo: torch.Tensor, hi: torch.Tensor,
                hit: torch.Tensor, point: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        """For the surface points of pixels ``hit``: 1 where the ray towards the sun is blocked,
        else 0. Street-front buildings are handled through their skyline, everything else by
        casting shadow rays."""
        sun = torch.tensor(scene.lighting.sun_dir, dtype=torch.float32, device=point.device)
        facing = (normal @ sun) > 0
        shadow = torch.zeros_like(point[:, 0])
        if sun[1] <= 0:
            return shadow
        lit = where_true(facing)
        shadow.index_copy_(0, lit, _canyon_shadow(scene, pose, take(point, lit), sun))
        casters = where_true((prims["label"] != BUILDING) & (prims["label"] != POLE))
        if not casters.numel():
            return shadow
        row_of = torch.full((self.rows * self.cols,), -1, dtype=torch.long, device=point.device)
        row_of.index_copy_(0, take(hit, lit), lit)
        c_lo, c_hi = take(lo, casters), take(hi, casters)
        reach = sun * (c_hi[:, 1:2] / sun[1]) * torch.tensor([1.0, 0.0, 1.0], device=lo.device)
        s_lo = torch.minimum(c_lo, c_lo - reach)
        s_hi = torch.maximum(c_hi, c_hi - reach)
        s_lo[:, 1] = 0.0
        tiles, prim_of, near = self._pairs(pose, s_lo, s_hi)
        close = where_true(near < SHADOW_DISTANCE)
        tiles, prim_of = take(tiles, close), take(casters, take(prim_of, close))
        start = point + normal * 0.02
        for kind, hit_fn in HIT_FUNCTIONS.items():
            sel = where_true(take(prims["kind"], prim_of) == kind)
            if sel.numel():
                rows = take(row_of, take(self.tile_base, take(tiles, sel))[:, None] + self.tile_offsets)
                pid = take(prim_of, sel)
                t = hit_fn(take(start, rows.clamp_min(0)), sun, take(prims["center"], pid)[:, None],
                           take(prims["half"], pid)[:, None], _SHADOW_EPS)
                shadow[rows[t.isfinite() & (rows >= 0)]] = 1.0
        return shadow


def _canyon_shadow(scene: Scene, pose: Pose, point: torch.Tensor, sun: torch.Tensor) -> torch.Tensor:
    """Shadow of the row of buildings on the sun's side of the street: follow each point's sun
    ray to that side's building line and compare its height there with the buildings' skyline."""
    side = 1.0 if float(sun[0]) >= 0 else -1.0
    if abs(float(sun[0])) < 0.02:
        return torch.zeros_like(point[:, 0])
    prims = scene.primitives
    front = scene.street.building_x
    row = (prims.label == BUILDING) & (side * (prims.center[:, 0] - prims.half[:, 0] * side) >= front - 0.01) & (
        side * (prims.center[:, 0] - prims.half[:, 0] * side) < front + 3.0)
    z_lo = pose.z - _PROFILE_BEHIND
    zs = z_lo + np.arange(int((_PROFILE_BEHIND + DRAW_DISTANCE + 60.0) / _PROFILE_STEP)) * _PROFILE_STEP
    c, h = prims.center[row], prims.half[row]
    inside = (zs[None, :] >= (c[:, 2] - h[:, 2])[:, None]) & (zs[None, :] < (c[:, 2] + h[:, 2])[:, None])
    skyline = np.where(inside, (c[:, 1] + h[:, 1])[:, None], 0.0).max(0, initial=0.0)
    skyline = torch.from_numpy(skyline.astype(np.float32)).to(point.device)
    travel = (side * front - point[:, 0]) / sun[0]
    z_hit = point[:, 2] + travel * sun[2]
    y_hit = point[:, 1] + travel * sun[1]
    cell = ((z_hit - z_lo) / _PROFILE_STEP).floor().long()
    inside = (cell >= 0) & (cell < skyline.numel()) & (travel > 0.05)
    height = skyline[cell.clamp(0, skyline.numel() - 1)]
    return (inside & (y_hit < height)).float()


def _label_maps(prims: dict[str, torch.Tensor], ident: torch.Tensor, is_ground: torch.Tensor, is_prim: torch.Tensor,
                ground_kind: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel CamVid label and agent index (-1 for none) from what each pixel sees."""
    count = prims["label"].shape[0]
    safe_id = torch.where(is_prim, ident, count)
    label_of = torch.cat([prims["label"], prims["label"].new_full((1,), SKY)])
    agent_of = torch.cat([prims["agent"], prims["agent"].new_full((1,), -1)])
    labels = torch.where(is_ground, torch.where(ground_kind == 0, ROAD, PAVEMENT), take(label_of, safe_id))
    return labels, take(agent_of, safe_id)


def _ground_surface(point: torch.Tensor, normal: torch.Tensor, kind: torch.Tensor, scene: Scene, cross: torch.Tensor,
                    noise: Noise, footprint: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Normal, albedo, reflection weight and emission of street-surface points."""
    albedo = ground_albedo(point[:, 0], point[:, 2], kind, scene.street, cross, noise, footprint,
                           scene.ground) if kind.numel() else point * 0
    return normal, albedo, point[:, 0] * 0, point * 0


def _primitive_surface(point: torch.Tensor, prims: dict[str, torch.Tensor], prim_id: torch.Tensor, noise: Noise,
                       footprint: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Normal, albedo, reflection weight and emission of points on primitives ``prim_id``."""
    if not prim_id.numel():
        return point, point, point[:, 0], point
    centre, half = take(prims["center"], prim_id), take(prims["half"], prim_id)
    normal = normals(take(prims["kind"], prim_id), point, centre, half)
    albedo, reflect, emit = surface_albedo(take(prims["material"], prim_id), point - centre, normal, half,
                                           take(prims["colour"], prim_id), take(prims["param"], prim_id), noise,
                                           footprint)
    return normal, albedo, reflect, emit


def ground_hit(origin: torch.Tensor, rays: torch.Tensor, street: Street,
               cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray parameter, normal and kind (0 road, 1 pavement top, 2 curb face) of the street surface.

    The ground is the plane y = 0 except on pavements (|x| >= curb_x outside cross streets),
    which are raised by ``curb_height``; rays entering a pavement below that height hit its curb."""
    ox, oy, oz = origin.tolist()
    n = rays.shape[0]
    t = torch.full((n,), torch.inf, device=rays.device)
    kind = torch.zeros(n, dtype=torch.long, device=rays.device)
    normal = torch.zeros_like(rays)
    normal[:, 1] = 1.0
    down = where_true(rays[:, 1] < 0)
    d = take(rays, down)
    t0 = -oy / d[:, 1]
    t1 = (street.curb_height - oy) / d[:, 1]
    on_top = _is_pavement(ox + t1 * d[:, 0], oz + t1 * d[:, 2], street, cross)
    into = ~on_top & _is_pavement(ox + t0 * d[:, 0], oz + t0 * d[:, 2], street, cross)
    t.index_copy_(0, down, torch.where(on_top, t1, t0))
    kind.index_copy_(0, down, on_top.long())
    curb = where_true(into)
    if curb.numel():
        rows = take(down, curb)
        c_t, c_normal = _curb_hit(ox, oz, take(d, curb), take(t0, curb), take(t1, curb), street, cross)
        t.index_copy_(0, rows, c_t)
        kind.index_fill_(0, rows, 2)
        normal.index_copy_(0, rows, c_normal)
    return t, normal, kind


def _curb_hit(ox: float, oz: float, d: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, street: Street,
              cross: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where rays that pass over the road at curb height but land on a pavement enter that
    pavement's block (a 2-D slab test), and the outward normal of the curb face they hit."""
    dx, dz = d[:, 0], d[:, 2]
    z0 = oz + t0 * dz
    side = torch.where(ox + t0 * dx >= 0, 1.0, -1.0)
    big = 1e5
    z_lo = torch.full_like(z0, -big)
    z_hi = torch.full_like(z0, big)
    for c0, c1 in cross.tolist():
        z_lo = torch.where((c1 <= z0) & (c1 > z_lo), c1, z_lo)
        z_hi = torch.where((c0 > z0) & (c0 < z_hi), c0, z_hi)
    sdx = side * dx
    sdx = torch.where(sdx.abs() < 1e-9, 1e-9, sdx)
    sdz = torch.where(dz.abs() < 1e-9, 1e-9, dz)
    tx_in = torch.minimum((street.curb_x - side * ox) / sdx, (big - side * ox) / sdx)
    tz_in = torch.minimum((z_lo - oz) / sdz, (z_hi - oz) / sdz)
    t = torch.maximum(torch.maximum(tx_in, tz_in), t1).minimum(t0)
    zero = torch.zeros_like(side)
    x_face = (tx_in >= tz_in)[:, None]
    normal = torch.where(x_face, torch.stack([-side, zero, zero], -1), torch.stack([zero, zero, -dz.sign()], -1))
    return t, normal


def _is_pavement(x: torch.Tensor, z: torch.Tensor, street: Street, cross: torch.Tensor) -> torch.Tensor:
    inside = x.abs() >= street.curb_x
    for c0, c1 in cross.tolist():
        inside &= ~((z >= c0) & (z < c1))
    return inside


def _pack(t: torch.Tensor, ident) -> torch.Tensor:
    """Order-preserving int64 key: float32 bits of a non-negative depth, then a 16-bit id."""
    bits = t.to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    return (bits << 16) | torch.as_tensor(ident, device=t.device).to(torch.int64)


def _unpack(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (keys >> 16).to(torch.int32).view(torch.float32), keys & 0xFFFF


def sky_gradient(light: Lighting, direction: torch.Tensor) -> torch.Tensor:
    """Clear-sky colour along unit ``direction`` (N, 3): horizon to zenith, plus the sun's glow."""
    dev = direction.device
    zenith, horizon, sun_rgb = (torch.tensor(c, device=dev) for c in (light.sky_zenith, light.sky_horizon, light.sun_colour))
    mix = direction[:, 1].clamp(0, 1).pow(0.6)[:, None]
    cos_sun = (direction @ torch.tensor(light.sun_dir, dtype=torch.float32, device=dev)).clamp(0, 1)
    glow = 0.35 * cos_sun.pow(12) + 0.5 * cos_sun.pow(300) + 4.0 * (cos_sun > 0.9997)
    return horizon + (zenith - horizon) * mix + sun_rgb * glow[:, None]


def sky_colour(light: Lighting, direction: torch.Tensor, noise: Noise) -> torch.Tensor:
    """The gradient sky with cumulus clouds on a flat layer overhead."""
    up = direction[:, 1]
    height = up.clamp_min(0.02)
    u, v = direction[:, 0] / height, direction[:, 2] / height
    cloud = noise.smooth(u * 9.0 + 11.0, v * 9.0) * 0.7 + noise.smooth(u * 37.0, v * 37.0 + 5.0) * 0.3
    cover = ((cloud - (0.72 - 0.35 * light.cloud_cover)) / 0.12).clamp(0, 1) * (up / 0.08).clamp(0, 1)
    cos_sun = (direction @ torch.tensor(light.sun_dir, dtype=torch.float32, device=direction.device)).clamp(0, 1)
    cloud_light = light.sun_colour if light.cloud_colour is None else light.cloud_colour
    brightness = (0.85 + 0.3 * cos_sun) * (0.8 + 0.2 * cloud)
    cloud_rgb = torch.tensor(cloud_light, device=direction.device) * brightness[:, None]
    return torch.lerp(sky_gradient(light, direction), cloud_rgb, cover[:, None])


def shade(light: Lighting, rays: torch.Tensor, depth: torch.Tensor, albedo: torch.Tensor, normal: torch.Tensor,
          reflect: torch.Tensor, emit: torch.Tensor, shadow: torch.Tensor) -> torch.Tensor:
    """Linear RGB of surface points: Lambert sun with shadows (``shadow`` 0..1, scaled by the
    light's shadow strength), sky ambient, mirror reflection of the sky on glossy surfaces,
    emission, then distance fog."""
    dev = rays.device
    sun = torch.tensor(light.sun_dir, dtype=torch.float32, device=dev)
    sun_rgb = torch.tensor(light.sun_colour, device=dev) * 2.2
    ambient = torch.tensor(light.ambient, device=dev)
    shadow = shadow * light.shadow_strength
    lambert = (normal @ sun).clamp_min_(0).mul_(1 - shadow)
    sky_light = (0.7 + 0.3 * normal[:, 1]) * (1.0 - 0.3 * shadow)
    colour = albedo * (sun_rgb * lambert[:, None] + ambient * sky_light[:, None]) + emit
    glossy = where_true(reflect > 0)
    if glossy.numel():
        d, n = take(rays, glossy), take(normal, glossy)
        d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
        mirror = d - 2 * (d * n).sum(-1, keepdim=True) * n
        mirror[:, 1] = mirror[:, 1].abs()
        colour.index_add_(0, glossy, take(reflect, glossy)[:, None] * sky_gradient(light, mirror) * 0.6)
    fog = torch.exp(-depth / light.fog_distance)[:, None]
    return torch.lerp(torch.tensor(light.sky_horizon, device=dev).expand_as(colour), colour, fog)


def _tone_lut() -> torch.Tensor:
    """uint8 sRGB-ish values for linear intensities 0 .. 4 in steps of 1/_LUT_SCALE."""
    x = torch.arange(4 * _LUT_SCALE + 1, dtype=torch.float64) / _LUT_SCALE
    return ((1.0 - torch.exp(-1.35 * x)).pow(1 / 2.2) * 255 + 0.5).to(torch.uint8)


_LUT_SCALE = 1024
_TONE_LUT = _tone_lut()
