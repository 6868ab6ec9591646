"""Dense CRF and continuous-CRF depth refinement on synthetic images with known edges."""

import math

import pytest
import torch
import torch.nn.functional as F

from nets.crf import dense_crf, refine_depth_ccrf

COLOURS = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.7, 0.3], [0.2, 0.2, 0.9]])


def three_regions(height: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy RGB image of three flat regions (left band, right band, a disc) and its labels."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    labels = (xs >= width * 0.45).long()
    labels[(ys - height * 0.5) ** 2 + (xs - width * 0.25) ** 2 <= (min(height, width) * 0.22) ** 2] = 2
    image = COLOURS[labels].permute(2, 0, 1)[None] + 0.04 * torch.randn(1, 3, height, width, generator=gen)
    return image.clamp(0, 1), labels[None]


def near_edges(labels: torch.Tensor, band: int) -> torch.Tensor:
    """Pixels within `band` pixels of a label change."""
    as_float = labels[:, None].float()
    size = 2 * band + 1
    spread = F.max_pool2d(as_float, size, 1, band) + F.max_pool2d(-as_float, size, 1, band)
    return spread[:, 0] != 0


def coarse_probabilities(labels: torch.Tensor, classes: int, seed: int) -> torch.Tensor:
    """Blurred one-hot labels with noise: a low-resolution, uncertain segmentation."""
    gen = torch.Generator().manual_seed(seed)
    one_hot = F.one_hot(labels, classes).permute(0, 3, 1, 2).float()
    blurred = F.avg_pool2d(one_hot, 7, 1, 3, count_include_pad=False)
    noisy = (blurred + 0.3 * torch.rand(blurred.shape, generator=gen)).clamp(min=1e-3)
    return noisy / noisy.sum(dim=1, keepdim=True)


def edge_error(probs: torch.Tensor, labels: torch.Tensor) -> float:
    band = near_edges(labels, 3)
    return float((probs.argmax(dim=1) != labels)[band].float().mean())


def naive_mean_field_step(probs: torch.Tensor, image: torch.Tensor, **p: float) -> torch.Tensor:
    """One mean-field update written pixel by pixel from the CRF definition."""
    _, c, h, w = probs.shape
    pix = [(i, j) for i in range(h) for j in range(w)]
    rgb = image[0].permute(1, 2, 0) * 255
    out = torch.empty_like(probs)
    for i, j in pix:
        app, smooth = [], []
        for k, l in pix:
            if (k, l) == (i, j):
                continue
            d2 = (i - k) ** 2 + (j - l) ** 2
            colour_d2 = float(((rgb[i, j] - rgb[k, l]) ** 2).sum())
            app.append(math.exp(-d2 / (2 * p["xy"] ** 2) - colour_d2 / (2 * p["rgb"] ** 2)))
            smooth.append(math.exp(-d2 / (2 * p["sxy"] ** 2)))
        others = torch.stack([probs[0, :, k, l] for k, l in pix if (k, l) != (i, j)])
        app_t, smooth_t = torch.tensor(app, dtype=probs.dtype), torch.tensor(smooth, dtype=probs.dtype)
        message = p["aw"] * (app_t / (1 + app_t.sum())) @ others + p["sw"] * (smooth_t / (1 + smooth_t.sum())) @ others
        out[0, :, i, j] = torch.softmax(probs[0, :, i, j].log() + message, dim=0)
    return out


def test_exact_dense_crf_matches_the_pixelwise_definition() -> None:
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(1, 3, 4, 5, dtype=torch.float64), dim=1)
    image = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    params = {"aw": 4.0, "xy": 2.0, "rgb": 40.0, "sw": 2.0, "sxy": 1.5}
    got = dense_crf(
        probs, image, iterations=1, appearance_weight=params["aw"], appearance_xy=params["xy"],
        appearance_rgb=params["rgb"], smoothness_weight=params["sw"], smoothness_xy=params["sxy"],
    )
    torch.testing.assert_close(got, naive_mean_field_step(probs, image, **params))


def test_exact_dense_crf_reduces_error_near_edges() -> None:
    image, labels = three_regions(36, 44, seed=1)
    coarse = coarse_probabilities(labels, 3, seed=2)
    refined = dense_crf(coarse, image, iterations=5)
    assert edge_error(refined, labels) < 0.5 * edge_error(coarse, labels)
    torch.testing.assert_close(refined.sum(dim=1), torch.ones(1, 36, 44))


