"""Random views of a rendered synthetic frame that move its horizon.

A crop of a pinhole image, resized back to the image's size, is what a camera with a longer
focal length and a shifted principal point would have seen from the same place: the depth
along the optical axis of every pixel it keeps is unchanged. Cropping at random therefore puts
the horizon of the synthetic towns anywhere in the frame, where the renderer's pitch range
alone keeps it in the upper middle (about 0.3-0.56 of the height), so that the model has to
find it in the scene."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["synthetic_view"]


def synthetic_view(image: np.ndarray, labels: np.ndarray, depth: np.ndarray, min_share: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A crop of ``share`` (uniform in ``min_share``..1) of each side of the frame at a uniform
    random place, resized back to the frame's size: RGB linearly, labels and metric depth by
    nearest pixel so that no label or depth is made up across an edge."""
    height, width = labels.shape
    share = float(rng.uniform(min_share, 1.0))
    crop_h, crop_w = max(1, round(height * share)), max(1, round(width * share))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    size = (width, height)
    return (cv2.resize(np.ascontiguousarray(image[window]), size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(np.ascontiguousarray(labels[window]), size, interpolation=cv2.INTER_NEAREST),
            cv2.resize(np.ascontiguousarray(depth[window]), size, interpolation=cv2.INTER_NEAREST))
