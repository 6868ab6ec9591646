"""SiamFC training pairs: a 127x127 exemplar and a 255x255 search crop of the same target, cut by
the tracker's own crop code (context margin, mean-colour padding), taken from two frames of one
synthetic track or from two jittered views of one region of a CamVid frame.

Both crops are scaled by their own target's size, so the target sits at the centre of the search
crop at the exemplar's scale, up to the jitter (scale stretch, a shift under half a response cell
and colour); the labels are therefore the same centred disc for every pair.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nets.errors import NetsError
from nets.siamese import AlexNetEmbedding, SiamFCTracker, TrackerParams
from nets.train.data import jitter_colour
from nets.train.losses import siamfc_labels
from nets.world import DrivingWorld

__all__ = ["EXEMPLAR_SIZE", "SEARCH_SIZE", "exemplar_side", "tracker_crop", "response_labels", "PairJitter",
           "make_pair", "TrackFrames", "synthetic_pair", "region_pair"]

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


class TrackFrames:
    """Frames ``0, step, 2*step, ...`` (``frames_per_town`` of them) of each synthetic town at
    ``size`` (width, height): RGB and the agents' boxes (K x 6: track, cls, x, y, w, h), rendered
    once and kept in ``cache_dir`` when given."""

    def __init__(self, seeds: Sequence[int], frames_per_town: int, size: tuple[int, int], frame_step: int,
                 cache_dir: str | Path | None) -> None:
        if not seeds or frames_per_town < 2 or frame_step < 1:
            raise NetsError(f"track frames need towns, at least 2 frames per town and a positive step, got "
                            f"{len(seeds)} towns, {frames_per_town} frames, step {frame_step}")
        self.seeds = list(seeds)
        self.frames_per_town = frames_per_town
        self.size = size
        self.frame_step = frame_step
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._worlds: dict[int, DrivingWorld] = {}

    def __len__(self) -> int:
        return len(self.seeds) * self.frames_per_town

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(rgb, boxes) of item ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"track frame {i} out of range for {len(self)} frames")
        seed, index = self.seeds[i // self.frames_per_town], (i % self.frames_per_town) * self.frame_step
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"track{seed}_f{index}_{self.size[0]}x{self.size[1]}.npz"
            if path.is_file():
                with np.load(path) as cached:
                    return cached["rgb"], cached["boxes"]
        if seed not in self._worlds:
            self._worlds[seed] = DrivingWorld(seed, *self.size)
        out = self._worlds[seed].render(index)
        boxes = np.array([[b.track_id, b.cls, b.x, b.y, b.w, b.h] for b in out.boxes], dtype=np.int64).reshape(-1, 6)
        rgb = out.rgb.astype(np.uint8)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(partial, rgb=rgb, boxes=boxes)
            partial.replace(path)
        return rgb, boxes


def synthetic_pair(frames: TrackFrames, max_gap: int, min_side: int, jitter: PairJitter, rng: np.random.Generator,
                   tries: int = 8) -> tuple[np.ndarray, np.ndarray] | None:
    """A pair from two frames at most ``max_gap`` items apart of one track whose box is at least
    ``min_side`` pixels on each side in both; None when ``tries`` draws find none."""
    for _ in range(tries):
        i = int(rng.integers(len(frames)))
        image_a, boxes_a = frames.frame(i)
        big = boxes_a[np.minimum(boxes_a[:, 4], boxes_a[:, 5]) >= min_side]
        if not len(big):
            continue
        track = big[int(rng.integers(len(big)))]
        first = i - i % frames.frames_per_town
        j = int(np.clip(i + rng.integers(-max_gap, max_gap + 1), first, first + frames.frames_per_town - 1))
        image_b, boxes_b = frames.frame(j)
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
