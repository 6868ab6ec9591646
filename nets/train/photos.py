"""The colour photographs that ship inside the scikit-image wheel, used as held-out natural images
for the restoration metrics (never for training or model selection)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from nets.errors import NetsError

__all__ = ["PHOTOS", "bundled_photos"]

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg")


def _data_folder() -> Path:
    """scikit-image's ``data`` folder, found without importing the package (which is slow)."""
    spec = find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise NetsError("scikit-image, which ships the held-out photographs, is not installed: "
                        "pip install scikit-image (or pip install -e '.[train]')")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def bundled_photos() -> list[tuple[str, np.ndarray]]:
    """(file name, RGB uint8 H x W x 3) for the real colour photographs of scikit-image's data
    folder (300x451 to 500x741): the astronaut, the cat (chelsea), the coffee cup, the motorcycle
    stereo pair and the rocket launch (stored as a JPEG). Left out: the grey images,
    textures and synthetic or RGBA graphics, the microscopy (ihc) and fundus (retina) images,
    and hubble_deep_field (a telescope mosaic, mostly black sky)."""
    folder = _data_folder()
    photos = []
    for name in PHOTOS:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            raise NetsError(f"cannot read {folder / name}; reinstall scikit-image")
        photos.append((name, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
    return photos
