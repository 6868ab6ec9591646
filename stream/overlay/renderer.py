"""``OverlayRenderer``: a run's outputs composed over its frames in one of the layouts, with legend
and scale bar."""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stream.glyphs import render_legend_rows, render_scale_bar

from .autorange import AutoDepthRange
from .boxes import BOX_COLOUR, LOST_COLOUR, check_boxes, digit_atlas, draw_boxes, draw_scores
from .depth import check_depth_range, depth_fraction, depth_lut, depth_rgba
from .labels import CAMVID_CLASSES, check_palette, label_rgba, named_palette
from .mixing import ONE, check_images, mix

LAYOUTS = ("overlay", "side-by-side", "grid")
LEGENDS = ("present", "all", "off")
OUTPUT_KEYS = frozenset({"labels", "depth", "boxes", "scores", "lost", "restored", "probs"})
PRESENT_FRACTION = 0.001
"""A class enters the ``present`` legend when it covers at least this fraction of the frame."""


@dataclass
class _Patch:
    """An uploaded RGBA patch: colour 3 x h x w uint8 and weight 1 x h x w int16 (0..128)."""

    colour: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def upload(cls, rgb: np.ndarray, alpha: np.ndarray, max_h: int, max_w: int, device: torch.device) -> _Patch:
        rgb, alpha = rgb[:max_h, :max_w], alpha[:max_h, :max_w]
        weight = (torch.from_numpy(alpha.astype(np.int16)) * ONE + 127) // 255
        colour = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
        return cls(colour.to(device), weight.unsqueeze(0).to(device))

    def composite(self, panel: torch.Tensor, top: int, left: int) -> None:
        """Blend the patch in place onto every frame of ``panel`` at (top, left)."""
        h, w = self.colour.shape[1:]
        region = panel[:, :, top : top + h, left : left + w]
        region.copy_(mix(region, self.colour.expand_as(region), self.weight))


@dataclass
class _Legend:
    """Legend entries (one per listed class, as C x 3 x h x w colours and C x 1 x h x w weights)
    and the (top, left) of each slot that fits the panel; slot k shows the k-th listed class."""

    colour: torch.Tensor
    weight: torch.Tensor
    slots: list[tuple[int, int]]

    def composite(self, panel: torch.Tensor, order: torch.Tensor, count: torch.Tensor) -> None:
        """Blend, in place on every frame, entries ``order[n, k]`` (indices into the listed classes)
        into slots ``k < count[n]``; the rest of the slots are left alone."""
        h, w = self.colour.shape[2:]
        for k, (top, left) in enumerate(self.slots[: order.shape[1]]):
            index = order[:, k]
            shown = (k < count).to(torch.int16).view(-1, 1, 1, 1)
            region = panel[:, :, top : top + h, left : left + w]
            region.copy_(mix(region, self.colour[index], self.weight[index] * shown))


@dataclass
class _Decorations:
    """Everything text-bearing for one panel size, rasterised once and kept on the device."""

    legend: _Legend | None
    scale_bar: _Patch
    bar_top: int
    digits: torch.Tensor
    margin: int
    thickness: int


