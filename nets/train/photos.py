"""Images that ship inside the scikit-image wheel: the colour photographs, held-out natural images
for the restoration metrics (never for training, model selection or choices of training data),
and the sharp grey photographs and textures, a validation set for choices that aim at sharp
images (such as the super-resolution patches' ``source_scale``)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from nets.errors import NetsError

__all__ = ["PHOTOS", "SHARP_GREY", "bundled_photos", "sharp_grey_images"]

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg")
SHARP_GREY = ("brick.png", "camera.png", "coins.png", "grass.png", "gravel.png", "moon.png", "page.png", "text.png")


def _data_folder() -> Path:
    """scikit-image's ``data`` folder, found without importing the package (which is slow)."""
    spec = find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise NetsError("scikit-image, which ships the held-out photographs, is not installed: "
                        "pip install scikit-image (or pip install -e '.[train]')")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_rgb(folder: Path, name: str) -> np.ndarray:
    """One of the package's images as RGB uint8 H x W x 3 (grey ones repeated over 3 channels)."""
    image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
    if image is None:
        raise NetsError(f"cannot read {folder / name}; reinstall scikit-image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def bundled_photos() -> list[tuple[str, np.ndarray]]:
    """(file name, RGB uint8 H x W x 3) for the real colour photographs of scikit-image's data
    folder (300x451 to 500x741): the astronaut, the cat (chelsea), the coffee cup, the motorcycle
    stereo pair and the rocket launch (stored as a JPEG). Left out: the grey images,
    textures and synthetic or RGBA graphics, the microscopy (ihc) and fundus (retina) images,
    and hubble_deep_field (a telescope mosaic, mostly black sky)."""
    folder = _data_folder()
    return [(name, _read_rgb(folder, name)) for name in PHOTOS]


def sharp_grey_images() -> list[tuple[str, np.ndarray]]:
    """(file name, RGB uint8 H x W x 3 with equal channels) for scikit-image's grey photographs
    and textures (the cameraman, coins, moon, a page of text, text on a sign, brick, grass and
    gravel; 303x384 to 512x512)."""
    folder = _data_folder()
    return [(name, _read_rgb(folder, name)) for name in SHARP_GREY]
