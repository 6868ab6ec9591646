"""Image degradations for restoration training and evaluation, by the protocols in
docs/references.md: 8-bit colour AWGN, antialiased bicubic downscaling, OpenCV JPEG."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nets.errors import NetsError

__all__ = ["add_noise", "downscale_bicubic", "upscale_bicubic", "jpeg_roundtrip", "crop_to_multiple"]


def _check_rgb(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise NetsError(f"expected an H x W x 3 uint8 image, got {image.dtype} of shape {image.shape}")


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of std ``sigma`` (0-255 scale) on every RGB value, clipped and rounded to 8 bits."""
    _check_rgb(image)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _resize_bicubic(image: np.ndarray, size: tuple[int, int], antialias: bool) -> np.ndarray:
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.interpolate(tensor, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    return out[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edges so height and width are multiples of ``scale``."""
    height, width = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    if height == 0 or width == 0:
        raise NetsError(f"image of shape {image.shape} is smaller than the scale {scale}")
    return image[:height, :width]


def downscale_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscaling by an integer factor (the MATLAB/Pillow protocol, not
    OpenCV's INTER_CUBIC); the image must already be a multiple of ``scale``."""
    _check_rgb(image)
    if image.shape[0] % scale or image.shape[1] % scale:
        raise NetsError(f"image of shape {image.shape} is not a multiple of the scale {scale}; crop it first")
    return _resize_bicubic(image, (image.shape[0] // scale, image.shape[1] // scale), antialias=True)


def upscale_bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    """Plain bicubic upscaling by an integer factor (the classical SR baseline), rounded to 8 bits."""
    _check_rgb(image)
    return _resize_bicubic(image, (image.shape[0] * scale, image.shape[1] * scale), antialias=False)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` with OpenCV (libjpeg) and decode again."""
    _check_rgb(image)
    if not 1 <= quality <= 100:
        raise NetsError(f"JPEG quality must be in 1..100, got {quality}")
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise NetsError("OpenCV failed to encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
