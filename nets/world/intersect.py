"""Vectorised ray/primitive intersection and surface normals.

All functions broadcast: origins and directions are (..., 3), primitive centres and half
extents (..., 3); a miss is ``inf``. Directions need not be unit length.
"""

from __future__ import annotations

import torch

from .primitives import Kind

INF = float("inf")


def hit_box(origin: torch.Tensor, direction: torch.Tensor, center: torch.Tensor, half: torch.Tensor,
            t_min: float) -> torch.Tensor:
    """Entry parameter of rays into axis-aligned boxes (slab test), ``inf`` when missed or
    when the entry lies before ``t_min``."""
    inv = 1.0 / torch.where(direction == 0, torch.full_like(direction, 1e-12), direction)
    return hit_box_inverse(origin, inv, center, half, t_min)


def hit_box_inverse(origin: torch.Tensor, inv_direction: torch.Tensor, center: torch.Tensor, half: torch.Tensor,
                    t_min: float) -> torch.Tensor:
    """``hit_box`` given reciprocal directions, which callers can compute once per pixel."""
    q = center - origin
    t1 = (q - half) * inv_direction
    t2 = (q + half) * inv_direction
    near = torch.minimum(t1, t2).amax(-1)
    far = torch.maximum(t1, t2).amin(-1)
    return torch.where((near <= far) & (near > t_min), near, INF)


def hit_cylinder(origin: torch.Tensor, direction: torch.Tensor, center: torch.Tensor, half: torch.Tensor,
                 t_min: float) -> torch.Tensor:
    """First hit of rays with capped vertical cylinders (radius ``half.x``, half height ``half.y``)."""
    q = origin - center
    qx, qy, qz = q.unbind(-1)
    dx, dy, dz = direction.unbind(-1)
    r, hy = half[..., 0], half[..., 1]
    a = (dx * dx + dz * dz).clamp_min(1e-12)
    b = qx * dx + qz * dz
    c = qx * qx + qz * qz - r * r
    disc = b * b - a * c
    t_side = (-b - disc.clamp_min(0).sqrt()) / a
    side_ok = (disc >= 0) & ((qy + t_side * dy).abs() <= hy) & (t_side > t_min)
    safe_dy = torch.where(dy == 0, torch.full_like(dy, 1e-12), dy)
    t_cap = (torch.where(dy < 0, hy, -hy) - qy) / safe_dy
    cx, cz = qx + t_cap * dx, qz + t_cap * dz
    cap_ok = (cx * cx + cz * cz <= r * r) & (t_cap > t_min)
    return torch.minimum(torch.where(side_ok, t_side, INF), torch.where(cap_ok, t_cap, INF))


def hit_ellipsoid(origin: torch.Tensor, direction: torch.Tensor, center: torch.Tensor, half: torch.Tensor,
                  t_min: float) -> torch.Tensor:
    """First hit of rays with axis-aligned ellipsoids of radii ``half``."""
    q = (origin - center) / half
    d = direction / half
    a = (d * d).sum(-1)
    b = (q * d).sum(-1)
    c = (q * q).sum(-1) - 1.0
    disc = b * b - a * c
    t = (-b - disc.clamp_min(0).sqrt()) / a
    return torch.where((disc >= 0) & (t > t_min), t, INF)


HIT_FUNCTIONS = {Kind.BOX: hit_box, Kind.CYLINDER: hit_cylinder, Kind.ELLIPSOID: hit_ellipsoid}


def normals(kind: torch.Tensor, point: torch.Tensor, center: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Outward unit normals at surface points (N, 3) of primitives of the given kinds (N,)."""
    p = point - center
    rel = p.abs() / half
    axis = rel.argmax(-1, keepdim=True)
    n = torch.zeros_like(p).scatter_(-1, axis, torch.gather(p, -1, axis).sign())
    rows = (kind == Kind.CYLINDER).nonzero().squeeze(1)
    if rows.numel():
        q, r = p.index_select(0, rows), rel.index_select(0, rows)
        radial = q * torch.tensor([1.0, 0.0, 1.0], device=q.device)
        on_cap = r[:, 1] >= torch.linalg.vector_norm(radial, dim=-1) / half.index_select(0, rows)[:, 0]
        cap = torch.zeros_like(q)
        cap[:, 1] = q[:, 1].sign()
        radial = radial / torch.linalg.vector_norm(radial, dim=-1, keepdim=True).clamp_min(1e-12)
        n.index_copy_(0, rows, torch.where(on_cap[:, None], cap, radial))
    rows = (kind == Kind.ELLIPSOID).nonzero().squeeze(1)
    if rows.numel():
        h = half.index_select(0, rows)
        e = p.index_select(0, rows) / (h * h)
        n.index_copy_(0, rows, e / torch.linalg.vector_norm(e, dim=-1, keepdim=True).clamp_min(1e-12))
    return n
