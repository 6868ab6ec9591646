"""Tracking sequences from the synthetic world: in each town, the first ``length`` frames and one
car or pedestrian visible (at least ``min_side`` pixels on each side) in every one of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nets.errors import NetsError
from nets.world import DrivingWorld
from nets.world.labels import CAR, PEDESTRIAN

__all__ = ["TrackSequence", "track_sequences", "TRACKED_CLASSES"]

TRACKED_CLASSES = (CAR, PEDESTRIAN)


@dataclass(frozen=True)
class TrackSequence:
    """Frames (H x W x 3 uint8 RGB) and the true (x, y, w, h) box of one target in each."""

    town: int
    track_id: int
    frames: list[np.ndarray]
    boxes: np.ndarray


def _sequence_in(town: int, length: int, size: tuple[int, int], min_side: int) -> TrackSequence | None:
    """One target followed through the town's first ``length`` frames (drawn at random, seeded by
    the town, among those always visible), or None when no target stays visible."""
    world = DrivingWorld(town, *size)
    frames, per_frame = [], []
    candidates: set[int] | None = None
    for index in range(length):
        rendered = world.render(index)
        boxes = {b.track_id: (b.x, b.y, b.w, b.h) for b in rendered.boxes
                 if b.cls in TRACKED_CLASSES and min(b.w, b.h) >= min_side}
        candidates = set(boxes) if candidates is None else candidates & set(boxes)
        if not candidates:
            return None
        frames.append(rendered.rgb.astype(np.uint8))
        per_frame.append(boxes)
    chosen = sorted(candidates)[int(np.random.default_rng(town).integers(len(candidates)))]
    truth = np.array([boxes[chosen] for boxes in per_frame], dtype=np.float64)
    return TrackSequence(town, chosen, frames, truth)


def track_sequences(towns: Sequence[int], count: int, length: int, size: tuple[int, int],
                    min_side: int) -> Iterator[TrackSequence]:
    """The first ``count`` towns (in order) that hold a sequence, one sequence each, rendered
    one at a time; raises when the towns run out first."""
    if count < 1 or length < 2 or min_side < 1:
        raise NetsError(f"tracking sequences need count >= 1, length >= 2 and min_side >= 1, got "
                        f"{count}, {length}, {min_side}")
    found = 0
    for town in towns:
        sequence = _sequence_in(town, length, size, min_side)
        if sequence is not None:
            found += 1
            yield sequence
            if found == count:
                return
    raise NetsError(f"only {found} of {count} towns in {towns[0]}..{towns[-1]} have a car or pedestrian "
                    f"visible for {length} frames at {size[0]}x{size[1]}; give more towns or shorter sequences")
