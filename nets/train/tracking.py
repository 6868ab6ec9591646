"""SiamFC training pairs: a 127x127 exemplar and a 255x255 search crop of the same target, cut by
the tracker's own crop code (context margin, mean-colour padding), taken from two frames of one
synthetic track or from two jittered views of one region of a CamVid frame.

Both crops are scaled by their own target's size, so the target sits at the centre of the search
crop at the exemplar's scale, up to the jitter (scale stretch, a shift under half a response cell
and colour); the labels are therefore the same centred disc for every pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nets.errors import NetsError
from nets.siamese import AlexNetEmbedding, SiamFCTracker, TrackerParams
from nets.train.data import jitter_colour
from nets.train.losses import siamfc_labels
from nets.world.frames import SyntheticFrames

__all__ = ["EXEMPLAR_SIZE", "SEARCH_SIZE", "exemplar_side", "tracker_crop", "response_labels", "PairJitter",
           "make_pair", "synthetic_pair", "region_pair"]

EXEMPLAR_SIZE = TrackerParams.exemplar_size
SEARCH_SIZE = TrackerParams.search_size
Box = Sequence[float]


def exemplar_side(width: float, height: float, context: float = TrackerParams.context) -> float:
    """Side in frame pixels of the tracker's exemplar window around a width x height target."""
    margin = context * (width + height)
    return math.sqrt((width + margin) * (height + margin))


@dataclass
class _CropWindow:
    """What ``SiamFCTracker._crops`` reads from the tracker: the centre, padding colour and device."""

    center: torch.Tensor
    mean_colour: torch.Tensor
    device: torch.device


def tracker_crop(image: np.ndarray, centre: tuple[float, float], side: float, out_size: int) -> np.ndarray:
    """The out_size x out_size x 3 uint8 crop of a square window of ``side`` pixels around
    ``centre`` of an RGB frame, made by the tracker's crop code (padded with the frame's mean colour)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise NetsError(f"crops need H x W x 3 uint8 RGB frames, got {image.dtype} {image.shape}")
    if not side > 0:
        raise NetsError(f"crop side must be positive, got {side}")
    frame = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    window = _CropWindow(torch.tensor(centre, dtype=torch.float32), frame.mean(dim=(1, 2)), torch.device("cpu"))
    crop = SiamFCTracker._crops(window, frame, torch.tensor([float(side)]), out_size)[0]
    return crop.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def response_labels(radius_px: float) -> np.ndarray:
    """The 17x17 labels of a centred pair: 1 within ``radius_px`` search-crop pixels of the centre."""
    stride = AlexNetEmbedding.total_stride
    size = (SEARCH_SIZE - EXEMPLAR_SIZE) // stride + 1
    return siamfc_labels(size, radius_px / stride).numpy()


@dataclass(frozen=True)
class PairJitter:
    """Random changes of the search view: scale stretch (1 ± ``stretch``, log-uniform), shift of
    the search window by up to ``max_shift`` search-crop pixels, and colour jitter ``colour``."""

    stretch: float = 0.1
    max_shift: float = 4.0
    colour: float = 0.2


def _centre(box: Box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def make_pair(image_a: np.ndarray, box_a: Box, image_b: np.ndarray, box_b: Box, jitter: PairJitter,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(exemplar 127x127x3, search 255x255x3) uint8 crops: the target ``box_a`` (x, y, w, h) of
    ``image_a`` and, jittered, the same target at ``box_b`` of ``image_b``."""
    exemplar = tracker_crop(image_a, _centre(box_a), exemplar_side(*box_a[2:]), EXEMPLAR_SIZE)
    spread = math.log1p(jitter.stretch)
    side = exemplar_side(*box_b[2:]) * SEARCH_SIZE / EXEMPLAR_SIZE * math.exp(rng.uniform(-spread, spread))
    shift = rng.uniform(-jitter.max_shift, jitter.max_shift, size=2) * side / SEARCH_SIZE
    cx, cy = _centre(box_b)
    search = tracker_crop(image_b, (cx + shift[0], cy + shift[1]), side, SEARCH_SIZE)
    return exemplar, jitter_colour(search, jitter.colour, rng)


def _rgb_and_boxes(frames: SyntheticFrames, i: int) -> tuple[np.ndarray, np.ndarray]:
    frame = frames.frame(i)
    return frame["rgb"], frame["boxes"]


def synthetic_pair(frames: SyntheticFrames, max_gap: int, min_side: int, jitter: PairJitter,
                   rng: np.random.Generator, tries: int = 8) -> tuple[np.ndarray, np.ndarray] | None:
    """A pair from two frames at most ``max_gap`` items apart of one track whose box is at least
    ``min_side`` pixels on each side in both; None when ``tries`` draws find none."""
    if frames.frames_per_town < 2:
        raise NetsError(f"tracking pairs need at least 2 frames per town, got {frames.frames_per_town}")
    for _ in range(tries):
        i = int(rng.integers(len(frames)))
        image_a, boxes_a = _rgb_and_boxes(frames, i)
        big = boxes_a[np.minimum(boxes_a[:, 4], boxes_a[:, 5]) >= min_side]
        if not len(big):
            continue
        track = big[int(rng.integers(len(big)))]
        first = i - i % frames.frames_per_town
        j = int(np.clip(i + rng.integers(-max_gap, max_gap + 1), first, first + frames.frames_per_town - 1))
        image_b, boxes_b = _rgb_and_boxes(frames, j)
        match = boxes_b[(boxes_b[:, 0] == track[0]) & (np.minimum(boxes_b[:, 4], boxes_b[:, 5]) >= min_side)]
        if len(match):
            return make_pair(image_a, track[2:].tolist(), image_b, match[0, 2:].tolist(), jitter, rng)
    return None


def region_pair(image: np.ndarray, side_range: tuple[float, float], jitter: PairJitter,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A pair made from one random region (sides drawn from ``side_range`` pixels) of a frame:
    the exemplar and a jittered view of the same region."""
    height, width = image.shape[:2]
    low, high = side_range
    if not 0 < low <= high:
        raise NetsError(f"region sides must satisfy 0 < low <= high, got {side_range}")
    w, h = (min(float(s), width, height) for s in rng.uniform(low, high, size=2))
    box = (rng.uniform(0, width - w), rng.uniform(0, height - h), w, h)
    return make_pair(image, box, image, box, jitter, rng)
