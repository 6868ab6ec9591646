"""Tests for device-side overlay rendering (CPU, tiny tensors)."""
from __future__ import annotations

import colorsys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stream.overlay import (
    CAMVID_CLASSES,
    OverlayRenderer,
    blend,
    camvid_palette,
    colorize_depth,
    colorize_labels,
    depth_lut,
    digit_atlas,
    distinct_palette,
    draw_boxes,
    draw_hud,
    draw_scores,
    label_mask,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPEC_CAMVID = {
    0: (128, 128, 128), 1: (128, 0, 0), 2: (192, 192, 128), 3: (128, 64, 128), 4: (60, 40, 222),
    5: (128, 128, 0), 6: (192, 128, 128), 7: (64, 64, 128), 8: (64, 0, 128), 9: (64, 64, 0),
    10: (0, 128, 192),
}


def frames(n: int = 1, h: int = 12, w: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen)


def all_outputs(n: int, h: int, w: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 12, (n, h, w), generator=gen)
    labels[:, 0, 0] = 255
    depth = torch.rand(n, h, w, generator=gen) * 100
    depth[:, 1, 1] = float("nan")
    boxes = torch.tensor([[4.0, 20.0, 30.0, 18.0], [-10.0, -5.0, 25.0, 30.0], [500.0, 0.0, 9.0, 9.0]])[:n]
    return {
        "labels": labels,
        "depth": depth,
        "boxes": boxes,
        "scores": torch.tensor([0.87, 0.5, 0.1])[:n],
        "lost": torch.tensor([False, True, False])[:n],
        "restored": torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=gen),
    }


def hue(rgb: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(rgb / 255.0))[0]


# Palettes and labels


def test_camvid_palette_colours_exact_for_every_id():
    labels = torch.arange(11).reshape(1, 1, 11)
    colours = colorize_labels(labels, camvid_palette())
    assert colours.shape == (1, 3, 1, 11) and colours.dtype == torch.uint8
    for class_id, rgb in SPEC_CAMVID.items():
        assert tuple(colours[0, :, 0, class_id].tolist()) == rgb, CAMVID_CLASSES[class_id]


def test_distinct_palette_for_nyud_40_classes():
    palette = distinct_palette(40)
    assert palette.shape == (40, 3) and palette.dtype == torch.uint8
    assert len({tuple(c) for c in palette.tolist()}) == 40
    assert torch.equal(palette, distinct_palette(40))
    differences = (palette[:, None].int() - palette[None].int()).abs().sum(-1)
    assert differences[~torch.eye(40, dtype=torch.bool)].min() >= 20


def test_void_ids_colour_black_and_are_masked_for_uint8_and_int64():
    for dtype in (torch.uint8, torch.int64):
        labels = torch.tensor([[[3, 255, 11]]], dtype=dtype)
        colours = colorize_labels(labels, camvid_palette())
        assert colours[0, :, 0, 1].tolist() == [0, 0, 0] and colours[0, :, 0, 2].tolist() == [0, 0, 0]
        assert label_mask(labels, 11).tolist() == [[[True, False, False]]]
    negative = colorize_labels(torch.tensor([[[-1]]]), camvid_palette())
    assert negative.flatten().tolist() == [0, 0, 0]


def test_blend_arithmetic_at_alpha_0_half_1():
    image = torch.full((1, 3, 2, 2), 100, dtype=torch.uint8)
    colour = torch.full((1, 3, 2, 2), 201, dtype=torch.uint8)
    assert torch.equal(blend(image, colour, 0.0), image)
    assert torch.equal(blend(image, colour, 1.0), colour)
    assert (blend(image, colour, 0.5) == 151).all()  # 150.5 rounds half up
    assert (blend(colour, image, 0.5) == 151).all()
    mask = torch.tensor([[[True, False], [False, True]]])
    masked = blend(image, colour, 1.0, mask)
    assert masked[0, 0].tolist() == [[201, 100], [100, 201]]


def test_blend_rejects_bad_alpha_and_shapes():
    image = torch.zeros((1, 3, 2, 2), dtype=torch.uint8)
    with pytest.raises(ValueError, match="alpha"):
        blend(image, image, 1.5)
    with pytest.raises(ValueError, match="colour"):
        blend(image, image[:, :, :1], 0.5)
    with pytest.raises(ValueError, match="uint8"):
        blend(image.float(), image, 0.5)


