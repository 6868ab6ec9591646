"""IDD-lite (real Indian road scenes with coarse group labels): reading, the split by whole
recording sequences, and the table that maps each group to the CamVid classes it covers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nets.errors import NetsError
from nets.train.data import CAMVID_CLASSES, read_labels, read_rgb

__all__ = ["IDD_GROUPS", "IDD_IGNORE", "GROUP_SKY", "group_members", "group_of_class", "default_idd_root",
           "idd_sequence", "IddLiteSplit"]

IDD_IGNORE = 255
IDD_GROUPS = ("drivable", "non-drivable", "living", "vehicles", "roadside objects", "far objects", "sky")
GROUP_SKY = IDD_GROUPS.index("sky")
# CamVid ids: 0 Sky 1 Building 2 Pole 3 Road 4 Pavement 5 Tree 6 SignSymbol 7 Fence 8 Car 9 Pedestrian 10 Bicyclist
_MEMBERS = ((3,), (4,), (9, 10), (8, 10), (2, 6, 7), (1, 5), (0,))


def group_members() -> Tensor:
    """An 11 x 7 0/1 matrix: entry (c, g) is 1 when CamVid class c belongs to IDD group g
    (Bicyclist is both a living thing and a vehicle)."""
    members = torch.zeros(CAMVID_CLASSES, len(IDD_GROUPS))
    for group, classes in enumerate(_MEMBERS):
        members[list(classes), group] = 1.0
    return members


def group_of_class() -> np.ndarray:
    """For scoring an 11-class prediction against group labels: the group each CamVid class
    counts as (Bicyclist counts as a vehicle, the larger share of IDD's riders' pixels)."""
    table = np.zeros(CAMVID_CLASSES, dtype=np.int64)
    for group, classes in enumerate(_MEMBERS):
        for cls in classes:
            table[cls] = group if cls != 10 else IDD_GROUPS.index("vehicles")
    return table


def default_idd_root(camvid_root: str | Path) -> Path:
    """IDD-lite beside CamVid: ``<shared>/data/idd-lite`` when CamVid is ``<shared>/data/camvid``."""
    return Path(camvid_root).parent / "idd-lite"


def idd_sequence(name: str) -> str:
    """The recording sequence of an IDD-lite frame name ``SEQ_ID``."""
    return name.split("_", 1)[0]


class IddLiteSplit:
    """IDD-lite ``train/`` frames in memory, split by whole sequences: ``part='val'`` keeps every
    ``val_every``-th sequence in sorted order, ``part='train'`` the others, so near-duplicate
    frames of one sequence never fall on both sides."""

    def __init__(self, root: str | Path, part: str, val_every: int = 5) -> None:
        if part not in ("train", "val"):
            raise NetsError(f"IDD-lite part must be 'train' or 'val', got {part!r}")
        folder = Path(root) / "train"
        images = sorted((folder / "images").glob("*.jpg"))
        if not images:
            raise NetsError(f"no IDD-lite images in {folder / 'images'}")
        sequences = sorted({idd_sequence(p.stem) for p in images})
        held_out = set(sequences[::val_every])
        keep = [p for p in images if (idd_sequence(p.stem) in held_out) == (part == "val")]
        self.names = [p.stem for p in keep]
        self.sequences = sorted({idd_sequence(n) for n in self.names})
        self.images = [read_rgb(p) for p in keep]
        self.labels = [read_labels(folder / "labels" / f"{p.stem}.png") for p in keep]
        for name, image, labels in zip(self.names, self.images, self.labels):
            if image.shape[:2] != labels.shape:
                raise NetsError(f"IDD-lite {name}: image {image.shape[:2]} and labels {labels.shape} differ in size")

    def __len__(self) -> int:
        return len(self.images)