class OverlayRenderer:
    """Compose model outputs onto frames on the device, in one of three layouts.

    ``overlay``: one panel: labels blended on the input if present, else the depth map blended,
    else the restored image, else the input; boxes on top.
    ``side-by-side``: input | result (as in overlay); when ``expect`` names both labels and
    depth: input | labels blended | depth colour map.
    ``grid``: 2 x 2 of input, labels blended, depth colour map, restored (or input) with boxes;
    each panel is downscaled by 2 so the output keeps the input size (odd sizes lose a row or
    column), or kept at full size with ``full_panels`` (output twice as wide and tall). A panel
    whose output is absent shows the input dimmed.
    Boxes carry their score as a small ``d.dd`` tag when ``scores`` are given.

    ``palette``: 'contrast', 'camvid' (see ``named_palette``) or a C x 3 uint8 tensor; ``alpha``
    the opacity of labels and blended depth; ``draw_classes`` the class ids to colour (others
    keep the input's pixels); ``legend``: 'present' lists the drawn classes covering at least
    ``PRESENT_FRACTION`` of each frame, 'all' every drawn class, 'off' none; ``depth_range``
    (near, far) in metres or 'auto' (see ``AutoDepthRange``); ``depth_cmap`` one of
    ``DEPTH_CMAPS``; ``line_width`` the box outline in pixels (default: grows with the frame);
    ``size`` (width, height) resizes the composed frame (antialiased bilinear, on the device).
    """

    def __init__(
        self,
        layout: str = "overlay",
        classes: Sequence[str] | None = None,
        palette: str | torch.Tensor = "contrast",
        alpha: float = 0.5,
        depth_range: tuple[float, float] | str = (1.0, 80.0),
        legend: str = "present",
        device: torch.device | str = "cpu",
        depth_log: bool = True,
        expect: Collection[str] = ("labels",),
        draw_classes: Collection[int] | None = None,
        depth_cmap: str = "turbo",
        line_width: int | None = None,
        size: tuple[int, int] | None = None,
        full_panels: bool = False,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if legend not in LEGENDS:
            raise ValueError(f"unknown legend choice {legend!r}; choose one of {', '.join(LEGENDS)}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"opacity must be within [0, 1], got {alpha}")
        if line_width is not None and line_width < 1:
            raise ValueError(f"line width must be at least 1 pixel, got {line_width}")
        if size is not None and min(size) < 1:
            raise ValueError(f"output size must be positive, got {size[0]}x{size[1]}")
        unknown = set(expect) - OUTPUT_KEYS
        if unknown:
            raise ValueError(f"unknown output names in expect: {', '.join(sorted(unknown))}")
        self.auto_range = AutoDepthRange() if depth_range == "auto" else None
        if self.auto_range is None:
            near, far = (float(v) for v in depth_range)
            check_depth_range(near, far, depth_log)
            self.depth_range = (near, far)
        else:
            self.depth_range = (1.0, 80.0)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.classes = list(CAMVID_CLASSES if classes is None else classes)
        if isinstance(palette, str):
            palette = named_palette(palette, self.classes)
        check_palette(palette)
        if len(palette) != len(self.classes):
            raise ValueError(f"palette has {len(palette)} colours for {len(self.classes)} classes")
        self.palette = palette.to(self.device)
        drawn = range(len(self.classes)) if draw_classes is None else sorted(set(draw_classes))
        if not drawn or not all(0 <= i < len(self.classes) for i in drawn):
            raise ValueError(f"class ids to draw must lie in 0..{len(self.classes) - 1}, got {list(drawn)}")
        self.drawn = torch.tensor(list(drawn), dtype=torch.long, device=self.device)
        self.class_weights = torch.zeros(len(self.classes), dtype=torch.int16, device=self.device)
        self.class_weights[self.drawn] = round(alpha * ONE)
        self.layout = layout
        self.alpha = alpha
        self.depth_log = depth_log
        self.legend = legend
        self.line_width = line_width
        self.size = size
        self.full_panels = full_panels
        self.three_panels = {"labels", "depth"} <= set(expect)
        self.lut = depth_lut(self.device, depth_cmap)
        self.box_colour = torch.tensor(BOX_COLOUR, dtype=torch.uint8, device=self.device)
        self.lost_colour = torch.tensor(LOST_COLOUR, dtype=torch.uint8, device=self.device)
        self._decorations: dict[tuple, _Decorations] = {}

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the rendered frames for inputs of ``height`` x ``width``."""
        if self.size is not None:
            return self.size[1], self.size[0]
        return self._layout_size(height, width)

    def _layout_size(self, height: int, width: int) -> tuple[int, int]:
        if self.layout == "overlay":
            return height, width
        if self.layout == "side-by-side":
            return height, width * (3 if self.three_panels else 2)
        if self.full_panels:
            return 2 * height, 2 * width
        if height < 2 or width < 2:
            raise ValueError(f"the grid layout needs frames of at least 2 x 2 pixels, got {height} x {width}")
        return 2 * (height // 2), 2 * (width // 2)

    def __call__(self, images: torch.Tensor, outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Render N x 3 x H x W uint8 frames with their outputs to N x H' x W' x 3 uint8 (contiguous)."""
        count, height, width = check_images(images, "images")
        if images.device != self.device:
            raise ValueError(f"images are on {images.device} but the renderer was built for {self.device}")
        outputs = self._checked(outputs, count, height, width)
        images = images.contiguous()
        out_h, out_w = self._layout_size(height, width)
        if self.auto_range is not None and "depth" in outputs:
            self.depth_range = self.auto_range.update(outputs["depth"]) or self.depth_range
        if self.layout == "grid" and not self.full_panels:
            images, outputs = _halve(images, outputs)
        panel_h, panel_w = images.shape[2:]
        decorations = self._decorations_for(panel_h, panel_w)
        panels = self._panels(images, outputs, decorations)
        result = torch.empty((count, out_h, out_w, 3), dtype=torch.uint8, device=self.device)
        canvas = result.permute(0, 3, 1, 2)
        columns = 2 if self.layout == "grid" else len(panels)
        for i, panel in enumerate(panels):
            top, left = (i // columns) * panel_h, (i % columns) * panel_w
            canvas[:, :, top : top + panel_h, left : left + panel_w] = panel
        if self.size is not None and self.size != (out_w, out_h):
            return _resized(canvas, self.size)
        return result

    def _checked(self, outputs: Mapping[str, torch.Tensor], count: int, height: int, width: int) -> dict:
        unknown = set(outputs) - OUTPUT_KEYS
        if unknown:
            raise ValueError(f"unknown output names: {', '.join(sorted(unknown))}; expected some of {', '.join(sorted(OUTPUT_KEYS))}")
        for name, tensor in outputs.items():
            if not isinstance(tensor, torch.Tensor) or tensor.device != self.device:
                raise ValueError(f"output {name!r} must be a tensor on {self.device}")
        shapes = {"labels": (count, height, width), "depth": (count, height, width), "restored": (count, 3, height, width)}
        for name, shape in shapes.items():
            if name in outputs and tuple(outputs[name].shape) != shape:
                raise ValueError(f"output {name!r} must have shape {shape}, got {tuple(outputs[name].shape)}")
        if "restored" in outputs and outputs["restored"].dtype != torch.uint8:
            raise ValueError(f"output 'restored' must be uint8, got {outputs['restored'].dtype}")
        if ("scores" in outputs or "lost" in outputs) and "boxes" not in outputs:
            raise ValueError("outputs give 'scores' or 'lost' without 'boxes'")
        if "boxes" in outputs:
            check_boxes(outputs["boxes"], count)
        checked = dict(outputs)
        if "restored" in checked:
            checked["restored"] = checked["restored"].contiguous()
        return checked

    def _decorations_for(self, height: int, width: int) -> _Decorations:
        key = (height, width, self.depth_range)
        if key not in self._decorations:
            if len(self._decorations) >= 16:  # an auto depth range moved on: drop the old bars
                self._decorations.clear()
            self._decorations[key] = self._rasterise(height, width)
        return self._decorations[key]

    def _rasterise(self, height: int, width: int) -> _Decorations:
        margin = max(2, height // 60)
        inner_h, inner_w = max(1, height - 2 * margin), max(1, width - 2 * margin)
        legend = self._legend_entries(height, width, margin) if self.legend != "off" else None
        bar_rgb, bar_alpha = render_scale_bar(*self._bar_contents(max(2, round(height * 0.6))), height)
        scale_bar = _Patch.upload(bar_rgb, bar_alpha, inner_h, inner_w, self.device)
        bar_top = (height - scale_bar.colour.shape[1]) // 2
        return _Decorations(
            legend=legend,
            scale_bar=scale_bar,
            bar_top=bar_top,
            digits=digit_atlas(height, self.device),
            margin=margin,
            thickness=self.line_width or max(2, round(height / 270)),
        )

    def _legend_entries(self, height: int, width: int, margin: int) -> _Legend | None:
        """Entries for the drawn classes and the slots that fit, flowing into columns that stay
        within 90% of the panel height; None when not even one entry fits."""
        names = [self.classes[i] for i in self.drawn.tolist()]
        rgb, alpha = render_legend_rows(names, self.palette[self.drawn].cpu().numpy(), height)
        entry_h, entry_w = rgb.shape[1:3]
        per_column = max(1, int(height * 0.9) // entry_h)
        slots = [(margin + (k % per_column) * entry_h, margin + (k // per_column) * entry_w) for k in range(len(names))]
        slots = [(top, left) for top, left in slots if top + entry_h <= height and left + entry_w <= width]
        if not slots:
            return None
        weight = (torch.from_numpy(alpha.astype(np.int16)) * ONE + 127) // 255
        colour = torch.from_numpy(rgb).permute(0, 3, 1, 2).contiguous()
        return _Legend(colour.to(self.device), weight.unsqueeze(1).to(self.device), slots)

    def _legend_order(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame, the listed classes (indices into ``drawn``) in slot order and how many."""
        count = labels.shape[0]
        listed = len(self.drawn)
        if self.legend == "all":
            order = torch.arange(listed, device=self.device).expand(count, listed)
            return order, torch.full((count,), listed, device=self.device)
        classes = len(self.classes)
        labels = labels[:, ::2, ::2]  # every fourth pixel is enough to find classes over PRESENT_FRACTION
        ids = labels.reshape(count, -1).long().clamp(-1, classes) + 1
        ids = ids + torch.arange(count, device=self.device)[:, None] * (classes + 2)
        pixels = torch.bincount(ids.reshape(-1), minlength=count * (classes + 2)).view(count, classes + 2)
        present = pixels[:, 1 : classes + 1][:, self.drawn] >= max(1.0, PRESENT_FRACTION * labels[0].numel())
        order = torch.sort((~present).to(torch.uint8), dim=1, stable=True).indices
        return order, present.sum(dim=1)

    def _bar_contents(self, bar_h: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Bar colours (far at the top, near at the bottom) and (row, label) ticks in metres."""
        near, far = self.depth_range
        rows = (torch.linspace(0, 255, bar_h)).round().long()
        colours = self.lut.cpu()[rows].numpy()
        values = [far, near] + [
            m * 10.0**k
            for k in range(math.floor(math.log10(near)) - 1, math.ceil(math.log10(far)) + 1)
            for m in (1, 2, 5)
            if near < m * 10.0**k < far
        ]
        fractions = depth_fraction(torch.tensor(values, dtype=torch.float64), near, far, self.depth_log)
        ticks = [(round((1.0 - f) * (bar_h - 1)), f"{v:.3g} m") for v, f in zip(values, fractions.tolist())]
        return colours, ticks

    def _labels_panel(self, image: torch.Tensor, labels: torch.Tensor, deco: _Decorations) -> torch.Tensor:
        rgba = label_rgba(labels, self.palette, self.class_weights, torch.int16)
        panel = mix(image, rgba[:, :3], rgba[:, 3:])
        if deco.legend is not None:
            deco.legend.composite(panel, *self._legend_order(labels))
        return panel

    def _depth_panel(self, image: torch.Tensor, depth: torch.Tensor, blended: bool, deco: _Decorations) -> torch.Tensor:
        near, far = self.depth_range
        if blended:
            rgba = depth_rgba(depth, near, far, self.depth_log, self.lut, round(self.alpha * ONE), torch.int16)
            panel = mix(image, rgba[:, :3], rgba[:, 3:])
        else:
            panel = depth_rgba(depth, near, far, self.depth_log, self.lut, 0, torch.uint8)[:, :3]
        left = panel.shape[3] - deco.margin - deco.scale_bar.colour.shape[2]
        deco.scale_bar.composite(panel, deco.bar_top, max(0, left))
        return panel

    def _with_boxes(self, panel: torch.Tensor, outputs: dict, deco: _Decorations) -> torch.Tensor:
        if "boxes" not in outputs:
            return panel
        boxes, lost = outputs["boxes"], outputs.get("lost")
        panel = draw_boxes(panel, boxes, self.box_colour, deco.thickness, lost, self.lost_colour)
        if "scores" in outputs:
            colours = self.box_colour.expand(len(boxes), 3)
            if lost is not None:
                colours = torch.where(lost[:, None], self.lost_colour, colours)
            panel = draw_scores(panel, boxes, outputs["scores"], deco.digits, colours)
        return panel

    def _single_result(self, image: torch.Tensor, outputs: dict, deco: _Decorations) -> torch.Tensor:
        if "labels" in outputs:
            return self._labels_panel(image, outputs["labels"], deco)
        if "depth" in outputs:
            return self._depth_panel(image, outputs["depth"], True, deco)
        if "restored" in outputs:
            return outputs["restored"]
        return image

    def _panels(self, image: torch.Tensor, outputs: dict, deco: _Decorations) -> list[torch.Tensor]:
        if self.layout == "overlay":
            return [self._with_boxes(self._single_result(image, outputs, deco), outputs, deco)]
        if self.layout == "side-by-side" and not self.three_panels:
            return [image, self._with_boxes(self._single_result(image, outputs, deco), outputs, deco)]
        labels = self._labels_panel(image, outputs["labels"], deco) if "labels" in outputs else _dimmed(image)
        depth = self._depth_panel(image, outputs["depth"], False, deco) if "depth" in outputs else _dimmed(image)
        if self.layout == "side-by-side":
            return [image, self._with_boxes(labels, outputs, deco), self._with_boxes(depth, outputs, deco)]
        last = outputs.get("restored", image)
        return [image, labels, depth, self._with_boxes(last, outputs, deco)]


def _dimmed(image: torch.Tensor) -> torch.Tensor:
    """The input at 40% brightness: the stand-in for a panel whose output is absent."""
    return mix(image, torch.zeros_like(image), ONE * 3 // 5)


def _resized(canvas: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N x 3 x H x W uint8 frames resized to (width, height), returned N x H' x W' x 3 contiguous."""
    scaled = F.interpolate(canvas.float(), size=(size[1], size[0]), mode="bilinear", align_corners=False,
                           antialias=True)
    return scaled.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _halve(images: torch.Tensor, outputs: dict) -> tuple[torch.Tensor, dict]:
    """Downscale frames (2 x 2 area average) and outputs (nearest for labels/depth) by two."""
    height, width = images.shape[2] // 2, images.shape[3] // 2

    def shrink(pixels: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(pixels[:, :, : 2 * height, : 2 * width].float(), 2)
        return mean.round().to(torch.uint8)

    halved = dict(outputs)
    for name in ("labels", "depth"):
        if name in outputs:
            halved[name] = outputs[name][:, : 2 * height : 2, : 2 * width : 2]
    if "restored" in outputs:
        halved["restored"] = shrink(outputs["restored"])
    if "boxes" in outputs:
        halved["boxes"] = outputs["boxes"] * 0.5
    return shrink(images), halved
