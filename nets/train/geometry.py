"""Scene-geometry supervision of depth on real frames that have labels but no depth: the road is
a ground plane seen from a level camera, and things stand on it. From the labels alone, with no
scale or horizon needed (every term compares log-depths within one image):

- ground pixels of one row lie at one depth (a plane's z is constant along an image row);
- ground gets farther going up the image, by at least ``margin`` in log-depth per row;
- an upright thing has one depth down each image column, that of the lowest pixel of its run
  of pixels in that column; and a standing thing (car, person, pole, building, fence) whose
  run ends on the ground is as far as that ground pixel: it stands where it touches the road.

A fourth term, ``ground_plane_loss``, asks for more than order: seen by any pinhole camera, the
inverse of the depth along the optical axis is an affine function of the image coordinates over
a plane, whatever the camera's height, pitch, roll or focal length. So over one frame's ground
pixels 1/depth should fit ``a*x + b*y + c``; the loss is what the fit leaves over relative to how
much 1/depth varies over that ground (its mean absolute deviation), which keeps it free of
scale and of the ramp's steepness: dividing by the mean instead rewarded a flat road (a first
stage with it flattened the dash-cam road from 7-22 m to 18-20 m in 400 steps).

That fit is dominated by the near road, where 1/depth is large and varies most, so the far road
can stay compressed at little cost: on the dash-cam clip the shipped model's road reads 19 m
where the lane dashes put it at 33 m. ``ground_plane_log_loss`` asks for the plane in log-depth
instead: each ground pixel's log-depth against that of the (fixed) plane fitted to the frame's
own ground, so a far pixel 40 % off costs what a near one 40 % off does, and the far road is
pulled out to where the near road's plane says it is. Like the first, it divides by how much
log-depth varies over the ground: without that, 400 steps flattened the dash-cam road to
15-19 m (a flat road is a plane too).

This is what makes a car 10 m ahead read 10 m (the depth of the road at its wheels) rather than
the smooth near-to-far ramp a model learns from the synthetic world alone. The labels have no
instances, so a car seen above another in one column is drawn to the nearer one's depth."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nets.train.data import VOID
from nets.train.idd import IDD_IGNORE

__all__ = ["UNKNOWN", "GROUND", "NO_ANCHOR", "surface_from_labels", "surface_from_groups", "column_anchors",
           "geometry_loss", "ground_plane_loss", "ground_plane_log_loss", "plane_residuals"]

UNKNOWN, GROUND = 0, 1
NO_ANCHOR = -1
_STANDING, _UPRIGHT = 2, 128  # ids from 2 touch the ground below them; from 128 only stay upright
# CamVid ids: 0 Sky 1 Building 2 Pole 3 Road 4 Pavement 5 Tree 6 SignSymbol 7 Fence 8 Car 9 Pedestrian 10 Bicyclist
_CAMVID_SURFACE = np.zeros(256, dtype=np.uint8)
_CAMVID_SURFACE[[3, 4]] = GROUND
for _cls in (1, 2, 7, 8, 9, 10):
    _CAMVID_SURFACE[_cls] = _STANDING + _cls
for _cls in (5, 6):  # tree crowns overhang, signs hang on poles: upright, but not standing on the road
    _CAMVID_SURFACE[_cls] = _UPRIGHT + _cls
_CAMVID_SURFACE[VOID] = UNKNOWN
# IDD-lite groups: 0 drivable 1 non-drivable 2 living 3 vehicles 4 roadside objects 5 far objects 6 sky
_GROUP_SURFACE = np.zeros(256, dtype=np.uint8)
_GROUP_SURFACE[[0, 1]] = GROUND
for _group in (2, 3, 4, 5):
    _GROUP_SURFACE[_group] = _STANDING + 20 + _group
_GROUP_SURFACE[IDD_IGNORE] = UNKNOWN


def surface_from_labels(labels: np.ndarray) -> np.ndarray:
    """The surface map (uint8: 0 unknown, 1 ground, >= 2 one id per standing or upright class) of
    a CamVid label map."""
    return _CAMVID_SURFACE[labels]


def surface_from_groups(groups: np.ndarray) -> np.ndarray:
    """The surface map of an IDD-lite group map."""
    return _GROUP_SURFACE[groups]


def column_anchors(surface: np.ndarray) -> np.ndarray:
    """For each pixel of an upright or standing thing, the row whose depth it should share (int16;
    ``NO_ANCHOR`` elsewhere): the ground pixel just below its run of same-id pixels down the
    column when a standing thing's run ends there, else the run's own lowest pixel."""
    height = surface.shape[0]
    anchors = np.full(surface.shape, NO_ANCHOR, dtype=np.int16)
    run_bottom = np.full(surface.shape[1], NO_ANCHOR, dtype=np.int16)
    for row in range(height - 1, -1, -1):
        ids = surface[row]
        below = surface[row + 1] if row + 1 < height else np.zeros_like(ids)
        upright = ids >= _STANDING
        continues = upright & (ids == below)
        standing_on_ground = upright & (ids < _UPRIGHT) & (below == GROUND)
        starts = np.where(standing_on_ground, row + 1, row).astype(np.int16)
        run_bottom = np.where(continues, run_bottom, np.where(upright, starts, NO_ANCHOR)).astype(np.int16)
        anchors[row] = run_bottom
    return anchors


def _mean(values: Tensor, mask: Tensor) -> Tensor:
    return values[mask].mean() if mask.any() else values.sum() * 0.0


def geometry_loss(depth: Tensor, surface: Tensor, anchors: Tensor, margin: float,
                  contact_moves_ground: bool = True) -> Tensor:
    """The sum of the three terms above (each an L1 mean over its pixels or pixel pairs) for
    N x 1 x H x W predicted depth (metres, any sign while training), N x H x W surface maps and
    their ``column_anchors``. With ``contact_moves_ground`` off the anchor's depth is held fixed
    in the third term, so a thing is drawn to the ground it stands on and never the ground to
    the thing (a car read too near then cannot pull the road near with it)."""
    log_depth = depth[:, 0].abs().clamp(min=0.3).log()
    surface, anchors = surface.long(), anchors.long()
    ground = surface == GROUND
    rise = log_depth[:, :-1] - log_depth[:, 1:]  # upper pixel's log-depth minus the one below
    across = log_depth[..., 1:] - log_depth[..., :-1]
    ground_rows = _mean(across.abs(), ground[..., 1:] & ground[..., :-1])
    ground_order = _mean((margin - rise).clamp(min=0), ground[:, :-1] & ground[:, 1:])
    anchored = anchors >= 0
    anchor_depth = log_depth.gather(1, anchors.clamp(min=0))
    if not contact_moves_ground:
        anchor_depth = anchor_depth.detach()
    columns = _mean((log_depth - anchor_depth).abs(), anchored)
    return ground_rows + ground_order + columns


def _plane_fit(inverse: Tensor, ground: Tensor, min_pixels: int) -> tuple[Tensor, Tensor]:
    """Per image, the least-squares affine fit of ``inverse`` (N x H x W) over the ``ground``
    pixels in normalised coordinates; returns (fitted N x H x W, images with enough ground)."""
    _, height, width = inverse.shape
    ys = torch.linspace(-1.0, 1.0, height, device=inverse.device, dtype=inverse.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=inverse.device, dtype=inverse.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    basis = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).reshape(1, -1, 3)
    weights = ground.reshape(ground.shape[0], -1, 1).to(inverse.dtype)
    weighted = basis * weights
    normal = weighted.transpose(1, 2) @ basis + 1e-6 * torch.eye(3, device=inverse.device, dtype=inverse.dtype)
    coefficients = torch.linalg.solve(normal, weighted.transpose(1, 2) @ inverse.reshape(inverse.shape[0], -1, 1))
    fitted = (basis @ coefficients).reshape(inverse.shape)
    rows_seen = ground.any(dim=2).sum(dim=1)
    enough = (ground.flatten(1).sum(dim=1) >= min_pixels) & (rows_seen >= 4)
    return fitted, enough


def _mean_per_image(values: Tensor, mask: Tensor) -> Tensor:
    """The mean of N x H x W ``values`` over each image's ``mask`` (float 0/1), N values."""
    return (values * mask).flatten(1).sum(dim=1) / mask.flatten(1).sum(dim=1).clamp(min=1.0)


