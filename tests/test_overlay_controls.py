"""What the user chooses about the overlay: opacity, classes, palette, legend, depth range and
colour map, box width, output size and full-size grid panels."""
from __future__ import annotations

import math

import pytest
import torch

from stream.overlay import OverlayRenderer
from stream.overlay.autorange import AutoDepthRange
from stream.overlay.depth import DEPTH_CMAPS, depth_lut
from stream.overlay.labels import CAMVID_CLASSES, class_ids, named_palette
from tests.test_end_to_end import assert_one_line_error, run_cli


def grey(n=1, h=48, w=64, value=100) -> torch.Tensor:
    return torch.full((n, 3, h, w), value, dtype=torch.uint8)


def colours_in(image: torch.Tensor) -> set[tuple[int, int, int]]:
    return {tuple(p) for p in image.reshape(-1, 3).tolist()}


@pytest.mark.parametrize("opacity", [0.0, 0.25, 1.0])
def test_opacity_sets_the_blend_weight(opacity):
    labels = torch.full((1, 8, 8), 3, dtype=torch.uint8)
    out = OverlayRenderer(alpha=opacity, legend="off")(grey(1, 8, 8), {"labels": labels})
    road = named_palette("contrast", CAMVID_CLASSES)[3].int()
    expected = (100 + ((road - 100) * round(opacity * 128) + 64).div(128, rounding_mode="floor")).to(torch.uint8)
    assert (out[0] == expected).all()


def test_only_the_chosen_classes_are_coloured_and_listed():
    labels = torch.zeros((1, 120, 160), dtype=torch.uint8)
    labels[:, :, 80:] = 8
    drawn = class_ids("road,Car", CAMVID_CLASSES)
    assert drawn == [3, 8]
    renderer = OverlayRenderer(draw_classes=drawn, legend="all")
    out = renderer(grey(1, 120, 160), {"labels": labels})[0]
    assert (out[100:, :80] == 100).all()  # Sky is not drawn: the input shows through
    assert not (out[100:, 80:] == 100).all()
    palette = named_palette("contrast", CAMVID_CLASSES)
    found = colours_in(out)
    assert tuple(palette[3].tolist()) in found and tuple(palette[8].tolist()) in found
    assert tuple(palette[0].tolist()) not in found


def test_class_selection_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown class 'lorry'"):
        class_ids("Car,lorry", CAMVID_CLASSES)
    with pytest.raises(ValueError, match="unknown class '11'"):
        class_ids([11], CAMVID_CLASSES)


def test_present_legend_lists_only_classes_in_each_frame():
    labels = torch.full((2, 120, 160), 255, dtype=torch.uint8)
    labels[0, 60:, :] = 3
    labels[0, 60:, 100:] = 8
    labels[1, 60:, :] = 5
    images = torch.zeros((2, 3, 120, 160), dtype=torch.uint8)
    out = OverlayRenderer(palette="camvid")(images, {"labels": labels})
    palette = [tuple(c) for c in named_palette("camvid", CAMVID_CLASSES).tolist()]
    first, second = colours_in(out[0, :60]), colours_in(out[1, :60])
    assert {palette[3], palette[8]} <= first and palette[5] not in first
    assert palette[5] in second and not {palette[3], palette[8]} & second
    listed_all = colours_in(OverlayRenderer(palette="camvid", legend="all")(images, {"labels": labels})[1])
    assert set(palette) <= listed_all


def test_legend_slots_are_filled_in_class_order_without_gaps():
    labels = torch.full((1, 120, 160), 9, dtype=torch.uint8)
    images = torch.zeros((1, 3, 120, 160), dtype=torch.uint8)
    only_nine = OverlayRenderer(palette="camvid")(images, {"labels": labels})[0]
    legend_all = OverlayRenderer(palette="camvid", legend="all")(images, {"labels": labels})[0]
    nine = torch.tensor(named_palette("camvid", CAMVID_CLASSES)[9].tolist())
    first_row = lambda img: int((img == nine).all(-1).any(-1).nonzero()[0])  # noqa: E731
    assert first_row(only_nine) < first_row(legend_all)  # moved up into the first slot


def test_auto_depth_range_ignores_outliers_and_holds_steady_under_jitter():
    gen = torch.Generator().manual_seed(0)
    auto = AutoDepthRange()
    ranges = []
    for _ in range(30):
        depth = torch.linspace(5.0, 50.0, 64 * 48).view(1, 48, 64) * (1 + 0.03 * torch.randn(1, generator=gen))
        depth[0, 0, :5] = 1e4  # a few wild pixels
        depth[0, 1, 0] = float("nan")
        ranges.append(auto.update(depth))
    near, far = ranges[-1]
    assert 4.0 < near < 7.0 and 40.0 < far < 55.0
    assert len(set(ranges[5:])) <= 2  # small jitter: the colours stay put


