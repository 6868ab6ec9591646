"""Refinement by conditional random fields: mean-field dense CRF over class probabilities
(Krähenbühl and Koltun, 2011) and continuous-CRF depth refinement (Liu, Shen, Lin, CVPR 2015)."""

import math

import torch
import torch.nn.functional as F

_EPS = 1e-8


def _check_map_and_image(name: str, maps: torch.Tensor, image: torch.Tensor) -> None:
    if maps.dim() != 4 or image.dim() != 4:
        raise ValueError(
            f"{name} expects B x C x H x W tensors, got map {tuple(maps.shape)} and image {tuple(image.shape)}"
        )
    if maps.shape[0] != image.shape[0] or maps.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"{name}: map {tuple(maps.shape)} and image {tuple(image.shape)} differ in batch or size")
    if not maps.is_floating_point() or not image.is_floating_point():
        raise ValueError(f"{name} expects floating-point map and image (image RGB in [0, 1])")


def _pixel_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=like.dtype, device=like.device),
        torch.arange(width, dtype=like.dtype, device=like.device),
        indexing="ij",
    )
    return torch.stack([ys, xs], dim=-1).reshape(-1, 2)


def _without_self(kernel: torch.Tensor) -> torch.Tensor:
    """Zero the diagonal: a pixel sends no message to itself."""
    return kernel * (1 - torch.eye(kernel.shape[-1], dtype=kernel.dtype, device=kernel.device))


def _normalised(kernel: torch.Tensor) -> torch.Tensor:
    """Divide each row by 1 + its sum: the pixel itself counts once in the total."""
    return kernel / (1 + kernel.sum(dim=-1, keepdim=True))