def test_approximate_dense_crf_reduces_error_near_edges() -> None:
    image, labels = three_regions(72, 96, seed=3)
    coarse = coarse_probabilities(labels, 3, seed=4)
    refined = dense_crf(coarse, image, iterations=5, exact_max_pixels=4096)
    assert edge_error(refined, labels) < 0.5 * edge_error(coarse, labels)


def test_approximate_dense_crf_agrees_with_exact_on_a_small_image() -> None:
    image, labels = three_regions(30, 40, seed=5)
    coarse = coarse_probabilities(labels, 3, seed=6)
    exact = dense_crf(coarse, image)
    approx = dense_crf(coarse, image, exact_max_pixels=0)
    assert float((exact.argmax(dim=1) == approx.argmax(dim=1)).float().mean()) > 0.98
    assert float((exact - approx).abs().mean()) < 0.02


def test_dense_crf_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ"):
        dense_crf(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="negative"):
        dense_crf(torch.rand(1, 2, 8, 8) - 1, torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="iterations"):
        dense_crf(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 8), iterations=-1)


def dense_ccrf_solution(depth, image, confidence, lam, sigma, connectivity) -> torch.Tensor:
    """Direct solve of (C + lam L) y = C z with L assembled edge by edge."""
    _, _, h, w = depth.shape
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    matrix = torch.diag(confidence.flatten()).clone()
    for i in range(h):
        for j in range(w):
            for dy, dx in steps:
                k, l = i + dy, j + dx
                if 0 <= k < h and 0 <= l < w:
                    weight = lam * torch.exp(-((image[0, :, i, j] - image[0, :, k, l]) ** 2).sum() / (2 * sigma**2))
                    p, q = i * w + j, k * w + l
                    matrix[p, p] += weight
                    matrix[q, q] += weight
                    matrix[p, q] -= weight
                    matrix[q, p] -= weight
    return torch.linalg.solve(matrix, (confidence * depth).flatten()).view(1, 1, h, w)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_conjugate_gradient_matches_a_direct_solve(connectivity: int) -> None:
    torch.manual_seed(7)
    depth = torch.rand(1, 1, 5, 6, dtype=torch.float64) * 10
    image = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    confidence = torch.rand(1, 1, 5, 6, dtype=torch.float64) + 0.1
    got = refine_depth_ccrf(
        depth, image, lam=3.0, sigma=0.3, iterations=500, tol=1e-12, confidence=confidence, connectivity=connectivity
    )
    want = dense_ccrf_solution(depth, image, confidence, 3.0, 0.3, connectivity)
    torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)


def test_ccrf_reduces_depth_error_near_edges() -> None:
    image, labels = three_regions(48, 64, seed=8)
    truth = torch.tensor([2.0, 6.0, 4.0])[labels][:, None]
    gen = torch.Generator().manual_seed(9)
    noisy = F.avg_pool2d(truth, 5, 1, 2, count_include_pad=False) + 0.4 * torch.randn(truth.shape, generator=gen)
    refined = refine_depth_ccrf(noisy, image, lam=20.0, sigma=0.1, iterations=200)
    band = near_edges(labels, 3)[:, None]

    def rmse(depth: torch.Tensor) -> float:
        return float((depth - truth)[band].pow(2).mean().sqrt())

    assert rmse(refined) < 0.6 * rmse(noisy)


def test_ccrf_is_batched_and_keeps_confident_pixels() -> None:
    torch.manual_seed(10)
    depth, image = torch.rand(2, 1, 9, 11), torch.rand(2, 3, 9, 11)
    together = refine_depth_ccrf(depth, image, iterations=300, tol=1e-7)
    apart = torch.cat(
        [refine_depth_ccrf(depth[k : k + 1], image[k : k + 1], iterations=300, tol=1e-7) for k in range(2)]
    )
    torch.testing.assert_close(together, apart, rtol=1e-4, atol=1e-4)
    confidence = torch.full_like(depth, 1e-3)
    confidence[..., 4, 5] = 1e4
    pinned = refine_depth_ccrf(depth, image, lam=5.0, confidence=confidence, iterations=300, tol=1e-8)
    torch.testing.assert_close(pinned[..., 4, 5], depth[..., 4, 5], rtol=1e-2, atol=1e-2)


def test_ccrf_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="B x 1 x H x W"):
        refine_depth_ccrf(torch.rand(1, 2, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="connectivity"):
        refine_depth_ccrf(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 4, 4), connectivity=6)
    with pytest.raises(ValueError, match="confidence"):
        refine_depth_ccrf(torch.rand(1, 1, 4, 4), torch.rand(1, 3, 4, 4), confidence=torch.zeros(1, 1, 4, 4))