def test_auto_depth_range_follows_a_new_scene():
    auto = AutoDepthRange()
    for _ in range(5):
        auto.update(torch.linspace(2.0, 20.0, 1000).view(1, 20, 50))
    for _ in range(40):
        near, far = auto.update(torch.linspace(10.0, 100.0, 1000).view(1, 20, 50))
    assert near > 8.0 and far > 80.0


def test_renderer_with_auto_range_keeps_its_scale_bar_in_step():
    renderer = OverlayRenderer("side-by-side", depth_range="auto", expect=("labels", "depth"), legend="off")
    depth = torch.linspace(3.0, 30.0, 48 * 64).view(1, 48, 64)
    renderer(grey(), {"depth": depth})
    near, far = renderer.depth_range
    assert math.isclose(near, 3.5, rel_tol=0.2) and math.isclose(far, 30.0, rel_tol=0.1)


@pytest.mark.parametrize("name", DEPTH_CMAPS)
def test_depth_colour_maps_run_far_dark_or_cool_to_near_bright_or_warm(name):
    lut = depth_lut("cpu", name).int()
    assert lut.shape == (256, 3)
    if name == "turbo":
        assert lut[255, 0] > lut[255, 2] and lut[0, 2] > lut[0, 0]
    else:
        assert lut[255].sum() > lut[0].sum() + 300


def test_depth_cmap_changes_the_depth_panel():
    depth = torch.linspace(2.0, 60.0, 48 * 64).view(1, 48, 64)
    panels = {name: OverlayRenderer("side-by-side", expect=("labels", "depth"), depth_cmap=name)(grey(), {"depth": depth})
              for name in ("turbo", "gray")}
    gray = panels["gray"][0, :, 128:150]
    assert (gray[..., 0] == gray[..., 1]).all() and not torch.equal(panels["turbo"], panels["gray"])


def test_line_width_sets_the_box_outline():
    boxes = {"boxes": torch.tensor([[10.0, 10.0, 30.0, 20.0]])}
    for width in (1, 5):
        out = OverlayRenderer(line_width=width)(grey(), boxes)[0]
        column = (out[20, :, :] != 100).any(-1)
        assert int(column[10:25].sum()) == width


def test_size_resizes_the_composed_frame_and_grid_can_keep_full_panels():
    renderer = OverlayRenderer("side-by-side", size=(100, 30), legend="off")
    assert renderer.output_size(48, 64) == (30, 100)
    assert renderer(grey(), {"labels": torch.zeros((1, 48, 64), dtype=torch.uint8)}).shape == (1, 30, 100, 3)
    full = OverlayRenderer("grid", full_panels=True, legend="off")
    assert full.output_size(48, 64) == (96, 128)
    images = torch.randint(0, 256, (1, 3, 48, 64), dtype=torch.uint8)
    out = full(images, {})
    assert torch.equal(out[0, :48, :64], images[0].permute(1, 2, 0))


def test_cli_overlay_options_run_and_bad_ones_give_one_error_line(tmp_path):
    result = run_cli("run", "synth://pattern?frames=2&size=64x48", "--task", "seg+depth", "--out", str(tmp_path / "o"),
                     "--device", "cpu", "--threads", "1", "--opacity", "0.3", "--classes", "Road,Car",
                     "--palette", "camvid", "--legend", "all", "--depth-range", "auto", "--depth-cmap", "magma",
                     "--line-width", "3", "--layout", "side-by-side")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "o").glob("*.png"))) == 2
    bad = run_cli("run", "synth://pattern?frames=1&size=64x48", "--out", "null", "--classes", "lorry")
    assert_one_line_error(bad, "unknown class 'lorry'")
    bad = run_cli("run", "synth://pattern?frames=1&size=64x48", "--out", "null", "--depth-range", "9,2")
    assert_one_line_error(bad, "--depth-range '9,2'")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_controls_match_cpu():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 120, 160), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 11, (2, 120, 160), generator=gen).to(torch.uint8)
    labels[1, :, :] = 4
    depth = torch.rand(2, 120, 160, generator=gen) * 50 + 2
    outputs = {"labels": labels, "depth": depth}
    options = {"layout": "side-by-side", "expect": ("labels", "depth"), "draw_classes": [1, 4, 8],
               "depth_range": "auto", "depth_cmap": "magma", "size": (300, 80)}
    cpu = OverlayRenderer(**options)(images, outputs)
    gpu = OverlayRenderer(**options, device="cuda")(images.cuda(), {k: v.cuda() for k, v in outputs.items()})
    assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1
