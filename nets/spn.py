"""Spatial propagation network (Liu et al., NIPS 2017): image-guided linear propagation that
refines a coarse probability or depth map along rows and columns in four directions.

Each direction runs the three-way recurrence
``h[i, t] = (1 - g1 - g2 - g3) * x[i, t] + g1 * h[i-1, t-1] + g2 * h[i, t-1] + g3 * h[i+1, t-1]``
with per-pixel gates stored at the pixel being computed (as in the authors' CUDA kernels);
gates that point outside the image are zero, so the first line along the propagation axis is
copied from the input. The four directions are merged by a pixel-wise maximum.
"""

import torch
import torch.nn.functional as F
from torch import nn

DIRECTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")


def normalise_gates(raw: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's three gates (dim 1) so that |g1| + |g2| + |g3| <= 1.

    This is the SPN stability condition; gates already inside the bound are left unchanged.
    """
    if raw.dim() < 3 or raw.shape[1] != 3:
        raise ValueError(f"gates need the three connections on dim 1, got shape {tuple(raw.shape)}")
    total = raw.abs().sum(dim=1, keepdim=True)
    return raw / total.clamp(min=1.0)


def _to_scan_layout(t: torch.Tensor, horizontal: bool, reverse: bool) -> torch.Tensor:
    """Reorder a ... x H x W tensor to T x ... x N: propagation axis first (flipped for reverse
    scans), the orthogonal axis last."""
    h_dim, w_dim = t.dim() - 2, t.dim() - 1
    scan, across = (w_dim, h_dim) if horizontal else (h_dim, w_dim)
    moved = t.permute(scan, *range(h_dim), across)
    return moved.flip(0) if reverse else moved


def _from_scan_layout(t: torch.Tensor, horizontal: bool, reverse: bool) -> torch.Tensor:
    """Undo `_to_scan_layout` for a T x B x C x N tensor, giving B x C x H x W."""
    if reverse:
        t = t.flip(0)
    return (t.permute(1, 2, 3, 0) if horizontal else t.permute(1, 2, 0, 3)).contiguous()


def _check_direction(direction: str) -> tuple[bool, bool]:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction in ("left_to_right", "right_to_left"), direction in ("right_to_left", "bottom_to_top")


def _gates_5d(x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Validate gates against x and return them as B x 3 x G x H x W (G = 1 or C)."""
    if x.dim() != 4:
        raise ValueError(f"propagation expects a B x C x H x W map, got shape {tuple(x.shape)}")
    if gates.dim() == 4:
        gates = gates.unsqueeze(2)
    b, c, h, w = x.shape
    if gates.dim() != 5 or gates.shape[:2] != (b, 3) or gates.shape[2] not in (1, c) or gates.shape[3:] != (h, w):
        raise ValueError(
            f"gates must be B x 3 x H x W or B x 3 x C x H x W matching the map {tuple(x.shape)}, "
            f"got {tuple(gates.shape)}"
        )
    return gates


def propagate(x: torch.Tensor, gates: torch.Tensor, direction: str) -> torch.Tensor:
    """Run the three-way linear propagation over x (B x C x H x W) in one direction.

    gates: B x 3 x H x W (shared by all channels) or B x 3 x C x H x W. g1 links to the
    neighbour with the lower index across the scan (row above for horizontal scans, column to
    the left for vertical ones), g3 to the higher one. Vectorised over batch, channels and the
    orthogonal axis; the loop runs along the propagation axis only.
    """
    horizontal, reverse = _check_direction(direction)
    gates = _gates_5d(x, gates)
    xs = _to_scan_layout(x, horizontal, reverse).contiguous()
    gs = _to_scan_layout(gates, horizontal, reverse).permute(2, 0, 1, 3, 4).contiguous()
    length, across = xs.shape[0], xs.shape[-1]
    inside = torch.ones(3, length, 1, 1, across, dtype=gs.dtype, device=gs.device)
    inside[:, 0] = 0
    inside[0, ..., 0] = 0
    inside[2, ..., across - 1] = 0
    gs = gs * inside
    g1, g2, g3 = gs.unbind(0)
    base = ((1 - gs.sum(dim=0)) * xs).unbind(0)
    g1, g2, g3 = g1.unbind(0), g2.unbind(0), g3.unbind(0)
    lines = [base[0]]
    for t in range(1, length):
        prev = lines[-1]
        padded = F.pad(prev, (1, 1))
        line = torch.addcmul(base[t], g2[t], prev)
        line.addcmul_(g1[t], padded[..., :-2]).addcmul_(g3[t], padded[..., 2:])
        lines.append(line)
    return _from_scan_layout(torch.stack(lines), horizontal, reverse)


def propagate_four_ways(x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Propagate x in the four directions and merge them by a pixel-wise maximum.

    gates: B x 4 x 3 x H x W or B x 4 x 3 x C x H x W, directions in the order of DIRECTIONS.
    Opposite directions run as one batch (the reverse one on flipped inputs), halving the
    number of sequential steps.
    """
    if gates.dim() not in (5, 6) or gates.shape[1] != 4:
        raise ValueError(f"four-way gates must have the four directions on dim 1, got shape {tuple(gates.shape)}")
    merged = []
    for forward, backward, axis in (("left_to_right", "right_to_left", -1), ("top_to_bottom", "bottom_to_top", -2)):
        gates_forward = gates[:, DIRECTIONS.index(forward)]
        gates_backward = gates[:, DIRECTIONS.index(backward)].flip(axis)
        both = propagate(torch.cat([x, x.flip(axis)]), torch.cat([gates_forward, gates_backward]), forward)
        ahead, behind = both.chunk(2)
        merged.append(torch.maximum(ahead, behind.flip(axis)))
    return torch.maximum(*merged)


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """image[p + (dy, dx)] for every pixel p, border pixels replicated outside the image."""
    h, w = image.shape[-2:]
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _previous_neighbours(direction: str) -> list[tuple[int, int]]:
    """Offsets (dy, dx) of the g1, g2, g3 neighbours on the previous line of a scan."""
    step = -1 if direction in ("left_to_right", "top_to_bottom") else 1
    if direction in ("left_to_right", "right_to_left"):
        return [(-1, step), (0, step), (1, step)]
    return [(step, -1), (step, 0), (step, 1)]


def edge_gates(image: torch.Tensor, sigma: float = 0.1, reach: float = 0.95) -> torch.Tensor:
    """Non-learned SPN gates from colour similarity: g = reach/3 * exp(-|I_p - I_q|^2 / (2 sigma^2)).

    Returns B x 4 x 3 x H x W gates: propagation flows freely inside flat regions and stops at
    colour edges. `reach` < 1 sets how far a value travels (about 1 / (1 - reach) pixels).
    """
    if image.dim() != 4:
        raise ValueError(f"edge_gates expects a B x C x H x W image, got shape {tuple(image.shape)}")
    if sigma <= 0 or not 0 < reach <= 1:
        raise ValueError(f"edge_gates needs sigma > 0 and 0 < reach <= 1, got sigma={sigma}, reach={reach}")
    per_direction = []
    for direction in DIRECTIONS:
        similarity = [
            torch.exp(-(image - _shifted(image, dy, dx)).pow(2).sum(dim=1) / (2 * sigma**2))
            for dy, dx in _previous_neighbours(direction)
        ]
        per_direction.append(torch.stack(similarity, dim=1) * (reach / 3))
    return torch.stack(per_direction, dim=1)


class SpatialPropagation(nn.Module):
    """SPN refinement module: a small guidance CNN turns the image (and the coarse map) into
    four-direction gates, then the coarse map is propagated and the directions max-merged.

    `scale` < 1 runs the guidance CNN and the propagation at a reduced internal resolution and
    upsamples the result: about 1/scale^3 less work, at the cost of edges no sharper than the
    reduced grid. Maps with more than one channel are treated as class probabilities and
    renormalised to sum to one; a single channel (e.g. depth) is returned as propagated.
    """

    def __init__(self, guidance_channels: int = 3, map_channels: int = 1, width: int = 16, scale: float = 1.0):
        super().__init__()
        if guidance_channels < 1 or map_channels < 1 or width < 1:
            raise ValueError(
                f"SpatialPropagation needs positive channel counts, got guidance_channels={guidance_channels}, "
                f"map_channels={map_channels}, width={width}"
            )
        if not 0 < scale <= 1:
            raise ValueError(f"SpatialPropagation scale must be in (0, 1], got {scale}")
        self.guidance_channels = guidance_channels
        self.map_channels = map_channels
        self.scale = scale
        self.guidance = nn.Sequential(
            nn.Conv2d(guidance_channels + map_channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 4 * 3, 3, padding=1),
        )

    def gates(self, probs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Normalised B x 4 x 3 x H x W gates predicted from the image and the coarse map."""
        raw = self.guidance(torch.cat([image, probs], dim=1))
        b, _, h, w = raw.shape
        return normalise_gates(raw.view(b * 4, 3, h, w)).view(b, 4, 3, h, w)

    def _check(self, probs: torch.Tensor, image: torch.Tensor) -> None:
        if probs.dim() != 4 or probs.shape[1] != self.map_channels:
            raise ValueError(
                f"SpatialPropagation expects B x {self.map_channels} x H x W maps, got shape {tuple(probs.shape)}"
            )
        if image.dim() != 4 or image.shape[1] != self.guidance_channels:
            raise ValueError(
                f"SpatialPropagation expects a B x {self.guidance_channels} x H x W guidance image, "
                f"got shape {tuple(image.shape)}"
            )
        if image.shape[0] != probs.shape[0] or image.shape[-2:] != probs.shape[-2:]:
            raise ValueError(
                f"map {tuple(probs.shape)} and guidance image {tuple(image.shape)} differ in batch or size"
            )

    def forward(self, probs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Refine B x C x H x W maps guided by a B x G x H x W image; the output has the input size."""
        self._check(probs, image)
        size = probs.shape[-2:]
        if self.scale < 1:
            inner = (max(1, round(size[0] * self.scale)), max(1, round(size[1] * self.scale)))
            probs_in = F.interpolate(probs, size=inner, mode="bilinear", align_corners=False, antialias=True)
            image_in = F.interpolate(image, size=inner, mode="bilinear", align_corners=False, antialias=True)
        else:
            probs_in, image_in = probs, image
        refined = propagate_four_ways(probs_in, self.gates(probs_in, image_in))
        if refined.shape[-2:] != size:
            refined = F.interpolate(refined, size=size, mode="bilinear", align_corners=False)
        if self.map_channels > 1:
            refined = refined.clamp(min=0)
            refined = refined / refined.sum(dim=1, keepdim=True).clamp(min=torch.finfo(refined.dtype).tiny)
        return refined