class _ExactKernels:
    """Fully connected appearance + smoothness kernels as dense B x N x N matrices (O(N^2))."""

    def __init__(
        self, image: torch.Tensor, app_w: float, app_xy: float, app_rgb: float, smooth_w: float, smooth_xy: float
    ):
        b, _, h, w = image.shape
        pos = _pixel_grid(h, w, image)
        pos_d2 = torch.cdist(pos, pos, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        colour = image.flatten(2).transpose(1, 2) * 255
        colour_d2 = torch.cdist(colour, colour, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        appearance = _without_self(torch.exp(-pos_d2 / (2 * app_xy**2) - colour_d2 / (2 * app_rgb**2)))
        smoothness = _without_self(torch.exp(-pos_d2 / (2 * smooth_xy**2))).expand(b, -1, -1)
        self.kernel = app_w * _normalised(appearance) + smooth_w * _normalised(smoothness)

    def message(self, q: torch.Tensor) -> torch.Tensor:
        b, c, h, w = q.shape
        return (q.reshape(b, c, h * w) @ self.kernel.transpose(1, 2)).view(b, c, h, w)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter (centre tap 1, unnormalised, truncated at 3 sigma, zero outside)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    taps = torch.exp(-taps.pow(2) / (2 * sigma**2))
    b, c, h, w = x.shape
    flat = x.reshape(b * c, 1, h, w)
    flat = F.conv2d(flat, taps.view(1, 1, 1, -1), padding=(0, radius))
    flat = F.conv2d(flat, taps.view(1, 1, -1, 1), padding=(radius, 0))
    return flat.view(b, c, h, w)


class _ApproximateKernels:
    """Local approximations of the two kernels for images too large for N x N matrices.

    Smoothness: separable Gaussian filter (exact up to 3-sigma truncation). Appearance: a
    multi-scale quadrature of the kernel sum. The neighbourhood out to about +-2 sigma_xy is cut
    into rings of 3 x 3 cells whose size triples from ring to ring (1, 3, 9, 27, ... pixels);
    each cell is represented by the one pixel at its centre, weighted by the cell's area. Near
    neighbours are thus exact and far ones sampled: 8 samples per ring, about 8 log3(4 sigma_xy)
    per pixel instead of N.
    """

    def __init__(
        self, image: torch.Tensor, app_w: float, app_xy: float, app_rgb: float, smooth_w: float, smooth_xy: float
    ):
        b, _, h, w = image.shape
        strides = [1]
        while (3 * strides[-1] - 1) / 2 < 2 * app_xy:
            strides.append(3 * strides[-1])
        self.pad = strides[-1]
        self.app_w, self.smooth_w, self.smooth_xy = app_w, smooth_w, smooth_xy
        self.offsets, areas = [], []
        for stride in strides:
            for ky in (-1, 0, 1):
                for kx in (-1, 0, 1):
                    if ky or kx:
                        self.offsets.append((ky * stride, kx * stride))
                        areas.append(stride * stride)
        colour = image * 255
        inside = torch.ones(b, 1, h, w, dtype=image.dtype, device=image.device)
        padded_colour, padded_inside = self._padded(colour), self._padded(inside)
        weights = []
        for (dy, dx), area in zip(self.offsets, areas):
            spatial = self._shifted(padded_inside, dy, dx) * (area * math.exp(-(dy * dy + dx * dx) / (2 * app_xy**2)))
            colour_d2 = (colour - self._shifted(padded_colour, dy, dx)).pow(2).sum(dim=1, keepdim=True)
            weights.append(spatial * torch.exp(-colour_d2 / (2 * app_rgb**2)))
        self.weights = torch.stack(weights)
        self.app_norm = 1 + self.weights.sum(dim=0)
        self.smooth_norm = _gaussian_blur(inside, smooth_xy)

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.pad,) * 4)

    def _shifted(self, padded: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        """x[p + (dy, dx)] for every pixel p of the image x that `padded` holds, zero outside it."""
        h, w = padded.shape[-2] - 2 * self.pad, padded.shape[-1] - 2 * self.pad
        return padded[..., self.pad + dy : self.pad + dy + h, self.pad + dx : self.pad + dx + w]

    def message(self, q: torch.Tensor) -> torch.Tensor:
        padded = self._padded(q)
        appearance = torch.zeros_like(q)
        for weight, (dy, dx) in zip(self.weights, self.offsets):
            appearance.addcmul_(weight, self._shifted(padded, dy, dx))
        smoothness = (_gaussian_blur(q, self.smooth_xy) - q) / self.smooth_norm
        return self.app_w * appearance / self.app_norm + self.smooth_w * smoothness


def dense_crf(
    probs: torch.Tensor,
    image: torch.Tensor,
    iterations: int = 5,
    appearance_weight: float = 5.0,
    appearance_xy: float = 40.0,
    appearance_rgb: float = 13.0,
    smoothness_weight: float = 3.0,
    smoothness_xy: float = 3.0,
    exact_max_pixels: int = 4096,
) -> torch.Tensor:
    """Mean-field inference of a fully connected CRF with Potts compatibility; returns B x C x H x W probs.

    probs: B x C x H x W class probabilities (unary = -log probs); image: B x 3 x H x W RGB in
    [0, 1] (colour sigma in 0-255 units, position sigmas in pixels). Kernels: appearance
    exp(-|p_i - p_j|^2 / 2 xy^2 - |I_i - I_j|^2 / 2 rgb^2) and smoothness exp(-|p_i - p_j|^2 / 2 xy^2),
    each summed over j != i and divided by 1 + its total weight at i, so the weights do not
    depend on image size and a pixel unlike all its neighbours gets little message (a departure
    from the unnormalised original). Images of at most `exact_max_pixels` pixels use the exact
    O(N^2) kernels; larger ones a multi-scale sampled approximation (see `_ApproximateKernels`).
    """
    _check_map_and_image("dense_crf", probs, image)
    if iterations < 0:
        raise ValueError(f"dense_crf needs iterations >= 0, got {iterations}")
    if min(appearance_xy, appearance_rgb, smoothness_xy) <= 0:
        raise ValueError("dense_crf kernel sigmas must be positive")
    if bool((probs < 0).any()):
        raise ValueError("dense_crf expects probabilities (non-negative), got negative values")
    params = (appearance_weight, appearance_xy, appearance_rgb, smoothness_weight, smoothness_xy)
    exact = probs.shape[-2] * probs.shape[-1] <= exact_max_pixels
    kernels = _ExactKernels(image, *params) if exact else _ApproximateKernels(image, *params)
    log_unary = probs.clamp(min=_EPS).log()
    q = torch.softmax(log_unary, dim=1)
    for _ in range(iterations):
        q = torch.softmax(log_unary + kernels.message(q), dim=1)
    return q


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x[p + (dy, dx)] for every pixel p (|dy|, |dx| <= 1), zero outside the image."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _grid_offsets(connectivity: int) -> list[tuple[int, int]]:
    """One offset per undirected neighbour pair on the 4- or 8-connected grid."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    return [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])


def grid_affinities(image: torch.Tensor, sigma: float, connectivity: int = 4) -> list[torch.Tensor]:
    """Edge weights w_pq = exp(-|I_p - I_q|^2 / (2 sigma^2)) per grid offset, as B x 1 x H x W maps
    indexed by p (q = p + offset); zero where q falls outside the image."""
    maps = []
    for dy, dx in _grid_offsets(connectivity):
        inside = _shift(torch.ones_like(image[:, :1]), dy, dx)
        diff2 = (image - _shift(image, dy, dx)).pow(2).sum(dim=1, keepdim=True)
        maps.append(inside * torch.exp(-diff2 / (2 * sigma**2)))
    return maps


def _laplacian(y: torch.Tensor, affinities: list[torch.Tensor], offsets: list[tuple[int, int]]) -> torch.Tensor:
    """Graph Laplacian L y = sum over edges of w_pq (y_p - y_q), applied without forming L."""
    out = torch.zeros_like(y)
    for weight, (dy, dx) in zip(affinities, offsets):
        flow = weight * (y - _shift(y, dy, dx))
        out = out + flow - _shift(flow, -dy, -dx)
    return out


def refine_depth_ccrf(
    depth: torch.Tensor,
    image: torch.Tensor,
    lam: float = 10.0,
    sigma: float = 0.1,
    iterations: int = 100,
    tol: float = 1e-4,
    confidence: torch.Tensor | None = None,
    connectivity: int = 4,
) -> torch.Tensor:
    """Continuous-CRF depth refinement: minimise sum_p c_p (y_p - z_p)^2 + lam * sum_{p~q} w_pq (y_p - y_q)^2.

    Solves (C + lam * L) y = C z by Jacobi-preconditioned conjugate gradient, matrix-free, batched,
    on whatever device the inputs live. depth: B x 1 x H x W; image: B x 3 x H x W in [0, 1];
    sigma in the image's units; confidence c (default 1): B x 1 x H x W, non-negative with some
    positive weight per image. Stops after `iterations` or when every image's residual is below
    tol times its right-hand side.
    """
    _check_map_and_image("refine_depth_ccrf", depth, image)
    if depth.shape[1] != 1:
        raise ValueError(f"refine_depth_ccrf expects B x 1 x H x W depth, got shape {tuple(depth.shape)}")
    if lam < 0 or sigma <= 0 or iterations < 0 or tol < 0:
        raise ValueError(
            f"refine_depth_ccrf needs lam >= 0, sigma > 0, iterations >= 0, tol >= 0, "
            f"got lam={lam}, sigma={sigma}, iterations={iterations}, tol={tol}"
        )
    if confidence is None:
        confidence = torch.ones_like(depth)
    elif confidence.shape != depth.shape:
        raise ValueError(f"confidence must match depth {tuple(depth.shape)}, got {tuple(confidence.shape)}")
    elif bool((confidence < 0).any()) or bool((confidence.flatten(1).sum(dim=1) <= 0).any()):
        raise ValueError("confidence must be non-negative with some positive weight in every image")
    offsets = _grid_offsets(connectivity)
    affinities = [lam * a for a in grid_affinities(image, sigma, connectivity)]
    degree = sum(a + _shift(a, -dy, -dx) for a, (dy, dx) in zip(affinities, offsets))
    diagonal = (confidence + degree).clamp(min=torch.finfo(depth.dtype).tiny)

    def apply(y: torch.Tensor) -> torch.Tensor:
        return confidence * y + _laplacian(y, affinities, offsets)

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(1, 2, 3), keepdim=True)

    rhs = confidence * depth
    limit = tol * dot(rhs, rhs).sqrt()
    y = depth.clone()
    residual = rhs - apply(y)
    precond = residual / diagonal
    direction = precond
    rz = dot(residual, precond)
    for _ in range(iterations):
        if bool((dot(residual, residual).sqrt() <= limit).all()):
            break
        a_dir = apply(direction)
        curvature = dot(direction, a_dir)
        step = torch.where(curvature > 0, rz / curvature.clamp(min=torch.finfo(y.dtype).tiny), 0)
        y = y + step * direction
        residual = residual - step * a_dir
        precond = residual / diagonal
        rz_next = dot(residual, precond)
        beta = torch.where(rz > 0, rz_next / rz.clamp(min=torch.finfo(y.dtype).tiny), 0)
        direction = precond + beta * direction
        rz = rz_next
    return y
