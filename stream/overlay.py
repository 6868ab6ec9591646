"""Device-side rendering: palettes, blending, depth colour maps, boxes, legend and layouts.

Every per-frame operation is a batched torch op on the frames' own device (CUDA or CPU); text
(legend names, scale-bar labels, score digits) is rasterised once per panel size on the host by
:mod:`stream.glyphs`, uploaded, and only composited per frame. Blending uses 7-bit fixed point
(weights 0..128 in int16), so results are exact and identical on every device.

Conventions: images are N x 3 x H x W uint8 RGB in any memory format; boxes are (x, y, w, h) in
pixels and cover columns x .. x+w-1 and rows y .. y+h-1 after rounding; depth is in metres and
the colour map runs from warm (red, near) to cool (blue, far); non-finite or non-positive depth
means "no measurement" and is drawn black (full map) or left untouched (blended).
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stream.glyphs import draw_hud, render_digits, render_legend, render_scale_bar

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_COLOURS",
    "LAYOUTS",
    "OverlayRenderer",
    "blend",
    "camvid_palette",
    "colorize_depth",
    "colorize_labels",
    "depth_lut",
    "depth_valid",
    "digit_atlas",
    "distinct_palette",
    "draw_boxes",
    "draw_hud",
    "draw_scores",
    "label_mask",
]

CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
CAMVID_COLOURS = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)
LAYOUTS = ("overlay", "side-by-side", "grid")
OUTPUT_KEYS = frozenset({"labels", "depth", "boxes", "scores", "lost", "restored"})
BOX_COLOUR = (64, 255, 64)
LOST_COLOUR = (255, 96, 64)
_ONE = 128
_SHIFT = 7


def camvid_palette(device: torch.device | str = "cpu") -> torch.Tensor:
    """The 11-class CamVid palette as an 11 x 3 uint8 tensor."""
    return torch.tensor(CAMVID_COLOURS, dtype=torch.uint8, device=device)


def distinct_palette(count: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` visually distinct colours (count x 3 uint8), deterministic for a given count.

    Hues step by the golden angle so neighbouring ids differ strongly; saturation and value
    cycle through three levels so large class counts stay distinguishable.
    """
    if count < 1:
        raise ValueError(f"a palette needs at least one class, got {count}")
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    colours = []
    for i in range(count):
        hue = (0.03 + i * golden) % 1.0
        saturation = (0.9, 0.65, 0.8)[i % 3]
        value = (0.95, 0.8, 0.6)[(i // 3) % 3]
        colours.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)])
    return torch.tensor(colours, dtype=torch.uint8, device=device)


def _check_images(images: torch.Tensor, name: str = "image") -> tuple[int, int, int]:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"{name} must be a uint8 tensor, got {getattr(images, 'dtype', type(images))}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be N x 3 x H x W, got shape {tuple(images.shape)}")
    return images.shape[0], images.shape[2], images.shape[3]


def _check_palette(palette: torch.Tensor) -> None:
    if palette.dtype != torch.uint8 or palette.dim() != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise ValueError(f"palette must be a C x 3 uint8 tensor, got {palette.dtype} {tuple(palette.shape)}")


