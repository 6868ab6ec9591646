"""Procedural surface textures: seeded noise, ground markings and per-material albedo.

Ground texture lookups repeat every ``TEXTURE_PERIOD`` metres along z (every scale used divides it;
primitives are textured in their own local coordinates), so a scene shifted by a multiple of it
(to keep float32 coordinates small far down the street) looks exactly the same.
"""

from __future__ import annotations

import torch

from .gather import take, where_true
from .primitives import Material
from .scene import GroundStyle, Street

TEXTURE_PERIOD = 768.0
_SIZE = 256


class Noise:
    """Two periodic 256x256 seeded textures: smooth multi-scale (pink) noise and white noise."""

    def __init__(self, seed: int, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(seed)
        white = torch.rand(_SIZE, _SIZE, generator=gen)
        freq = torch.fft.fftfreq(_SIZE)
        radius = (freq[:, None] ** 2 + freq[None, :] ** 2).sqrt().clamp_min(1.0 / _SIZE)
        pink = torch.fft.ifft2(torch.fft.fft2(white - 0.5) / radius ** 1.1).real
        pink = (pink - pink.mean()) / (pink.std() * 4.0) + 0.5
        self.pink = pink.clamp(0, 1).flatten().to(device)
        self.white = white.flatten().to(device)

    def smooth(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Bilinear lookup of the pink texture at texel coordinates (u, v); about 0..1, mean 0.5."""
        u0, v0 = u.floor(), v.floor()
        fu, fv = u - u0, v - v0
        iu, iv = u0.long() & (_SIZE - 1), v0.long() & (_SIZE - 1)
        ju, jv = (iu + 1) & (_SIZE - 1), (iv + 1) & (_SIZE - 1)
        tex = self.pink
        iv, jv = iv * _SIZE, jv * _SIZE
        top = torch.lerp(take(tex, iv + iu), take(tex, iv + ju), fu)
        bottom = torch.lerp(take(tex, jv + iu), take(tex, jv + ju), fu)
        return torch.lerp(top, bottom, fv)

    def cell(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """A uniform 0..1 value per integer cell (i, j), repeating every 256 cells."""
        return take(self.white, (j.long() & (_SIZE - 1)) * _SIZE + (i.long() & (_SIZE - 1)))


def _band(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return (x >= lo) & (x < hi)


def ground_albedo(x: torch.Tensor, z: torch.Tensor, kind: torch.Tensor, street: Street, cross: torch.Tensor,
                  noise: Noise, footprint: torch.Tensor, style: GroundStyle) -> torch.Tensor:
    """Linear RGB albedo of ground points (kind 0 road, 1 pavement top, 2 curb face)."""
    rows, blocks = [], []
    for k, texture in enumerate((_road, _pavement, _curb)):
        i = where_true(kind == k)
        if i.numel():
            rows.append(i)
            blocks.append(texture(take(x, i), take(z, i), street, cross, noise, take(footprint, i), style))
    return torch.empty(x.shape[0], 3, device=x.device).index_copy_(0, torch.cat(rows), torch.cat(blocks))


def _road(x, z, street, cross, noise, footprint, style):
    """Asphalt with blotches and grain, worn lane markings, zebra crossings, stop lines, red
    bike lanes and a dark gutter along the curb."""
    ax = x.abs()
    grain = noise.smooth(x * 4.0, z * 4.0) - 0.5
    blotch = noise.smooth(x / 3.0 + 97.0, z / 3.0)
    asphalt = (0.05 + 0.035 * blotch + 0.04 * grain * (1.0 - footprint / 0.25).clamp(0, 1)) * style.asphalt
    road = asphalt[:, None] * torch.tensor(style.asphalt_tint, device=x.device)
    lane_w, lanes, edge = street.lane_width, street.lanes_each_way, street.carriageway_x
    dash = (z / 12.0).frac() < 0.3
    yellow = _band(ax, 0.08, 0.2)
    paint = yellow | ((ax - edge).abs() < 0.1)
    for k in range(1, lanes):
        paint |= ((ax - k * lane_w).abs() < 0.075) & dash
    in_cross = torch.zeros_like(paint)
    for z0, z1 in cross.tolist():
        in_cross |= _band(z, z0, z1)
        zebra = (_band(z, z0 - 4.5, z0 - 1.0) | _band(z, z1 + 1.0, z1 + 4.5)) & (ax < street.curb_x) & ((x / 1.1).frac() < 0.5)
        stop = _band(z, z0 - 5.2, z0 - 4.8) & _band(x, 0.0, edge) | _band(z, z1 + 4.8, z1 + 5.2) & _band(-x, 0.0, edge)
        paint |= zebra | stop
    paint = where_true(paint & ~in_cross)
    if paint.numel():
        px, pz = take(x, paint), take(z, paint)
        worn = 0.55 + 0.3 * noise.smooth(px * 8.0 + 31.0, pz * 8.0)
        colour = torch.where(_band(px.abs(), 0.08, 0.2)[:, None], torch.tensor([0.7, 0.5, 0.08], device=x.device),
                             torch.tensor([0.75, 0.75, 0.72], device=x.device))
        road = road.index_copy(0, paint, colour * worn[:, None])
    bike = _band(ax, edge + 0.1, street.curb_x) & ~in_cross
    road = torch.where(bike[:, None], road * torch.tensor(style.bike_tint, device=x.device), road)
    gutter = 1.0 - 0.45 * torch.exp(-(street.curb_x - ax).clamp_min(0) / 0.25) * (~in_cross)
    return road * gutter[:, None]


def _pavement(x, z, street, cross, noise, footprint, style):
    """0.6 m concrete slabs with seams, darker along the building line."""
    grain = noise.smooth(x * 4.0, z * 4.0) - 0.5
    seam = ((x / 0.6).frac() < 0.06) | ((z / 0.6).frac() < 0.06)
    slab = 0.25 + 0.06 * noise.cell((x / 0.6).floor(), (z / 0.6).floor()) + 0.08 * grain * (1.0 - footprint / 0.25).clamp(0, 1)
    slab = slab * torch.where(seam, 1.0 - 0.35 * (1.0 - footprint / 0.1).clamp(0, 1), torch.ones_like(slab))
    wall = 1.0 - 0.4 * torch.exp(-(street.building_x - x.abs()).clamp_min(0) / 0.5)
    return (slab * wall)[:, None] * torch.tensor(style.pavement, device=x.device)


def _curb(x, z, street, cross, noise, footprint, style):
    """Light concrete curb stones."""
    grain = noise.smooth(x * 4.0, z * 4.0) - 0.5
    return (0.42 * (0.9 + 0.2 * grain))[:, None] * torch.tensor(style.curb, device=x.device)


def surface_albedo(material: torch.Tensor, local: torch.Tensor, normal: torch.Tensor, half: torch.Tensor,
                   colour: torch.Tensor, param: torch.Tensor, noise: Noise,
                   footprint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Albedo, mirror-reflection weight and emitted light of primitive surface points.

    ``local`` is the point relative to the primitive's centre; everything is (N, ...). Each
    material group is textured on its own rows and all groups are written back in one copy."""
    rows, blocks = [], []

    def group(*materials: Material) -> tuple[torch.Tensor, ...] | None:
        mask = material == materials[0]
        for m in materials[1:]:
            mask |= material == m
        i = where_true(mask)
        if not i.numel():
            return None
        rows.append(i)
        return take(local, i), take(normal, i), take(half, i), take(colour, i), take(param, i), i

    def add(albedo: torch.Tensor, reflect: torch.Tensor | None = None, emit: torch.Tensor | None = None) -> None:
        zero = albedo[:, :1] * 0
        blocks.append(torch.cat([albedo, zero if reflect is None else reflect[:, None],
                                 zero.expand(-1, 3) if emit is None else emit], 1))

    if g := group(Material.PLAIN, Material.BARK, Material.METAL, Material.CLOTH, Material.RUBBER):
        p, _, _, c, _, i = g
        grain = noise.smooth((p[:, 0] + p[:, 2]) * 6.0 + 17.0, p[:, 1] * 6.0) - 0.5
        add(c * (1.0 + 0.25 * grain)[:, None], torch.where(take(material, i) == Material.METAL, 0.06, 0.0))
    if g := group(Material.FACADE):
        p, n, h, c, prm, i = g
        add(*_facade(p, n, h, c, prm, noise, take(footprint, i)))
    if g := group(Material.CAR_BODY, Material.CAR_CABIN):
        p, n, h, c, prm, i = g
        add(*_car(take(material, i) == Material.CAR_CABIN, p, n, h, c, prm))
    if g := group(Material.FOLIAGE):
        p, _, _, c, prm, _ = g
        clumps = noise.smooth(p[:, 0] * 9.0 + p[:, 2] * 7.0 + prm[:, 0] * 200.0, p[:, 1] * 9.0 + p[:, 2] * 3.0)
        add(c * (0.35 + 1.4 * clumps)[:, None])
    if g := group(Material.SIGN):
        p, n, h, _, prm, _ = g
        add(_sign(p, n, h, prm))
    if g := group(Material.TRAFFIC_LIGHT):
        p, n, _, c, prm, _ = g
        add(c, emit=_traffic_light(p, n, prm))
    if g := group(Material.FENCE):
        p, n, _, c, _, _ = g
        along = torch.where(n[:, 0].abs() > 0.5, p[:, 2], p[:, 0])
        gap = (along / 0.16).frac() < 0.12
        wood = 0.8 + 0.4 * noise.smooth(along * 30.0, p[:, 1] * 2.0)
        add(c * (torch.where(gap, 0.45, 1.0) * wood)[:, None])
    out = torch.empty(local.shape[0], 7, device=local.device).index_copy_(0, torch.cat(rows), torch.cat(blocks))
    base = local[:, 1] + half[:, 1]
    contact = 1.0 - 0.35 * torch.exp(-base / 0.35) * (normal[:, 1].abs() < 0.5)
    return out[:, :3].clamp(0, 1) * contact[:, None], out[:, 3], out[:, 4:]


def _facade(p, n, half, colour, param, noise, footprint):
    """Building walls: storeys of windows (shop fronts on the ground floor), floor bands, coping."""
    floor_h, spacing, frac, variant = param.unbind(-1)
    along = torch.where(n[:, 0].abs() > 0.5, p[:, 2] + half[:, 2], p[:, 0] + half[:, 0])
    width = torch.where(n[:, 0].abs() > 0.5, half[:, 2], half[:, 0]) * 2
    y = p[:, 1] + half[:, 1]
    columns = (width / spacing).floor().clamp_min(1)
    pitch = width / columns
    cu = (along / pitch).frac()
    storey = (y / floor_h).floor()
    cv = (y / floor_h).frac()
    window = ((cu - 0.5).abs() < frac / 2) & (cv > 0.3) & (cv < 0.85) & (storey >= 1)
    window &= y < half[:, 1] * 2 - 0.8
    shop = (storey == 0) & (variant > 0.4) & ((cu - 0.5).abs() < 0.42) & (cv > 0.12) & (cv < 0.8)
    glass = window | shop
    tint = noise.cell((along / pitch).floor() + variant * 97, storey)
    glass_colour = torch.stack([0.04 + 0.1 * tint, 0.05 + 0.1 * tint, 0.07 + 0.1 * tint], -1)
    wall = colour * (1.0 - 0.2 * (cv < 0.06).float() * (storey >= 1).float())[:, None]
    wall = wall * (1.0 - 0.25 * (y > half[:, 1] * 2 - 0.4).float())[:, None]
    sill = (cv >= 0.25) & (cv <= 0.3) & ((cu - 0.5).abs() < frac / 2 + 0.04) & (storey >= 1)
    wall = torch.where(sill[:, None], wall * 1.2, wall)
    blur = (footprint / (pitch * 0.35)).clamp(0, 1)[:, None]
    mean = wall * (1 - 0.45 * frac[:, None]) + glass_colour * 0.45 * frac[:, None]
    sharp = torch.where(glass[:, None], glass_colour, wall)
    albedo = sharp * (1 - blur) + mean * blur
    reflect = torch.where(glass, 0.35, 0.0) * (1 - blur[:, 0]) + 0.15 * frac * blur[:, 0]
    return albedo, reflect


def _car(cabin, p, n, half, colour, param):
    """Car paint with lamps, number plate and dark bumpers; glass cabin with a painted roof."""
    heading, _, body_top, _ = param.unbind(-1)
    y = p[:, 1] + half[:, 1] + torch.where(cabin, body_top, 0.3)
    u = p[:, 0] / half[:, 0]
    end = n[:, 2].abs() > 0.5
    rear = end & (n[:, 2] * heading < 0)
    front = end & ~rear
    lamp_row = (y > body_top - 0.24) & (y < body_top - 0.08) & (u.abs() > 0.62)
    plate = (u.abs() < 0.26) & (y > 0.42) & (y < 0.56)
    bumper = y < 0.42
    albedo = colour.clone()
    albedo = torch.where((bumper & ~cabin)[:, None], albedo * 0.25 + 0.02, albedo)
    albedo = torch.where((end & plate & ~cabin)[:, None], torch.tensor([0.8, 0.8, 0.75], device=p.device), albedo)
    emit = torch.zeros_like(albedo)
    emit = torch.where((rear & lamp_row & ~cabin)[:, None], torch.tensor([0.5, 0.02, 0.01], device=p.device), emit)
    emit = torch.where((front & lamp_row & ~cabin)[:, None], torch.tensor([0.5, 0.48, 0.4], device=p.device), emit)
    pillar = (n[:, 0].abs() > 0.5) & ((p[:, 2].abs() - half[:, 2]).abs() < 0.12)
    glass = cabin & (n[:, 1] < 0.5) & ~pillar
    albedo = torch.where(glass[:, None], torch.tensor([0.03, 0.035, 0.045], device=p.device), albedo)
    reflect = torch.where(glass, 0.35, 0.12)
    return albedo, reflect, emit


def _sign(p, n, half, param):
    """Road signs: a red-ringed disc, a blue disc with a white bar, or a yellow diamond."""
    kind, facing = param[:, 0], param[:, 1]
    u, v = p[:, 0] / half[:, 0], p[:, 1] / half[:, 1]
    r = (u * u + v * v).sqrt()
    dev = p.device
    grey = torch.tensor([0.35, 0.35, 0.36], device=dev)
    ring = torch.where((r < 0.9)[:, None], torch.where((r > 0.68)[:, None], torch.tensor([0.55, 0.03, 0.03], device=dev),
                                                      torch.tensor([0.8, 0.8, 0.8], device=dev)), grey)
    blue = torch.where((r < 0.9)[:, None], torch.where(((u.abs() < 0.55) & (v.abs() < 0.15))[:, None],
                                                      torch.tensor([0.8, 0.8, 0.8], device=dev),
                                                      torch.tensor([0.03, 0.12, 0.45], device=dev)), grey)
    d = u.abs() + v.abs()
    diamond = torch.where((d < 0.95)[:, None], torch.where((d > 0.8)[:, None], torch.tensor([0.02, 0.02, 0.02], device=dev),
                                                          torch.tensor([0.8, 0.6, 0.05], device=dev)), grey)
    face = torch.where((kind == 0)[:, None], ring, torch.where((kind == 1)[:, None], blue, diamond))
    front = n[:, 2] * facing > 0.5
    return torch.where(front[:, None], face, grey)


def _traffic_light(p, n, param):
    """Three lamps on the face towards traffic; the one chosen by the seed glows."""
    facing, lit = param[:, 0], param[:, 1]
    slot = ((p[:, 1] + 0.45) / 0.3).floor().clamp(0, 2)
    centre_v = (slot + 0.5) * 0.3 - 0.45
    disc = p[:, 0] ** 2 + (p[:, 1] - centre_v) ** 2 < 0.1 ** 2
    colours = torch.tensor([[0.05, 0.9, 0.2], [1.0, 0.6, 0.0], [1.0, 0.05, 0.02]], device=p.device)
    on = disc & (n[:, 2] * facing > 0.5) & (slot == lit)
    return torch.where(on[:, None], colours[slot.long()] * 1.5, torch.zeros_like(p))
