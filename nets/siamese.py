"""SiamFC (Bertinetto et al. 2016): AlexNet embedding, cross-correlation head and a tracker.

The tracker keeps all of its state on the model's device and crops, embeds, correlates and
locates the peak there; each update reads back only the final box, score and lost flag.
"""

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    pool: bool = False,
    activate: bool = True,
) -> nn.Sequential:
    """conv (with bias) -> BN (eps 1e-6) -> ReLU [-> 3x3/2 max-pool], or a lone conv."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups)]
    if activate:
        layers += [nn.BatchNorm2d(cout, eps=1e-6, momentum=0.05), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(3, 2))
    return nn.Sequential(*layers)


class AlexNetEmbedding(nn.Module):
    """SiamFC's AlexNet: 127x127 -> 256x6x6, 255x255 -> 256x22x22 (total stride 8), RGB 0..255."""

    total_stride = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv_block(3, 96, 11, stride=2, pool=True)
        self.conv2 = _conv_block(96, 256, 5, groups=2, pool=True)
        self.conv3 = _conv_block(256, 384, 3)
        self.conv4 = _conv_block(384, 384, 3, groups=2)
        self.conv5 = _conv_block(384, 256, 3, groups=2, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


def xcorr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate exemplar features z (N or 1 x C x h x w) over search features x
    (N x C x H x W) in one grouped convolution: N x 1 x (H-h+1) x (W-w+1)."""
    shapes = f"exemplars {tuple(z.shape)} and search features {tuple(x.shape)}"
    if z.dim() != 4 or x.dim() != 4 or z.shape[1] != x.shape[1]:
        raise ValueError(f"xcorr needs N x C x h x w features with equal C, got {shapes}")
    n, c, height, width = x.shape
    if z.shape[0] not in (1, n) or z.shape[2] > height or z.shape[3] > width:
        raise ValueError(f"xcorr needs 1 or N exemplars no larger than the search, got {shapes}")
    kernels = z.expand(n, -1, -1, -1)
    out = F.conv2d(x.reshape(1, n * c, height, width), kernels, groups=n)
    return out.transpose(0, 1)


class SiamFCNet(nn.Module):
    """Embedding plus a parameter-free correlation head; state_dict keys ``backbone.conv{1..5}.0``
    (conv) and ``.1`` (BN) as in the common public PyTorch SiamFC checkpoint, so it loads strictly
    (e.g. with ``nets.checkpoints.load_state_strict``)."""

    def __init__(self, out_scale: float = 0.001) -> None:
        super().__init__()
        self.backbone = AlexNetEmbedding()
        self.out_scale = out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Response maps of exemplar images z over search images x (17x17 for 127 vs 255)."""
        return xcorr(self.backbone(z), self.backbone(x)) * self.out_scale


@dataclass(frozen=True)
class TrackerParams:
    """SiamFC inference settings. Published defaults, except three of ours: ``centre_exemplar``
    (correlate with the exemplar minus its per-channel mean, which follows the target's pattern
    rather than the local feature level and is what lets untrained embeddings track; False gives
    the published head), ``lost_threshold`` on the score, and ``min_size`` of the box in pixels."""

    exemplar_size: int = 127
    search_size: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    window_influence: float = 0.176
    response_up: int = 16
    centre_exemplar: bool = True
    lost_threshold: float = 0.2
    min_size: float = 4.0


@dataclass(frozen=True)
class TrackResult:
    """Box (x, y, w, h) in pixels of the frame, the match score in -1..1, and whether it is lost."""

    box: tuple[float, float, float, float]
    score: float
    lost: bool


class SiamFCTracker:
    """Single-object SiamFC tracker; ``init`` once on a box, then ``update`` on every frame.

    The score is the peak Pearson correlation between the exemplar embedding and an
    exemplar-sized window of the search embedding (each minus its per-channel mean), so it lies
    in -1..1 and is comparable across frames and targets. Below ``lost_threshold`` the target
    counts as lost: the last box is kept and searched around until the score recovers.
    """

    def __init__(
        self, net: SiamFCNet, device: torch.device | str | None = None, **params: float | bool
    ) -> None:
        known = {f.name for f in fields(TrackerParams)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown SiamFC tracker parameters {unknown}; known: {sorted(known)}")
        self.params = replace(TrackerParams(), **params)
        if self.params.scale_num < 1 or self.params.scale_num % 2 == 0:
            raise ValueError(f"scale_num must be a positive odd number, got {self.params.scale_num}")
        first = next(net.parameters())
        self.device = torch.device(device) if device is not None else first.device
        self.dtype = first.dtype
        self.net = net.to(self.device).eval()
        p = self.params
        half = p.scale_num // 2
        exponents = torch.arange(-half, half + 1, device=self.device, dtype=torch.float32)
        self.scale_factors = p.scale_step**exponents
        penalty = torch.full((p.scale_num,), p.scale_penalty, device=self.device)
        penalty[half] = 1.0
        self.scale_weights = penalty.view(-1, 1, 1)
        response_size = (p.search_size - p.exemplar_size) // net.backbone.total_stride + 1
        self.upscale_size = response_size * p.response_up
        hann = torch.hann_window(self.upscale_size, periodic=False, device=self.device)
        window = torch.outer(hann, hann)
        self.window = window / window.sum()
        self._kernel: torch.Tensor | None = None

    @torch.no_grad()
    def init(self, frame: torch.Tensor | np.ndarray, box: tuple[float, float, float, float]) -> None:
        """Embed the target in ``box`` (x, y, w, h, pixels) of the first frame."""
        image = self._to_image(frame)
        x, y, w, h = (float(v) for v in box)
        height, width = image.shape[-2:]
        if not (w > 0 and h > 0):
            raise ValueError(f"tracking box needs positive width and height, got {box}")
        if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
            raise ValueError(f"tracking box {box} lies outside the {width}x{height} frame")
        p = self.params
        self.center = torch.tensor([x + w / 2, y + h / 2], device=self.device)
        self.size = torch.tensor([w, h], device=self.device)
        context = p.context * (w + h)
        z_side = float(np.sqrt((w + context) * (h + context)))
        search_side = z_side * p.search_size / p.exemplar_size
        self.search_side = torch.tensor(search_side, device=self.device)
        self.mean_colour = image.mean(dim=(1, 2))
        exemplar = self._crops(image, torch.tensor([z_side], device=self.device), p.exemplar_size)
        features = self.net.backbone(exemplar.to(self.dtype)).float()
        self._kernel = features - features.mean(dim=(2, 3), keepdim=True)
        self._kernel_norm = self._kernel.norm()
        self._response_kernel = self._kernel if p.centre_exemplar else features

    @torch.no_grad()
    def update(self, frame: torch.Tensor | np.ndarray) -> TrackResult:
        """Locate the target in the next frame; one small read-back per call."""
        if self._kernel is None:
            raise RuntimeError("SiamFCTracker.update called before init")
        p = self.params
        image = self._to_image(frame)
        sides = self.search_side * self.scale_factors
        crops = self._crops(image, sides, p.search_size)
        features = self.net.backbone(crops.to(self.dtype)).float()
        spread = self._window_spread(features) * self._kernel_norm
        similarity = xcorr(self._kernel, features).squeeze(1) / spread
        size = (self.upscale_size, self.upscale_size)
        responses = F.interpolate(xcorr(self._response_kernel, features), size=size, mode="bicubic")
        responses = responses.squeeze(1) * self.scale_weights
        best = responses.flatten(1).amax(1).argmax().view(1)
        response = responses.index_select(0, best)[0]
        response = response - response.min()
        response = response / (response.sum() + 1e-16)
        response = (1 - p.window_influence) * response + p.window_influence * self.window
        peak = response.flatten().argmax()
        loc = torch.stack([peak % self.upscale_size, peak // self.upscale_size]).float()
        factor = self.scale_factors.index_select(0, best)[0]
        crop_to_frame = self.search_side * factor / p.search_size
        cell_pixels = self.net.backbone.total_stride / p.response_up * crop_to_frame
        shift = (loc - (self.upscale_size - 1) / 2) * cell_pixels

        score = similarity.index_select(0, best).amax()
        found = score >= p.lost_threshold
        growth = torch.where(found, 1 - p.scale_lr + p.scale_lr * factor, torch.ones_like(factor))
        self.center = torch.where(found, self.center + shift, self.center)
        self.size = (self.size * growth).clamp_min(p.min_size)
        self.search_side = self.search_side * growth
        corner = self.center - self.size / 2
        readback = torch.cat([corner, self.size, score.view(1), found.float().view(1)])
        x, y, w, h, s, ok = readback.tolist()
        return TrackResult(box=(x, y, w, h), score=s, lost=not ok)

    def _window_spread(self, features: torch.Tensor) -> torch.Tensor:
        """Norm of each exemplar-sized window of the search features after removing the window's
        per-channel mean: the denominator that turns the correlation into a Pearson coefficient."""
        window = self._kernel.shape[-2:]
        count = window[0] * window[1]
        sums = F.avg_pool2d(features, window, stride=1) * count
        squares = F.avg_pool2d(features.pow(2), window, stride=1) * count
        return (squares - sums.pow(2) / count).sum(1).clamp_min(1e-12).sqrt()

    def _to_image(self, frame: torch.Tensor | np.ndarray) -> torch.Tensor:
        """An RGB uint8 frame (3 x H x W tensor or H x W x 3 array) as float 3 x H x W on the device."""
        if isinstance(frame, np.ndarray):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                got = f"{frame.dtype} {frame.shape}"
                raise ValueError(f"tracker frames must be H x W x 3 uint8 arrays, got {got}")
            frame = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
        elif isinstance(frame, torch.Tensor):
            if frame.dim() != 3 or frame.shape[0] != 3 or frame.dtype != torch.uint8:
                shape = tuple(frame.shape)
                raise ValueError(f"tracker frames must be 3 x H x W uint8 tensors, got {frame.dtype} {shape}")
        else:
            kind = type(frame).__name__
            raise TypeError(f"tracker frames must be a torch tensor or numpy array, got {kind}")
        return frame.to(self.device, non_blocking=True).float()

    def _crops(self, image: torch.Tensor, sides: torch.Tensor, out_size: int) -> torch.Tensor:
        """Square crops of the given sides around the centre, resized bilinearly to out_size and
        padded with the mean colour: len(sides) x 3 x out_size x out_size."""
        height, width = image.shape[-2:]
        count = sides.numel()
        steps = (torch.arange(out_size, device=self.device, dtype=torch.float32) + 0.5) / out_size - 0.5
        offsets = steps.view(1, -1) * sides.view(-1, 1)
        px = ((self.center[0] + offsets) * (2 / width) - 1).view(count, 1, out_size)
        py = ((self.center[1] + offsets) * (2 / height) - 1).view(count, out_size, 1)
        grid = torch.stack([px.expand(-1, out_size, -1), py.expand(-1, -1, out_size)], dim=-1)
        centred = (image - self.mean_colour.view(3, 1, 1)).unsqueeze(0)
        stacked = grid.reshape(1, count * out_size, out_size, 2)
        crops = F.grid_sample(centred, stacked, mode="bilinear", align_corners=False)
        crops = crops.view(3, count, out_size, out_size).transpose(0, 1)
        return crops + self.mean_colour.view(1, 3, 1, 1)
