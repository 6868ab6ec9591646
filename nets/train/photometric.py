"""Strong photometric augmentation of real training frames (hue, saturation, brightness,
contrast, gamma, greyscale, blur, noise, JPEG), so that colour alone never decides a class:
a sky is sky whether it is grey, blue, hazy white or orange."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Photometric", "photometric"]


@dataclass(frozen=True)
class Photometric:
    """Ranges of each change; every change is applied with its own probability ``p``."""

    hue: float = 25.0            # degrees, either way
    saturation: tuple[float, float] = (0.3, 1.7)
    brightness: tuple[float, float] = (0.55, 1.45)
    contrast: tuple[float, float] = (0.55, 1.45)
    gamma: tuple[float, float] = (0.6, 1.6)
    grey: float = 0.1            # probability of a greyscale frame
    blur: float = 1.6            # largest Gaussian sigma, pixels
    noise: float = 10.0          # largest noise sigma, 0..255 units
    jpeg: tuple[int, int] = (15, 90)
    p: float = 0.5


def _shift_hue(image: np.ndarray, degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + round(degrees / 2)) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def photometric(image: np.ndarray, settings: Photometric, rng: np.random.Generator) -> np.ndarray:
    """One randomly changed copy of an H x W x 3 uint8 RGB frame (geometry untouched)."""
    out = image
    if rng.random() < settings.p:
        out = _shift_hue(out, float(rng.uniform(-settings.hue, settings.hue)))
    work = out.astype(np.float32)
    if rng.random() < settings.p:
        grey = work.mean(axis=2, keepdims=True)
        work = grey + (work - grey) * float(rng.uniform(*settings.saturation))
    if rng.random() < settings.grey:
        work = np.repeat(work.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < settings.p:
        work = work * float(rng.uniform(*settings.brightness))
    if rng.random() < settings.p:
        mean = float(work.mean())
        work = (work - mean) * float(rng.uniform(*settings.contrast)) + mean
    if rng.random() < settings.p:
        work = 255.0 * (np.clip(work, 0, 255) / 255.0) ** float(rng.uniform(*settings.gamma))
    if rng.random() < settings.p * 0.5:
        work = cv2.GaussianBlur(work, (0, 0), float(rng.uniform(0.3, settings.blur)))
    if rng.random() < settings.p * 0.5:
        work = work + rng.normal(0.0, float(rng.uniform(1.0, settings.noise)), work.shape).astype(np.float32)
    out = np.clip(work, 0, 255).astype(np.uint8)
    if rng.random() < settings.p * 0.5:
        quality = int(rng.integers(settings.jpeg[0], settings.jpeg[1] + 1))
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(out)
