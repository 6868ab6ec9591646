"""``OverlayRenderer``: a run's outputs composed over its frames in one of the layouts, with legend
and scale bar."""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stream.glyphs import render_legend, render_scale_bar

from .boxes import BOX_COLOUR, LOST_COLOUR, check_boxes, digit_atlas, draw_boxes, draw_scores
from .depth import check_depth_range, depth_fraction, depth_lut, depth_rgba
from .labels import CAMVID_CLASSES, camvid_palette, check_palette, distinct_palette, label_rgba
from .mixing import ONE, check_images, mix

LAYOUTS = ("overlay", "side-by-side", "grid")
OUTPUT_KEYS = frozenset({"labels", "depth", "boxes", "scores", "lost", "restored"})


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
class _Decorations:
    """Everything text-bearing for one panel size, rasterised once and kept on the device."""

    legend: _Patch | None
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
    column). A panel whose output is absent shows the input dimmed.
    Boxes carry their score as a small ``d.dd`` tag when ``scores`` are given.
    """

    def __init__(
        self,
        layout: str = "overlay",
        classes: Sequence[str] | None = None,
        palette: torch.Tensor | None = None,
        alpha: float = 0.5,
        depth_range: tuple[float, float] = (1.0, 80.0),
        legend: bool = True,
        device: torch.device | str = "cpu",
        depth_log: bool = True,
        expect: Collection[str] = ("labels",),
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        unknown = set(expect) - OUTPUT_KEYS
        if unknown:
            raise ValueError(f"unknown output names in expect: {', '.join(sorted(unknown))}")
        near, far = (float(v) for v in depth_range)
        check_depth_range(near, far, depth_log)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.classes = list(CAMVID_CLASSES if classes is None else classes)
        if palette is None:
            is_camvid = [c.lower() for c in self.classes] == [c.lower() for c in CAMVID_CLASSES]
            palette = camvid_palette() if is_camvid else distinct_palette(len(self.classes))
        check_palette(palette)
        if len(palette) != len(self.classes):
            raise ValueError(f"palette has {len(palette)} colours for {len(self.classes)} classes")
        self.palette = palette.to(self.device)
        self.layout = layout
        self.alpha = alpha
        self.depth_range = (near, far)
        self.depth_log = depth_log
        self.legend = legend
        self.three_panels = {"labels", "depth"} <= set(expect)
        self.lut = depth_lut(self.device)
        self.box_colour = torch.tensor(BOX_COLOUR, dtype=torch.uint8, device=self.device)
        self.lost_colour = torch.tensor(LOST_COLOUR, dtype=torch.uint8, device=self.device)
        self._decorations: dict[tuple[int, int], _Decorations] = {}

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the rendered frames for inputs of ``height`` x ``width``."""
        if self.layout == "overlay":
            return height, width
        if self.layout == "side-by-side":
            return height, width * (3 if self.three_panels else 2)
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
        out_h, out_w = self.output_size(height, width)
        if self.layout == "grid":
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
        key = (height, width)
        if key not in self._decorations:
            self._decorations[key] = self._rasterise(height, width)
        return self._decorations[key]

    def _rasterise(self, height: int, width: int) -> _Decorations:
        margin = max(2, height // 60)
        inner_h, inner_w = max(1, height - 2 * margin), max(1, width - 2 * margin)
        legend = None
        if self.legend:
            rgb, alpha = render_legend(self.classes, self.palette.cpu().numpy(), height)
            legend = _Patch.upload(rgb, alpha, inner_h, inner_w, self.device)
        bar_rgb, bar_alpha = render_scale_bar(*self._bar_contents(max(2, round(height * 0.6))), height)
        scale_bar = _Patch.upload(bar_rgb, bar_alpha, inner_h, inner_w, self.device)
        bar_top = (height - scale_bar.colour.shape[1]) // 2
        return _Decorations(
            legend=legend,
            scale_bar=scale_bar,
            bar_top=bar_top,
            digits=digit_atlas(height, self.device),
            margin=margin,
            thickness=max(2, round(height / 270)),
        )

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
        rgba = label_rgba(labels, self.palette, round(self.alpha * ONE), torch.int16)
        panel = mix(image, rgba[:, :3], rgba[:, 3:])
        if deco.legend is not None:
            deco.legend.composite(panel, deco.margin, deco.margin)
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