def label_mask(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """True where a label is a real class id (0 <= id < num_classes); void/ignore ids are False."""
    return (labels >= 0) & (labels < num_classes)


def _lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Gather rows of a K x 4 RGBA table by an N x H x W index: returns planar N x 4 x H x W.

    One gather per channel keeps every plane contiguous, so the blends that follow vectorise.
    """
    flat = index.reshape(-1)
    planes = torch.empty((4, flat.numel()), dtype=table.dtype, device=table.device)
    for channel in range(4):
        torch.index_select(table[:, channel], 0, flat, out=planes[channel])
    return planes.reshape(4, *index.shape).permute(1, 0, 2, 3)


def _label_rgba(labels: torch.Tensor, palette: torch.Tensor, weight: int, dtype: torch.dtype) -> torch.Tensor:
    """N x 4 x H x W ``dtype``: palette colour and blend ``weight`` per class id; void ids get weight 0.

    Blending asks for int16 so the gathered planes need no further conversion."""
    _check_palette(palette)
    if labels.dim() != 3 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an N x H x W integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    if palette.device != labels.device:
        raise ValueError(f"labels are on {labels.device} but the palette is on {palette.device}")
    count = len(palette)
    rgba = torch.cat([palette, palette.new_full((count, 1), weight)], dim=1).to(dtype)
    void = rgba.new_zeros(1, 4)
    if labels.dtype == torch.uint8:
        table = torch.cat([rgba, void.expand(max(0, 256 - count), 4)])[:256]
        return _lookup(table, labels.int())
    table = torch.cat([void, rgba, void])
    return _lookup(table, (labels.clamp(-1, count) + 1).int())


def colorize_labels(labels: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Map N x H x W class ids to N x 3 x H x W uint8 colours; void ids (255, >= C, < 0) become black."""
    return _label_rgba(labels, palette, 0, torch.uint8)[:, :3]


def _mix(base: torch.Tensor, top: torch.Tensor, weight: torch.Tensor | int) -> torch.Tensor:
    """(base * (128 - w) + top * w) / 128 rounded half up, as base + ((top - base) * w + 64) >> 7
    in int16 (weights 0..128; the arithmetic shift floors negative values as required)."""
    if isinstance(weight, torch.Tensor):
        weight = weight.to(torch.int16)
    low = base.to(torch.int16)
    mixed = (top.to(torch.int16) - low).mul_(weight).add_(_ONE // 2).bitwise_right_shift_(_SHIFT)
    return mixed.add_(low).to(torch.uint8)


def _paint(image: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """``colour`` where the 0/1 uint8 ``mask`` is 1, else ``image``: (colour - image) * mask +
    image in wrapping uint8 arithmetic, which is exact and much faster than ``torch.where``."""
    return (colour - image).mul_(mask).add_(image)


def blend(
    image: torch.Tensor, colour: torch.Tensor, alpha: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``image * (1 - alpha) + colour * alpha`` (uint8, rounded half up); pixels where the
    N x H x W ``mask`` is False keep the image. Alpha is quantised to 1/128."""
    _check_images(image)
    if colour.dtype != torch.uint8 or colour.shape != image.shape:
        raise ValueError(
            f"colour must be uint8 with the image's shape {tuple(image.shape)}, got {colour.dtype} {tuple(colour.shape)}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    mixed = _mix(image, colour, round(alpha * _ONE))
    if mask is None:
        return mixed
    if mask.dtype != torch.bool or mask.shape != (image.shape[0], *image.shape[2:]):
        raise ValueError(f"mask must be a bool N x H x W tensor matching the image, got {mask.dtype} {tuple(mask.shape)}")
    return _paint(image, mask.unsqueeze(1).to(torch.uint8), mixed)


def depth_lut(device: torch.device | str = "cpu") -> torch.Tensor:
    """Turbo-like 256 x 3 uint8 colour map: index 0 dark blue (cool) .. 255 dark red (warm).

    Each channel is a Gaussian bump of equal width (blue, green, red centred at 0.18, 0.5,
    0.82), so the channel ratios, and hence the hue, change monotonically along the map; a
    shared brightness profile then darkens both ends and keeps the middle bright.
    """
    t = torch.linspace(0.0, 1.0, 256, dtype=torch.float64)
    centres = torch.tensor([0.82, 0.5, 0.18], dtype=torch.float64)
    bumps = torch.exp(-(((t[:, None] - centres) / 0.25) ** 2))
    floor = 0.25 + 0.25 * t
    brightness = floor + (1.0 - floor) * torch.sin(math.pi * t) ** 0.5
    rgb = bumps / bumps.amax(dim=1, keepdim=True) * brightness[:, None]
    return (rgb * 255).round().to(torch.uint8).to(device)


def _check_depth_range(near: float, far: float, log: bool) -> None:
    if not (math.isfinite(near) and math.isfinite(far) and far > near):
        raise ValueError(f"depth range must satisfy near < far (finite), got near={near}, far={far}")
    if log and near <= 0:
        raise ValueError(f"a logarithmic depth range needs near > 0, got near={near}")


def _depth_fraction(depth: torch.Tensor, near: float, far: float, log: bool) -> torch.Tensor:
    """Position of each depth in [0 (near), 1 (far)], clipped to the range."""
    d = depth.float().clamp(near, far)
    if log:
        return (torch.log(d) - math.log(near)) / (math.log(far) - math.log(near))
    return (d - near) / (far - near)


def depth_valid(depth: torch.Tensor) -> torch.Tensor:
    """True where depth is a measurement (finite and positive; NaN fails both tests)."""
    return (depth > 0) & (depth < math.inf)


def _depth_rgba(
    depth: torch.Tensor, near: float, far: float, log: bool, lut: torch.Tensor, weight: int, dtype: torch.dtype
) -> torch.Tensor:
    """N x 4 x H x W ``dtype``: colour-map entry and blend ``weight`` per pixel; invalid depth is
    black with weight 0."""
    _check_depth_range(near, far, log)
    if depth.dim() != 3 or not depth.dtype.is_floating_point:
        raise ValueError(f"depth must be an N x H x W float tensor, got {depth.dtype} {tuple(depth.shape)}")
    if lut.device != depth.device:
        raise ValueError(f"depth is on {depth.device} but the colour map is on {lut.device}")
    table = torch.cat([torch.cat([lut, lut.new_full((256, 1), weight)], dim=1), lut.new_zeros(1, 4)]).to(dtype)
    index = ((1.0 - _depth_fraction(depth, near, far, log)) * 255).round()
    index = torch.where(depth_valid(depth), index, 256.0).int()
    return _lookup(table, index)


def colorize_depth(
    depth: torch.Tensor, near: float, far: float, log: bool = True, lut: torch.Tensor | None = None
) -> torch.Tensor:
    """Map N x H x W depth in metres to N x 3 x H x W uint8: near (and closer) red, far (and
    beyond) blue, log-spaced by default; invalid depth is black."""
    table = depth_lut(depth.device) if lut is None else lut
    return _depth_rgba(depth, near, far, log, table, 0, torch.uint8)[:, :3]


def _box_edges(boxes: torch.Tensor, height: int, width: int, margin: int) -> tuple[torch.Tensor, ...]:
    """Inclusive integer edges (x0, y0, x1, y1), each of shape N, clamped just outside the frame
    so that edges off-screen stay off-screen; non-finite boxes become empty (x1 < x0)."""
    finite = torch.isfinite(boxes).all(dim=1)
    x, y, w, h = boxes.unbind(dim=1)
    corners = (x.round(), y.round(), (x + w).round() - 1, (y + h).round() - 1)
    blanks = (1.0, 1.0, 0.0, 0.0)
    limits = (width, height, width, height)
    return tuple(
        torch.where(finite, edge, blank).clamp(-margin - 1, limit + margin).long()
        for edge, blank, limit in zip(corners, blanks, limits)
    )


Colours = torch.Tensor | Sequence[int]


def _colour_rows(colours: Colours, count: int, device: torch.device) -> torch.Tensor:
    table = torch.as_tensor(colours, dtype=torch.uint8, device=device).reshape(-1, 3)
    if len(table) not in (1, count):
        raise ValueError(f"colours must be one RGB triple or one per frame ({count}), got {len(table)}")
    return table.expand(count, 3)


def _check_boxes(boxes: torch.Tensor, count: int) -> None:
    if not boxes.dtype.is_floating_point or boxes.shape != (count, 4):
        raise ValueError(f"boxes must be a float N x 4 (x, y, w, h) tensor with N={count}, got {boxes.dtype} {tuple(boxes.shape)}")


def draw_boxes(
    image: torch.Tensor,
    boxes: torch.Tensor,
    colours: Colours = BOX_COLOUR,
    thickness: int = 2,
    lost: torch.Tensor | None = None,
    lost_colour: Colours = LOST_COLOUR,
) -> torch.Tensor:
    """Draw one box outline per frame (drawn inside the box, ``thickness`` pixels wide).

    ``colours`` (and ``lost_colour``) are one RGB triple or an N x 3 uint8 tensor.
    Frames whose ``lost`` flag is set get a dashed outline in ``lost_colour``. Boxes partly
    outside the frame are clipped; boxes fully outside, empty or non-finite draw nothing.
    """
    count, height, width = _check_images(image)
    _check_boxes(boxes, count)
    if thickness < 1:
        raise ValueError(f"box thickness must be >= 1, got {thickness}")
    x0, y0, x1, y1 = (edge[:, None] for edge in _box_edges(boxes, height, width, thickness))
    ys = torch.arange(height, device=image.device, dtype=torch.int32)
    xs = torch.arange(width, device=image.device, dtype=torch.int32)
    outer = ((ys >= y0) & (ys <= y1)).to(torch.uint8)[:, :, None] * ((xs >= x0) & (xs <= x1))[:, None, :]
    rows_in = (ys >= y0 + thickness) & (ys <= y1 - thickness)
    inner = rows_in.to(torch.uint8)[:, :, None] * ((xs >= x0 + thickness) & (xs <= x1 - thickness))[:, None, :]
    ring = outer - inner  # 0/1: the inner rectangle lies within the outer one
    paint = _colour_rows(colours, count, image.device)
    if lost is not None:
        if lost.dtype != torch.bool or lost.shape != (count,):
            raise ValueError(f"lost must be a bool tensor of shape ({count},), got {lost.dtype} {tuple(lost.shape)}")
        dash = 3 * thickness + 2
        gaps = (((ys[:, None] + xs[None, :]) // dash) % 2).to(torch.uint8)
        ring = ring * (1 - lost.to(torch.uint8)[:, None, None] * gaps)
        paint = torch.where(lost[:, None], _colour_rows(lost_colour, count, image.device), paint)
    return _paint(image, ring.unsqueeze(1), paint[:, :, None, None])


def digit_atlas(panel_height: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Glyph weights (11 x gh x gw, int16 0..128) for ``0``-``9`` and ``.``, sized for a panel."""
    coverage = torch.from_numpy(render_digits(panel_height)).to(torch.int16)
    return ((coverage * _ONE + 127) // 255).to(device)


def draw_scores(
    image: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, atlas: torch.Tensor, colours: Colours = BOX_COLOUR
) -> torch.Tensor:
    """Write each frame's score as ``d.dd`` on a dark tag above its box's top-left corner.

    The digits are looked up on the device from ``atlas`` (see :func:`digit_atlas`), so no score
    ever travels to the host. Frames with a non-finite score or an off-screen box get no tag;
    frames too small to hold a tag are returned unchanged. ``colours``: one RGB or one per frame.
    """
    count, height, width = _check_images(image)
    _check_boxes(boxes, count)
    if not scores.dtype.is_floating_point or scores.shape != (count,):
        raise ValueError(f"scores must be a float tensor of shape ({count},), got {scores.dtype} {tuple(scores.shape)}")
    glyph_h, glyph_w = atlas.shape[1:]
    pad = max(1, glyph_h // 5)
    tag_h, tag_w = glyph_h + 2 * pad, 4 * glyph_w + 2 * pad
    if tag_h > height or tag_w > width:
        return image
    x0, y0, x1, y1 = _box_edges(boxes, height, width, 1)
    visible = (x1 >= x0.clamp_min(0)) & (y1 >= y0.clamp_min(0)) & (x0 < width) & (y0 < height)
    show = visible & torch.isfinite(scores)
    hundredths = (scores.nan_to_num(0.0).clamp(0.0, 1.0) * 100).round().long()
    dot = torch.full_like(hundredths, 10)
    chars = torch.stack([hundredths // 100, dot, (hundredths // 10) % 10, hundredths % 10], dim=1)
    text = atlas[chars].permute(0, 2, 1, 3).reshape(count, glyph_h, 4 * glyph_w)
    text = F.pad(text, (pad, pad, pad, pad))
    left = x0.clamp(0, width - tag_w)
    top = (y0 - tag_h).clamp(0, height - tag_h)
    rows = (top[:, None] + torch.arange(tag_h, device=image.device))[:, :, None]
    cols = (left[:, None] + torch.arange(tag_w, device=image.device))[:, None, :]
    frames = torch.arange(count, device=image.device)[:, None, None]
    region = image[frames, :, rows, cols]
    backdrop = _mix(region, torch.zeros_like(region), _ONE * 3 // 4)
    paint = _colour_rows(colours, count, image.device)[:, None, None, :].expand_as(region)
    tagged = _mix(backdrop, paint, text.unsqueeze(-1))
    out = image.clone()
    out[frames, :, rows, cols] = torch.where(show[:, None, None, None], tagged, region)
    return out


@dataclass
class _Patch:
    """An uploaded RGBA patch: colour 3 x h x w uint8 and weight 1 x h x w int16 (0..128)."""

    colour: torch.Tensor
    weight: torch.Tensor

    @classmethod
    def upload(cls, rgb: np.ndarray, alpha: np.ndarray, max_h: int, max_w: int, device: torch.device) -> _Patch:
        rgb, alpha = rgb[:max_h, :max_w], alpha[:max_h, :max_w]
        weight = (torch.from_numpy(alpha.astype(np.int16)) * _ONE + 127) // 255
        colour = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
        return cls(colour.to(device), weight.unsqueeze(0).to(device))

    def composite(self, panel: torch.Tensor, top: int, left: int) -> None:
        """Blend the patch in place onto every frame of ``panel`` at (top, left)."""
        h, w = self.colour.shape[1:]
        region = panel[:, :, top : top + h, left : left + w]
        region.copy_(_mix(region, self.colour.expand_as(region), self.weight))


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
        _check_depth_range(near, far, depth_log)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.classes = list(CAMVID_CLASSES if classes is None else classes)
        if palette is None:
            is_camvid = [c.lower() for c in self.classes] == [c.lower() for c in CAMVID_CLASSES]
            palette = camvid_palette() if is_camvid else distinct_palette(len(self.classes))
        _check_palette(palette)
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
        count, height, width = _check_images(images, "images")
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
            _check_boxes(outputs["boxes"], count)
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
        fractions = _depth_fraction(torch.tensor(values, dtype=torch.float64), near, far, self.depth_log)
        ticks = [(round((1.0 - f) * (bar_h - 1)), f"{v:.3g} m") for v, f in zip(values, fractions.tolist())]
        return colours, ticks

    def _labels_panel(self, image: torch.Tensor, labels: torch.Tensor, deco: _Decorations) -> torch.Tensor:
        rgba = _label_rgba(labels, self.palette, round(self.alpha * _ONE), torch.int16)
        panel = _mix(image, rgba[:, :3], rgba[:, 3:])
        if deco.legend is not None:
            deco.legend.composite(panel, deco.margin, deco.margin)
        return panel

    def _depth_panel(self, image: torch.Tensor, depth: torch.Tensor, blended: bool, deco: _Decorations) -> torch.Tensor:
        near, far = self.depth_range
        if blended:
            rgba = _depth_rgba(depth, near, far, self.depth_log, self.lut, round(self.alpha * _ONE), torch.int16)
            panel = _mix(image, rgba[:, :3], rgba[:, 3:])
        else:
            panel = _depth_rgba(depth, near, far, self.depth_log, self.lut, 0, torch.uint8)[:, :3]
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
    return _mix(image, torch.zeros_like(image), _ONE * 3 // 5)


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
