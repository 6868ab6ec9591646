"""Frames of several seeded towns (exact labels, depth and boxes) as numbered training items,
optionally cached on disk because a 240x180 frame takes about a second to render on a CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nets.errors import NetsError

from .world import DrivingWorld

__all__ = ["SyntheticFrames"]


class SyntheticFrames:
    """Frames ``0, step, 2*step, ...`` (``frames_per_town`` of them) of each town seed at
    ``size`` (width, height). ``frame(i)`` returns rgb (uint8 HxWx3), depth (float32 HxW metres,
    SKY_DEPTH for sky), labels (uint8 HxW CamVid ids) and boxes (int64 Kx6: track, cls, x, y, w, h).
    ``randomise=True`` renders each town with its randomised look (``DrivingWorld(randomise=True)``);
    such frames are cached under names ending in ``_dr``."""

    def __init__(self, seeds: Sequence[int], frames_per_town: int, size: tuple[int, int],
                 frame_step: int = 1, cache_dir: str | Path | None = None, randomise: bool = False) -> None:
        if not seeds:
            raise NetsError("synthetic frames need at least one town seed")
        if frames_per_town < 1 or frame_step < 1:
            raise NetsError(f"frames_per_town and frame_step must be >= 1, got {frames_per_town}, {frame_step}")
        self.seeds = list(seeds)
        self.frames_per_town = frames_per_town
        self.frame_step = frame_step
        self.size = size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.randomise = randomise
        self._worlds: dict[int, DrivingWorld] = {}

    def __len__(self) -> int:
        return len(self.seeds) * self.frames_per_town

    def locate(self, i: int) -> tuple[int, int]:
        """(town seed, world frame index) of item ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"synthetic frame {i} out of range for {len(self)} frames")
        return self.seeds[i // self.frames_per_town], (i % self.frames_per_town) * self.frame_step

    def frame(self, i: int) -> dict[str, np.ndarray]:
        """The rendered frame of item ``i`` (from the cache when present)."""
        seed, index = self.locate(i)
        path = None
        if self.cache_dir is not None:
            suffix = "_dr" if self.randomise else ""
            path = self.cache_dir / f"town{seed}_f{index}_{self.size[0]}x{self.size[1]}{suffix}.npz"
            if path.is_file():
                with np.load(path) as cached:
                    return {key: cached[key] for key in cached.files}
        frame = self._render(seed, index)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(partial, **frame)
            partial.replace(path)
        return frame

    def _render(self, seed: int, index: int) -> dict[str, np.ndarray]:
        if seed not in self._worlds:
            self._worlds[seed] = DrivingWorld(seed, *self.size, randomise=self.randomise)
        out = self._worlds[seed].render(index)
        boxes = np.array([[b.track_id, b.cls, b.x, b.y, b.w, b.h] for b in out.boxes], dtype=np.int64)
        return {"rgb": out.rgb.astype(np.uint8), "depth": out.depth.astype(np.float32),
                "labels": out.labels.astype(np.uint8), "boxes": boxes.reshape(-1, 6)}
