"""Pinhole camera: pose, per-pixel rays and projection of boxes to screen rectangles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Pose:
    """Camera position (metres, world frame: x right of the street, y up, z along it) and
    orientation: ``yaw`` turns right (towards +x), ``pitch`` looks up, both in radians."""

    x: float
    y: float
    z: float
    yaw: float = 0.0
    pitch: float = 0.0

    @property
    def origin(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.z)

    def basis(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """Unit right, up and forward vectors of the camera in world coordinates."""
        cy, sy, cp, sp = math.cos(self.yaw), math.sin(self.yaw), math.cos(self.pitch), math.sin(self.pitch)
        forward = (sy * cp, sp, cy * cp)
        right = (cy, 0.0, -sy)
        up = (-sy * sp, cp, -cy * sp)
        return right, up, forward


@dataclass(frozen=True)
class Camera:
    """Intrinsics of a square-pixel pinhole camera with horizontal field of view ``fov_deg``."""

    width: int
    height: int
    fov_deg: float = 60.0

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"horizontal field of view must be in 1..170 degrees, got {self.fov_deg}")

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return self.width / 2 / math.tan(math.radians(self.fov_deg) / 2)

    def rays(self, pose: Pose, height: int, width: int, device: torch.device) -> torch.Tensor:
        """World-space ray directions (height x width x 3) scaled so that their component along
        the optical axis is 1: a hit at ray parameter t then has depth exactly t.

        ``height``/``width`` may exceed the image (padding rows/columns continue the grid)."""
        right, up, forward = (torch.tensor(v, dtype=torch.float32, device=device) for v in pose.basis())
        f = self.focal
        xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5 - self.width / 2) / f
        ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5 - self.height / 2) / f
        return forward + xs[None, :, None] * right - ys[:, None, None] * up

    def project_boxes(self, pose: Pose, lo: torch.Tensor, hi: torch.Tensor,
                      near: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Screen rectangles (N x 4: x0, y0, x1, y1 in pixels) that contain boxes ``lo..hi``
        clipped to depth >= ``near`` (boxes wholly nearer get x1 < x0), and each box's smallest
        depth along the optical axis."""
        device = lo.device
        right, up, forward = (torch.tensor(v, dtype=torch.float32, device=device) for v in pose.basis())
        basis = torch.stack([right, up, forward], 1)
        origin = torch.tensor(pose.origin, dtype=torch.float32, device=device)
        corners = torch.where(_CORNER_BITS.to(device)[None], hi[:, None], lo[:, None])
        cam = (corners - origin) @ basis
        edges = _EDGES.to(device)
        a, b = cam[:, edges[:, 0]], cam[:, edges[:, 1]]
        za, zb = a[..., 2:], b[..., 2:]
        crossing = ((za - near) * (zb - near) < 0).squeeze(-1)
        edge_pts = a + (b - a) * ((near - za) / torch.where(zb == za, torch.ones_like(za), zb - za))
        pts = torch.cat([cam, edge_pts], 1)
        valid = torch.cat([cam[..., 2] >= near, crossing], 1)
        z = pts[..., 2].clamp_min(near)
        x = self.width / 2 + self.focal * pts[..., 0] / z
        y = self.height / 2 - self.focal * pts[..., 1] / z
        inf = torch.tensor(float("inf"), device=device)
        rect = torch.stack([
            torch.where(valid, x, inf).amin(1), torch.where(valid, y, inf).amin(1),
            torch.where(valid, x, -inf).amax(1), torch.where(valid, y, -inf).amax(1),
        ], 1)
        return rect, cam[..., 2].amin(1).clamp_min(near)


_CORNER_BITS = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], dtype=torch.bool)
_EDGES = torch.tensor([(i, i ^ bit) for i in range(8) for bit in (1, 2, 4) if i < i ^ bit])
