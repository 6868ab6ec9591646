"""RED-Net (Mao, Shen, Yang 2016): a residual encoder-decoder for image restoration.

N/2 stride-1 3x3 convolutions encode, N/2 stride-1 3x3 transposed convolutions decode, and
every second encoder output is added to its mirrored decoder output. The network predicts a
correction that is added to its (for super-resolution, bicubically upsampled) input, so the
same architecture serves denoising, super-resolution, JPEG deblocking and deblurring.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("denoise", "sr", "jpeg", "deblur")
SR_SCALES = (2, 3, 4)


class RedNet(nn.Module):
    """RED10/20/30-style restoration net on float N x C x H x W images in 0..1, any H and W.

    Every layer but the last is followed by ReLU; the last transposed conv stays linear so the
    predicted correction can be negative. The output is not clamped (clamp for display).
    Keys: ``encoder.{i}`` (Conv2d) and ``decoder.{i}`` (ConvTranspose2d), i counted from the
    image side of the encoder and from the bottleneck side of the decoder.
    """

    def __init__(
        self,
        depth: int = 30,
        width: int = 64,
        mode: str = "denoise",
        scale: int = 1,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if depth < 4 or depth % 2:
            raise ValueError(f"RED-Net depth must be an even number >= 4, got {depth}")
        if width < 1 or in_channels < 1:
            raise ValueError(f"RED-Net width and in_channels must be positive, got {width} and {in_channels}")
        if mode not in MODES:
            raise ValueError(f"RED-Net mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "sr" and scale not in SR_SCALES:
            raise ValueError(f"RED-Net super-resolution scale must be one of {SR_SCALES}, got {scale}")
        if mode != "sr" and scale != 1:
            raise ValueError(f"RED-Net scale must be 1 for mode {mode!r}, got {scale}")
        self.depth = depth
        self.width = width
        self.mode = mode
        self.scale = scale
        self.in_channels = in_channels
        half = depth // 2
        self.encoder = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1) for i in range(half)
        )
        self.decoder = nn.ModuleList(
            nn.ConvTranspose2d(width, in_channels if i == half - 1 else width, 3, padding=1)
            for i in range(half)
        )
        pairs = skip_pairs(half)
        self.skip_from = frozenset(enc for enc, _ in pairs)
        self.skip_into = {dec: enc for enc, dec in pairs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore ``x``; for ``mode='sr'`` the output is ``scale`` times larger."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or not x.is_floating_point():
            raise ValueError(
                f"RED-Net expects a float N x {self.in_channels} x H x W tensor, "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )
        if self.mode == "sr":
            x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        skips = {}
        h = x
        for i, conv in enumerate(self.encoder):
            h = F.relu(conv(h))
            if i in self.skip_from:
                skips[i] = h
        last = len(self.decoder) - 1
        for i, deconv in enumerate(self.decoder):
            h = deconv(h)
            if i in self.skip_into:
                h = h + skips.pop(self.skip_into[i])
            if i != last:
                h = F.relu(h)
        return x + h


def skip_pairs(half: int) -> list[tuple[int, int]]:
    """(encoder layer, decoder layer) index pairs joined by a skip: every second encoder output.

    Encoder layer e (0-based) and decoder layer d have the same depth in the symmetric net when
    e + d = half - 2; the encoder's last layer is the bottleneck and never skips.
    """
    return [(e, half - 2 - e) for e in range(1, half - 1, 2)]


def deepened(shallow: RedNet, depth: int) -> RedNet:
    """A deeper RED-Net that computes exactly what ``shallow`` computes, to train on from there.

    The new layers go in at the bottleneck, where every value is non-negative (after ReLU): new
    encoder layers copy their input (centre-tap identity kernels), and each new decoder layer
    copies it too, or, where an encoder skip now lands, outputs zero so that the skip (which
    carries the same bottleneck value) passes it on. The outer layers keep their weights and
    their skips, which the symmetric pairing moves along with them.
    """
    if depth <= shallow.depth or depth % 2:
        raise ValueError(f"deepened needs an even depth above {shallow.depth}, got {depth}")
    deep = RedNet(depth, shallow.width, shallow.mode, shallow.scale, shallow.in_channels)
    added = (depth - shallow.depth) // 2
    old_half = shallow.depth // 2
    with torch.no_grad():
        for i, conv in enumerate(deep.encoder):
            if i < old_half:
                conv.load_state_dict(shallow.encoder[i].state_dict())
            else:
                _set_identity(conv)
        for i, deconv in enumerate(deep.decoder):
            if i >= added:
                deconv.load_state_dict(shallow.decoder[i - added].state_dict())
            elif i in deep.skip_into:
                deconv.weight.zero_()
                deconv.bias.zero_()
            else:
                _set_identity(deconv)
    return deep


def _set_identity(layer: nn.Conv2d | nn.ConvTranspose2d) -> None:
    """Make a width-to-width 3x3 (transposed) convolution with padding 1 copy its input."""
    layer.weight.zero_()
    layer.bias.zero_()
    for channel in range(layer.weight.shape[0]):
        layer.weight[channel, channel, 1, 1] = 1.0


def self_ensemble(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Average ``model`` over the 8 flips/rotations of ``x``, each mapped back before averaging."""
    if x.dim() != 4:
        raise ValueError(f"self_ensemble expects an N x C x H x W tensor, got shape {tuple(x.shape)}")
    total = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for turns in range(4):
            y = model(torch.rot90(xf, turns, dims=(-2, -1)))
            y = torch.rot90(y, -turns, dims=(-2, -1))
            y = y.flip(-1) if flip else y
            total = y if total is None else total + y
    return total / 8
