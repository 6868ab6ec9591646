"""Torch Dataset over rendered frames of several seeded towns (depth, segmentation, boxes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .frames import SyntheticFrames


class DrivingWorldDataset(Dataset):
    """Item ``i`` is frame ``(i % frames_per_town) * frame_step`` of town ``seeds[i // frames_per_town]``
    (see ``SyntheticFrames``, which also caches rendered frames in ``cache_dir`` when given and
    draws each town's look from its seed when ``randomise`` is set).

    Items are dicts: image float32 3xHxW in 0..1, depth float32 1xHxW (metres along the optical
    axis), labels int64 HxW (CamVid ids) and boxes int64 Kx6 (track_id, cls, x, y, w, h)."""

    def __init__(self, seeds: Sequence[int], frames_per_town: int, width: int = 480, height: int = 360,
                 frame_step: int = 1, cache_dir: str | Path | None = None, randomise: bool = False) -> None:
        self.frames = SyntheticFrames(seeds, frames_per_town, (width, height), frame_step, cache_dir, randomise)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        frame = self.frames.frame(i % len(self))
        return {
            "image": torch.from_numpy(frame["rgb"]).permute(2, 0, 1).float().div_(255.0),
            "depth": torch.from_numpy(frame["depth"])[None],
            "labels": torch.from_numpy(frame["labels"]).long(),
            "boxes": torch.from_numpy(frame["boxes"]),
        }


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Batch items: stacks image, depth and labels; boxes stay a list (counts differ)."""
    batch: dict[str, torch.Tensor | list[torch.Tensor]] = {
        key: torch.stack([item[key] for item in items]) for key in ("image", "depth", "labels")
    }
    batch["boxes"] = [item["boxes"] for item in items]
    return batch
