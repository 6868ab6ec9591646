"""Torch Dataset over rendered frames of several seeded towns (depth, segmentation, boxes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from .world import DrivingWorld


class DrivingWorldDataset(Dataset):
    """Item ``i`` is frame ``(i % frames_per_town) * frame_step`` of town ``seeds[i // frames_per_town]``.

    Items are dicts: image float32 3xHxW in 0..1, depth float32 1xHxW (metres along the optical
    axis), labels int64 HxW (CamVid ids) and boxes int64 Kx6 (track_id, cls, x, y, w, h)."""

    def __init__(self, seeds: Sequence[int], frames_per_town: int, width: int = 480, height: int = 360,
                 fov_deg: float = 60.0, fps: float = 25.0, frame_step: int = 1, device=None) -> None:
        if not seeds:
            raise ValueError("DrivingWorldDataset needs at least one seed")
        if frames_per_town < 1 or frame_step < 1:
            raise ValueError(f"frames_per_town and frame_step must be >= 1, got {frames_per_town}, {frame_step}")
        self.seeds = list(seeds)
        self.frames_per_town = frames_per_town
        self.frame_step = frame_step
        self._world_args = (width, height, fov_deg, fps, device)
        self._worlds: dict[int, DrivingWorld] = {}

    def __len__(self) -> int:
        return len(self.seeds) * self.frames_per_town

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        i %= len(self)
        seed = self.seeds[i // self.frames_per_town]
        if seed not in self._worlds:
            self._worlds[seed] = DrivingWorld(seed, *self._world_args)
        frame = self._worlds[seed].render((i % self.frames_per_town) * self.frame_step)
        boxes = torch.tensor([[b.track_id, b.cls, b.x, b.y, b.w, b.h] for b in frame.boxes],
                             dtype=torch.int64).reshape(-1, 6)
        return {
            "image": torch.from_numpy(frame.rgb).permute(2, 0, 1).float().div_(255.0),
            "depth": torch.from_numpy(frame.depth)[None],
            "labels": torch.from_numpy(frame.labels).long(),
            "boxes": boxes,
        }


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Batch items: stacks image, depth and labels; boxes stay a list (counts differ)."""
    batch: dict[str, torch.Tensor | list[torch.Tensor]] = {
        key: torch.stack([item[key] for item in items]) for key in ("image", "depth", "labels")
    }
    batch["boxes"] = [item["boxes"] for item in items]
    return batch
