"""Image degradations for restoration training and evaluation, by the protocols in
docs/references.md: 8-bit colour AWGN, antialiased bicubic downscaling, OpenCV JPEG, and blur
by Gaussian or linear motion kernels."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from nets.errors import NetsError

__all__ = ["add_noise", "downscale_bicubic", "upscale_bicubic", "jpeg_roundtrip", "crop_to_multiple", "blur",
           "gaussian_kernel", "motion_kernel", "random_blur_kernel"]


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


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with an odd-sized 2-D ``kernel`` (OpenCV filter2D on the flipped
    kernel, reflected borders), rounded and clipped to 8 bits."""
    _check_rgb(image)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise NetsError(f"a blur kernel must be 2-D with odd sides, got shape {kernel.shape}")
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    out = cv2.filter2D(image.astype(np.float32), -1, flipped, borderType=cv2.BORDER_REFLECT)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Isotropic Gaussian of std ``sigma`` pixels, 2*ceil(3 sigma)+1 wide, summing to 1."""
    if not sigma > 0:
        raise NetsError(f"Gaussian blur sigma must be positive, got {sigma}")
    line = cv2.getGaussianKernel(2 * int(np.ceil(3 * sigma)) + 1, sigma, cv2.CV_64F)
    kernel = line @ line.T
    return kernel / kernel.sum()


def motion_kernel(length: float, angle_degrees: float, supersample: int = 8) -> np.ndarray:
    """Linear motion blur: a ``length`` x 1 pixel bar through the kernel's centre, turned
    ``angle_degrees`` anticlockwise from the x axis (0 = horizontal, 90 = vertical), each pixel
    weighted by the share of its ``supersample``^2 sub-pixel points inside the bar (antialiased,
    exactly centred), summing to 1."""
    if not length >= 1:
        raise NetsError(f"motion blur length must be at least 1 pixel, got {length}")
    angle = np.deg2rad(angle_degrees)
    cos, sin = abs(np.cos(angle)), abs(np.sin(angle))
    radius = int(np.ceil(length / 2 * max(cos, sin) + 0.5 * min(cos, sin) - 0.5))  # pixels the bar reaches
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    points = (np.arange(-radius, radius + 1)[:, None] + offsets).ravel()
    x, y = points[None, :], -points[:, None]  # image rows grow downwards
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= 0.5)
    size = 2 * radius + 1
    kernel = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def random_blur_kernel(rng: np.random.Generator) -> np.ndarray:
    """Half the time a Gaussian of sigma uniform in 0.5-3 px, otherwise motion blur of length
    uniform in 3-15 px at a uniform angle (0-180 degrees covers every line)."""
    if rng.random() < 0.5:
        return gaussian_kernel(float(rng.uniform(0.5, 3.0)))
    return motion_kernel(float(rng.uniform(3.0, 15.0)), float(rng.uniform(0.0, 180.0)))