def test_ignore_ids_stay_untouched_in_rendered_overlay():
    images = frames(1, 8, 8)
    labels = torch.full((1, 8, 8), 3)
    labels[0, :4] = 255
    labels[0, 4:, :2] = 11
    out = OverlayRenderer("overlay", legend="off")(images, {"labels": labels})
    original = images.permute(0, 2, 3, 1)
    assert torch.equal(out[0, :4], original[0, :4])
    assert torch.equal(out[0, 4:, :2], original[0, 4:, :2])
    assert not torch.equal(out[0, 4:, 2:], original[0, 4:, 2:])


# Depth colour map


def test_depth_lut_hue_is_monotone_from_warm_to_cool():
    lut = depth_lut().numpy()
    hues = np.array([hue(c) for c in lut])
    assert hues[0] > 0.6 and hues[-1] < 0.05  # blue end and red end
    assert np.all(np.diff(hues) <= 0.004)  # monotone up to 8-bit rounding of the darkest ends
    assert np.all(np.diff(hues[::32]) < 0)


def test_colorize_depth_near_is_warm_far_is_cool_and_clipped():
    near, far = 2.0, 50.0
    values = torch.tensor([[[0.5, 1.0, 2.0, 4.0, 10.0, 25.0, 50.0, 80.0, 1e4]]])
    colours = colorize_depth(values, near, far).permute(0, 2, 3, 1)[0, 0].numpy()
    hues = [hue(c) for c in colours]
    assert all(a <= b for a, b in zip(hues, hues[1:]))
    assert hues[3] < hues[4] < hues[5]
    assert (colours[0] == colours[2]).all() and (colours[1] == colours[2]).all()
    assert (colours[6] == colours[7]).all() and (colours[6] == colours[8]).all()
    assert colours[2][0] > colours[2][2] and colours[6][2] > colours[6][0]


def test_colorize_depth_log_and_linear_differ_and_invalid_is_black():
    depth = torch.tensor([[[5.0, float("nan"), 0.0, -1.0, float("inf")]]])
    log = colorize_depth(depth, 1.0, 80.0, log=True)
    linear = colorize_depth(depth, 1.0, 80.0, log=False)
    assert not torch.equal(log[..., 0], linear[..., 0])
    assert (log[..., 1:] == 0).all()


def test_colorize_depth_rejects_bad_ranges():
    depth = torch.ones(1, 2, 2)
    with pytest.raises(ValueError, match="near < far"):
        colorize_depth(depth, 10.0, 1.0)
    with pytest.raises(ValueError, match="near > 0"):
        colorize_depth(depth, 0.0, 10.0, log=True)
    with pytest.raises(ValueError, match="float"):
        colorize_depth(torch.ones(1, 2, 2, dtype=torch.int64), 1.0, 10.0)


# Boxes


def test_box_outline_pixels_exact():
    image = torch.zeros((1, 3, 20, 30), dtype=torch.uint8)
    out = draw_boxes(image, torch.tensor([[5.0, 4.0, 10.0, 8.0]]), colours=(255, 0, 0), thickness=2)
    expected = np.zeros((20, 30), bool)
    expected[4:12, 5:15] = True
    expected[6:10, 7:13] = False
    drawn = out[0, 0].numpy() == 255
    assert (drawn == expected).all()
    assert (out[0, 1:] == 0).all()


def test_out_of_frame_and_non_finite_boxes_draw_nothing():
    image = frames(3, 20, 30)
    boxes = torch.tensor([[100.0, 100.0, 5.0, 5.0], [-50.0, 2.0, 20.0, 5.0], [float("nan"), 1.0, 5.0, 5.0]])
    assert torch.equal(draw_boxes(image, boxes), image)


def test_box_partly_outside_draws_visible_edges_only():
    image = torch.zeros((1, 3, 20, 30), dtype=torch.uint8)
    out = draw_boxes(image, torch.tensor([[-5.0, -5.0, 12.0, 40.0]]), colours=(0, 255, 0), thickness=1)
    drawn = out[0, 1].numpy() == 255
    assert drawn[:, 6].all() and drawn.sum() == 20  # only the right edge, column 6, is in frame


def test_lost_box_is_dashed_in_lost_colour():
    image = torch.zeros((2, 3, 40, 40), dtype=torch.uint8)
    boxes = torch.tensor([[5.0, 5.0, 30.0, 30.0]]).repeat(2, 1)
    out = draw_boxes(image, boxes, colours=(0, 255, 0), thickness=2, lost=torch.tensor([False, True]), lost_colour=(255, 0, 0))
    tracked = out[0].amax(0) > 0
    lost = out[1].amax(0) > 0
    assert (lost & ~tracked).sum() == 0 and 0 < lost.sum() < tracked.sum()
    assert (out[1, 1] == 0).all() and (out[0, 0] == 0).all()


