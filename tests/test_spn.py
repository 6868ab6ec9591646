"""Spatial propagation network: exact recurrence, stability bound, and refinement of a noisy mask."""

import pytest
import torch
import torch.nn.functional as F

from nets.spn import DIRECTIONS, SpatialPropagation, edge_gates, normalise_gates, propagate, propagate_four_ways

PREVIOUS_LINE = {
    "left_to_right": lambda i, j: [(i - 1, j - 1), (i, j - 1), (i + 1, j - 1)],
    "right_to_left": lambda i, j: [(i - 1, j + 1), (i, j + 1), (i + 1, j + 1)],
    "top_to_bottom": lambda i, j: [(i - 1, j - 1), (i - 1, j), (i - 1, j + 1)],
    "bottom_to_top": lambda i, j: [(i + 1, j - 1), (i + 1, j), (i + 1, j + 1)],
}


def naive_propagate(x: torch.Tensor, gates: torch.Tensor, direction: str) -> torch.Tensor:
    """Pixel-by-pixel reference: out-of-image neighbours contribute no gate."""
    if gates.dim() == 4:
        gates = gates.unsqueeze(2).expand(-1, -1, x.shape[1], -1, -1)
    b_size, c_size, height, width = x.shape
    rows = range(height - 1, -1, -1) if direction == "bottom_to_top" else range(height)
    cols = range(width - 1, -1, -1) if direction == "right_to_left" else range(width)
    horizontal = direction in ("left_to_right", "right_to_left")
    order = [(i, j) for j in cols for i in rows] if horizontal else [(i, j) for i in rows for j in cols]
    h = torch.zeros_like(x)
    for b in range(b_size):
        for c in range(c_size):
            for i, j in order:
                acc, used = 0.0, 0.0
                for k, (ni, nj) in enumerate(PREVIOUS_LINE[direction](i, j)):
                    if 0 <= ni < height and 0 <= nj < width:
                        gk = float(gates[b, k, c, i, j])
                        acc += gk * float(h[b, c, ni, nj])
                        used += gk
                h[b, c, i, j] = (1 - used) * float(x[b, c, i, j]) + acc
    return h


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("per_channel", [False, True])
def test_propagate_matches_naive_loop(direction: str, per_channel: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    shape = (1, 3, 2, 6, 7) if per_channel else (1, 3, 6, 7)
    gates = normalise_gates(torch.randn(shape, dtype=torch.float64))
    torch.testing.assert_close(propagate(x, gates, direction), naive_propagate(x, gates, direction))


def test_four_way_merge_is_the_maximum_of_directions() -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, 5, 9)
    gates = normalise_gates(torch.randn(2 * 4, 3, 5, 9)).view(2, 4, 3, 5, 9)
    each = torch.stack([propagate(x, gates[:, k], d) for k, d in enumerate(DIRECTIONS)])
    torch.testing.assert_close(propagate_four_ways(x, gates), each.amax(dim=0))


def test_normalised_gates_satisfy_the_stability_bound() -> None:
    torch.manual_seed(2)
    raw = torch.randn(4, 3, 8, 8) * 3
    gates = normalise_gates(raw)
    assert (gates.abs().sum(dim=1) <= 1 + 1e-6).all()
    small = raw.abs().sum(dim=1, keepdim=True) < 1
    torch.testing.assert_close(gates[small.expand_as(raw)], raw[small.expand_as(raw)])


def test_normalised_gates_keep_a_long_propagation_bounded() -> None:
    torch.manual_seed(3)
    x = torch.rand(1, 1, 3, 400)
    raw = torch.randn(1, 3, 3, 400) * 10
    assert not (propagate(x, raw, "left_to_right").abs() < 1e6).all()
    assert propagate(x, normalise_gates(raw), "left_to_right").abs().max() < 10
    convex = propagate(x, normalise_gates(raw.abs()), "left_to_right")
    assert x.min() - 1e-6 <= convex.min() and convex.max() <= x.max() + 1e-6


