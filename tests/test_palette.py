"""The default palette tells every pair of CamVid classes apart once blended over typical scenes.

Measure: CIE76 colour difference (Euclidean distance in CIELAB, D65) between the renderer's own
output pixels. Backgrounds: grey road, blue sky, green foliage and dark shadow. A difference of
about 2.3 is just noticeable side by side; colours that must be told apart at a glance on a
moving picture, as separate patches, need far more: 25 here, about ten times the just-noticeable
step and the distance between, e.g., a saturated red and an orange. Visibility (each class blended
against the background it lies on) must reach 15.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from stream.overlay import OverlayRenderer
from stream.overlay.labels import CAMVID_CLASSES

BACKGROUNDS = {"road": (120, 120, 120), "sky": (140, 180, 230), "foliage": (60, 100, 40), "shadow": (35, 35, 40)}
PAIR_THRESHOLD = 25.0
VISIBLE_THRESHOLD = 15.0


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (... x 3) to CIELAB (D65)."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def blended_classes(palette: str, background) -> np.ndarray:
    """Each class drawn by the renderer at its default opacity over ``background``: C x 3."""
    count = len(CAMVID_CLASSES)
    images = torch.tensor(background, dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 4, count).contiguous()
    labels = torch.arange(count, dtype=torch.uint8).view(1, 1, count).expand(1, 4, count).contiguous()
    out = OverlayRenderer(palette=palette, legend="off")(images, {"labels": labels})
    return out[0, 0].numpy()


def worst_distances(palette: str) -> tuple[float, float]:
    """(smallest difference between two classes, smallest between a class and its background)."""
    pair, visible = np.inf, np.inf
    for background in BACKGROUNDS.values():
        lab = to_lab(blended_classes(palette, background))
        for i, j in itertools.combinations(range(len(lab)), 2):
            pair = min(pair, float(np.linalg.norm(lab[i] - lab[j])))
        visible = min(visible, float(np.linalg.norm(lab - to_lab(np.array(background)), axis=1).min()))
    return pair, visible


def test_default_contrast_palette_separates_every_pair_over_every_background():
    pair, visible = worst_distances("contrast")
    assert pair >= PAIR_THRESHOLD and visible >= VISIBLE_THRESHOLD, (pair, visible)


def test_measure_catches_the_camvid_palette():
    """CamVid's colours (Car and Road both purple, Sky grey) fail the same measure."""
    pair, visible = worst_distances("camvid")
    assert pair < PAIR_THRESHOLD and visible < VISIBLE_THRESHOLD, (pair, visible)


@pytest.mark.parametrize("name", list(BACKGROUNDS))
def test_car_and_road_are_far_apart_in_the_default_palette(name):
    lab = to_lab(blended_classes("contrast", BACKGROUNDS[name]))
    car, road = CAMVID_CLASSES.index("Car"), CAMVID_CLASSES.index("Road")
    assert np.linalg.norm(lab[car] - lab[road]) > 2 * PAIR_THRESHOLD