def plane_residuals(depth: Tensor, ground: Tensor, min_pixels: int = 64) -> Tensor:
    """Per image with at least ``min_pixels`` ground pixels on 4 rows or more, the mean absolute
    residual of an affine fit of 1/depth over its ground (N x H x W masks; depth N x H x W,
    positive), divided by the mean absolute deviation of 1/depth there (0: a plane; about 1: no
    better than a constant); an empty tensor when none qualifies."""
    inverse = 1.0 / depth.abs().clamp(min=0.3)
    fitted, enough = _plane_fit(inverse, ground, min_pixels)
    mask = ground.to(inverse.dtype)
    residual = _mean_per_image((inverse - fitted).abs(), mask)
    centre = _mean_per_image(inverse, mask)[:, None, None]
    spread = _mean_per_image((inverse - centre).abs(), mask)
    return (residual / spread.clamp(min=1e-9))[enough]


def ground_plane_loss(depth: Tensor, surface: Tensor, min_pixels: int = 64) -> Tensor:
    """The mean of ``plane_residuals`` over a batch (N x 1 x H x W depth, N x H x W surface
    maps); 0 when no image has enough ground."""
    residuals = plane_residuals(depth[:, 0], surface.long() == GROUND, min_pixels)
    return residuals.mean() if residuals.numel() else depth.sum() * 0.0


def ground_plane_log_loss(depth: Tensor, surface: Tensor, max_depth: float, min_pixels: int = 64,
                          min_spread: float = 0.05) -> Tensor:
    """Per image, the mean |log depth - log plane depth| over the ground pixels of N x 1 x H x W
    ``depth``, divided by the mean absolute deviation of log depth there (at least
    ``min_spread``), averaged over the images with enough ground (0 if none). The plane is the
    affine fit of 1/depth over the image's ground, held fixed, so the loss moves the depth
    towards the plane and not the plane towards the depth; the division keeps a flat road, which
    is a plane too, from being the cheap way out. Pixels where the plane lies beyond
    ``max_depth`` (near the horizon) are left out."""
    inverse = 1.0 / depth[:, 0].abs().clamp(min=0.3)
    ground = surface.long() == GROUND
    fitted, enough = _plane_fit(inverse.detach(), ground, min_pixels)
    valid = ground & (fitted > 1.0 / max_depth)
    enough &= valid.flatten(1).sum(dim=1) >= min_pixels
    if not enough.any():
        return depth.sum() * 0.0
    log_depth, mask = -inverse.log()[enough], valid[enough].to(inverse.dtype)
    residual = _mean_per_image((log_depth + fitted[enough].clamp(min=1.0 / max_depth).log()).abs(), mask)
    centre = _mean_per_image(log_depth, mask)[:, None, None]
    spread = _mean_per_image((log_depth - centre).abs(), mask).clamp(min=min_spread)
    return (residual / spread).mean()