def test_scores_tag_depends_on_score_and_skips_nan():
    image = torch.zeros((3, 3, 60, 80), dtype=torch.uint8)
    boxes = torch.tensor([[30.0, 30.0, 20.0, 20.0]]).repeat(3, 1)
    atlas = digit_atlas(240)
    out = draw_scores(image, boxes, torch.tensor([0.87, 0.12, float("nan")]), atlas, colours=(0, 255, 0))
    above = out[:, 1, :30, :]
    assert above[0].any() and above[1].any() and not torch.equal(above[0], above[1])
    assert not out[2].any()
    assert not out[:, :, 30:].any()


def test_draw_boxes_rejects_bad_boxes():
    with pytest.raises(ValueError, match="N x 4"):
        draw_boxes(frames(2), torch.zeros(3, 4))


# Renderer: layouts, legend, batching, memory formats


@pytest.mark.parametrize(
    ("layout", "expect", "size"),
    [
        ("overlay", ("labels",), (12, 16)),
        ("side-by-side", ("labels",), (12, 32)),
        ("side-by-side", ("labels", "depth"), (12, 48)),
        ("grid", (), (12, 16)),
    ],
)
def test_layouts_give_promised_size_and_dtype(layout, expect, size):
    renderer = OverlayRenderer(layout, expect=expect, legend="off")
    assert renderer.output_size(12, 16) == size
    out = renderer(frames(2), all_outputs(2, 12, 16))
    assert out.shape == (2, *size, 3) and out.dtype == torch.uint8 and out.is_contiguous()


def test_grid_odd_size_and_panel_contents():
    renderer = OverlayRenderer("grid", legend="off")
    assert renderer.output_size(13, 17) == (12, 16)
    images = torch.full((1, 3, 13, 17), 200, dtype=torch.uint8)
    out = renderer(images, {})
    assert out.shape == (1, 12, 16, 3) and (out[0, :6, :8] == 200).all()
    dimmed = out[0, :, :].int()
    assert ((dimmed[:6, 8:] - 80).abs() <= 2).all() and ((dimmed[6:, :8] - 80).abs() <= 2).all()
    assert (out[0, 6:, 8:] == 200).all()  # input with (no) boxes in the last panel


def test_overlay_priority_labels_then_depth_then_restored():
    images, outputs = frames(1, 12, 16), all_outputs(1, 12, 16)
    renderer = OverlayRenderer("overlay", legend="off")
    restored_only = renderer(images, {"restored": outputs["restored"]})
    assert torch.equal(restored_only, outputs["restored"].permute(0, 2, 3, 1))
    with_labels = renderer(images, {"labels": outputs["labels"], "depth": outputs["depth"]})
    assert torch.equal(with_labels, renderer(images, {"labels": outputs["labels"]}))


def test_legend_all_lists_every_class():
    images = torch.zeros((1, 3, 240, 320), dtype=torch.uint8)
    labels = torch.full((1, 240, 320), 255, dtype=torch.uint8)
    with_legend = OverlayRenderer("overlay", palette="camvid", legend="all")(images, {"labels": labels})[0]
    plain = OverlayRenderer("overlay", legend="off")(images, {"labels": labels})[0]
    assert (plain == 0).all() and not torch.equal(with_legend, plain)
    found = {tuple(p) for p in with_legend.reshape(-1, 3).tolist()}
    assert all(rgb in found for rgb in SPEC_CAMVID.values())


def test_legend_for_generated_palette_lists_all_40_classes():
    names = [f"class{i}" for i in range(40)]
    renderer = OverlayRenderer("overlay", classes=names, legend="all")
    out = renderer(torch.zeros((1, 3, 240, 320), dtype=torch.uint8), {"labels": torch.zeros(1, 240, 320, dtype=torch.long)})
    found = {tuple(p) for p in out[0].reshape(-1, 3).tolist()}
    assert all(tuple(c) in found for c in distinct_palette(40).tolist())


def test_depth_panel_carries_scale_bar_at_right_edge():
    images = torch.zeros((1, 3, 120, 160), dtype=torch.uint8)
    depth = torch.full((1, 120, 160), float("nan"))
    out = OverlayRenderer("side-by-side", expect=("labels", "depth"))(images, {"depth": depth})[0]
    depth_panel = out[:, 320:]
    assert not depth_panel[:, :80].any() and depth_panel[:, 120:].any()


