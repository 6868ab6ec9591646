"""Scene-geometry supervision of depth on real frames that have labels but no depth: the road is
a ground plane seen from a level camera, and things stand on it. From the labels alone, with no
scale or horizon needed (every term compares log-depths of neighbouring pixels):

- ground pixels of one row lie at one depth (a plane's z is constant along an image row);
- ground gets farther going up the image, by at least ``margin`` in log-depth per row;
- a standing thing (car, person, pole, building, fence) is as far as the ground it stands on:
  its lowest pixel matches the ground pixel just below it;
- an upright surface has one depth along an image column within one class.

This is what makes a car 10 m ahead read 10 m (the depth of the road at its wheels) rather than
the smooth near-to-far ramp a model learns from the synthetic world alone."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nets.train.data import VOID
from nets.train.idd import IDD_IGNORE

__all__ = ["UNKNOWN", "GROUND", "surface_from_labels", "surface_from_groups", "geometry_loss"]

UNKNOWN, GROUND = 0, 1
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


def _mean(values: Tensor, mask: Tensor) -> Tensor:
    return values[mask].mean() if mask.any() else values.sum() * 0.0


def geometry_loss(depth: Tensor, surface: Tensor, margin: float) -> Tensor:
    """The sum of the four terms above (each an L1 mean over its pixel pairs) for N x 1 x H x W
    predicted depth (metres, any sign while training) and N x H x W surface maps."""
    log_depth = depth[:, 0].abs().clamp(min=0.3).log()
    surface = surface.long()
    up, down = surface[:, :-1], surface[:, 1:]
    rise = log_depth[:, :-1] - log_depth[:, 1:]  # upper pixel's log-depth minus the one below
    across = log_depth[..., 1:] - log_depth[..., :-1]
    ground_rows = _mean(across.abs(), (surface[..., 1:] == GROUND) & (surface[..., :-1] == GROUND))
    ground_order = _mean((margin - rise).clamp(min=0), (up == GROUND) & (down == GROUND))
    contact = _mean(rise.abs(), (up >= _STANDING) & (up < _UPRIGHT) & (down == GROUND))
    upright = _mean(rise.abs(), (up >= _STANDING) & (up == down))
    return ground_rows + ground_order + contact + upright