def test_bad_direction_and_gate_shape_are_rejected() -> None:
    x = torch.rand(1, 2, 4, 4)
    with pytest.raises(ValueError, match="direction"):
        propagate(x, torch.zeros(1, 3, 4, 4), "diagonal")
    with pytest.raises(ValueError, match="gates"):
        propagate(x, torch.zeros(1, 3, 4, 5), "left_to_right")


def disc_scene(size: int, centre: tuple[float, float], radius: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Image of a red disc on blue, the true mask, and a blurred, noisy two-class probability map."""
    gen = torch.Generator().manual_seed(seed)
    axis = torch.arange(size, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    mask = ((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2 <= radius**2).float()[None, None]
    fg, bg = torch.tensor([0.85, 0.2, 0.15]), torch.tensor([0.15, 0.3, 0.8])
    image = mask * fg[:, None, None] + (1 - mask) * bg[:, None, None]
    image = image + 0.03 * torch.randn(1, 3, size, size, generator=gen)
    blurred = F.avg_pool2d(mask, 5, stride=1, padding=2, count_include_pad=False)
    p_fg = (blurred + 0.35 * torch.randn(1, 1, size, size, generator=gen)).clamp(0.01, 0.99)
    return image, mask, torch.cat([1 - p_fg, p_fg], dim=1)


def iou(probs: torch.Tensor, mask: torch.Tensor) -> float:
    pred = probs.argmax(dim=1, keepdim=True) == 1
    truth = mask.bool()
    return float((pred & truth).sum() / (pred | truth).sum())


def test_edge_gates_refinement_raises_iou_of_a_noisy_disc() -> None:
    image, mask, coarse = disc_scene(40, (19.0, 21.0), 11.0, seed=4)
    refined = propagate_four_ways(coarse, edge_gates(image, sigma=0.1, reach=0.95))
    assert iou(refined, mask) > iou(coarse, mask) + 0.2


def test_guidance_cnn_fitted_in_a_few_steps_raises_iou_on_a_new_scene() -> None:
    torch.manual_seed(5)
    spn = SpatialPropagation(guidance_channels=3, map_channels=2, width=8)
    image, mask, coarse = disc_scene(24, (11.0, 12.0), 7.0, seed=6)
    target = mask[:, 0].long()
    optimiser = torch.optim.Adam(spn.parameters(), lr=0.02)
    for _ in range(20):
        optimiser.zero_grad()
        loss = F.nll_loss(spn(coarse, image).clamp(min=1e-6).log(), target)
        loss.backward()
        optimiser.step()
    test_image, test_mask, test_coarse = disc_scene(27, (14.0, 12.0), 8.0, seed=7)
    with torch.no_grad():
        refined = spn(test_coarse, test_image)
    assert iou(refined, test_mask) > iou(test_coarse, test_mask) + 0.1


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_module_keeps_odd_sizes_and_returns_probabilities(scale: float) -> None:
    torch.manual_seed(8)
    spn = SpatialPropagation(map_channels=3, width=4, scale=scale)
    probs = torch.softmax(torch.randn(2, 3, 13, 9), dim=1)
    out = spn(probs, torch.rand(2, 3, 13, 9))
    assert out.shape == probs.shape
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2, 13, 9))
    assert (out >= 0).all()


def test_module_refines_a_single_channel_depth_map() -> None:
    torch.manual_seed(9)
    depth = torch.rand(1, 1, 11, 15) * 10
    out = SpatialPropagation(map_channels=1, width=4)(depth, torch.rand(1, 3, 11, 15))
    assert out.shape == depth.shape and torch.isfinite(out).all()


def test_module_rejects_mismatched_inputs() -> None:
    spn = SpatialPropagation(map_channels=2, width=4)
    with pytest.raises(ValueError, match="2 x H x W"):
        spn(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        spn(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 9))