@pytest.mark.parametrize("layout", ["overlay", "side-by-side", "grid"])
def test_batched_matches_per_frame(layout):
    images, outputs = frames(3, 24, 32), all_outputs(3, 24, 32)
    renderer = OverlayRenderer(layout, expect=("labels", "depth"))
    batched = renderer(images, outputs)
    for i in range(3):
        single = renderer(images[i : i + 1], {k: v[i : i + 1] for k, v in outputs.items()})
        assert torch.equal(batched[i : i + 1], single)


def test_channels_last_and_float_precision_give_equal_results():
    images, outputs = frames(2, 24, 32), all_outputs(2, 24, 32)
    renderer = OverlayRenderer("grid")
    reference = renderer(images, outputs)
    as_channels_last = {**outputs, "restored": outputs["restored"].contiguous(memory_format=torch.channels_last)}
    channels_last = renderer(images.contiguous(memory_format=torch.channels_last), as_channels_last)
    assert torch.equal(reference, channels_last)
    as_double = {**outputs, "depth": outputs["depth"].double()}
    assert torch.equal(reference, renderer(images, as_double))


def test_renderer_rejects_bad_input_with_clear_messages():
    renderer = OverlayRenderer("overlay")
    with pytest.raises(ValueError, match="unknown layout"):
        OverlayRenderer("mosaic")
    with pytest.raises(ValueError, match="unknown output names"):
        renderer(frames(), {"label": torch.zeros(1, 12, 16, dtype=torch.long)})
    with pytest.raises(ValueError, match="shape"):
        renderer(frames(), {"labels": torch.zeros(1, 6, 8, dtype=torch.long)})
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        renderer(torch.zeros((12, 16, 3), dtype=torch.uint8), {})
    with pytest.raises(ValueError, match="palette has 3 colours"):
        OverlayRenderer(classes=["a", "b"], palette=camvid_palette()[:3])


# HUD


@pytest.mark.parametrize(("h", "w"), [(360, 480), (1080, 1920)])
def test_hud_draws_a_dark_band_with_text_at_the_bottom(h, w):
    image = np.full((h, w, 3), 200, np.uint8)
    draw_hud(image, "fps 24.1 | latency 41 ms | frame 120/221")
    band = image[-max(12, h // 40) :]
    assert (band == 255).any() and (band < 100).any()
    assert (image[: h // 2] == 200).all()


def test_hud_rejects_bad_images():
    with pytest.raises(ValueError, match="uint8"):
        draw_hud(np.zeros((10, 10, 3), np.float32), "x")
    with pytest.raises(ValueError, match="one line"):
        draw_hud(np.zeros((10, 10, 3), np.uint8), "a\nb")


# Real data


@pytest.mark.shared
@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data (CamVid val frames), absent in a fresh clone")
def test_renders_real_camvid_frame_with_ground_truth(tmp_path):
    image = cv2.cvtColor(cv2.imread(str(DATA / "camvid/val/images/0016E5_07959.jpg")), cv2.COLOR_BGR2RGB)
    labels = cv2.imread(str(DATA / "camvid/val/labels/0016E5_07959.png"), cv2.IMREAD_UNCHANGED)
    images = torch.from_numpy(image).permute(2, 0, 1)[None]
    out = OverlayRenderer("side-by-side", palette="camvid")(images, {"labels": torch.from_numpy(labels)[None]})[0].numpy().copy()
    road = labels == 3
    road[:200] = False  # keep clear of the legend in the top-left corner
    expected = (image[road].astype(int) + np.array(SPEC_CAMVID[3]) + 1) // 2
    assert road.sum() > 1000 and (out[:, 480:][road] == expected).all()
    assert (out[:, :480] == image).all()
    draw_hud(out, "fps 24.1 | latency 41 ms | frame 1/1")
    path = tmp_path / "camvid_overlay.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path)).shape == (360, 960, 3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("layout", ["overlay", "side-by-side", "grid"])
def test_cuda_matches_cpu(layout):
    images, outputs = frames(3, 48, 64), all_outputs(3, 48, 64)
    on_cpu = OverlayRenderer(layout, expect=("labels", "depth"))(images, outputs)
    gpu = OverlayRenderer(layout, expect=("labels", "depth"), device="cuda")
    on_gpu = gpu(images.cuda(), {k: v.cuda() for k, v in outputs.items()}).cpu()
    differing = (on_gpu != on_cpu).any(dim=-1).float().mean().item()
    assert differing <= 0.002  # only depth pixels whose log lands on a colour-map step may differ
    without_depth = {k: v for k, v in outputs.items() if k != "depth"}
    exact = gpu(images.cuda(), {k: v.cuda() for k, v in without_depth.items()}).cpu()
    assert torch.equal(exact, OverlayRenderer(layout, expect=("labels", "depth"))(images, without_depth))
