"""RefineNet (Lin et al., CVPR 2017) and Light-Weight RefineNet (Nekrasov et al., BMVC 2018).

Every model takes a normalised float N x 3 x H x W batch of any H/W, pads it internally to the
encoder stride, and returns logits N x C x H x W at the input size. Decoder models subclass
their encoder so its modules sit at the top level of the state dict, as in the published
checkpoints.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from nets.backbones import LayeredMobileNetV2, ResNet
from nets.layers import (
    PAD_MODES,
    check_image_batch,
    conv1x1,
    conv3x3,
    light_crp,
    max_pool5,
    pad_to_multiple,
    upsample_and_crop,
    upsample_to,
)

__all__ = [
    "RCU",
    "ChainedResidualPool",
    "RefineBlock",
    "RefineNet",
    "LWRefineNetResNet",
    "LWRefineNetMobileNet",
    "refinenet",
    "lw_refinenet_resnet",
    "lw_refinenet_mobilenet",
]


class RCU(nn.Module):
    """Residual conv unit: ReLU → 3x3 conv (bias) → ReLU → 3x3 conv (no bias), plus the input,
    as in the authors' port of the original network."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return x + out


class ChainedResidualPool(nn.Module):
    """Original CRP: ReLU, then stages of 5x5 max-pool (stride 1) + 3x3 conv, each added in."""

    def __init__(self, channels: int, stages: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(channels, channels) for _ in range(stages))

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        top = x
        for conv in self.convs:
            top = conv(max_pool5(top))
            x = x + top
        return x


class RefineBlock(nn.Module):
    """One RefineNet path: 2 RCUs per input, multi-resolution fusion (3x3 conv per input,
    upsample to the finest, sum), chained residual pooling and an output RCU.
    The first input is the finest; a single input skips fusion."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int, align_corners: bool) -> None:
        super().__init__()
        if len(in_channels) == 1 and in_channels[0] != out_channels:
            raise ValueError("a single-input RefineBlock keeps its channel count")
        self.align_corners = align_corners
        self.rcus = nn.ModuleList(nn.Sequential(RCU(c), RCU(c)) for c in in_channels)
        self.fuse = (nn.ModuleList(conv3x3(c, out_channels) for c in in_channels)
                     if len(in_channels) > 1 else None)
        self.crp = ChainedResidualPool(out_channels)
        self.out_rcu = RCU(out_channels)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        paths = [rcu(x) for rcu, x in zip(self.rcus, inputs)]
        if self.fuse is None:
            fused = paths[0]
        else:
            size = paths[0].shape[-2:]
            fused = self.fuse[0](paths[0])
            for conv, path in zip(self.fuse[1:], paths[1:]):
                fused = fused + upsample_to(conv(path), size, self.align_corners)
        return self.out_rcu(self.crp(fused))


class RefineNet(ResNet):
    """The 4-cascade RefineNet on a ResNet: 512 channels at 1/32, 256 elsewhere, output stride 4."""

    align_corners = False

    def __init__(self, num_classes: int, depth: int = 101, pad_mode: str = "replicate") -> None:
        super().__init__(depth)
        check_head_args(num_classes, pad_mode)
        self.pad_mode = pad_mode
        widths = (256, 256, 256, 512)
        self.adapt = nn.ModuleList(conv3x3(c, w) for c, w in zip(self.channels, widths))
        self.refine4 = RefineBlock((512,), 512, self.align_corners)
        self.refine3 = RefineBlock((256, 512), 256, self.align_corners)
        self.refine2 = RefineBlock((256, 256), 256, self.align_corners)
        self.refine1 = RefineBlock((256, 256), 256, self.align_corners)
        self.clf_conv = conv3x3(256, num_classes, bias=True)

    @property
    def classifier(self) -> nn.Conv2d:
        """The final conv that gives the class scores (its bias shifts each class's score)."""
        return self.clf_conv

    def forward(self, x: Tensor) -> Tensor:
        size, x = prepare_input(x, self.stride, self.pad_mode)
        l1, l2, l3, l4 = (adapt(level) for adapt, level in zip(self.adapt, self.encode(x)))
        y = self.refine4([l4])
        y = self.refine3([l3, y])
        y = self.refine2([l2, y])
        y = self.refine1([l1, y])
        return upsample_and_crop(self.clf_conv(y), x.shape[-2:], size, self.align_corners)


class LWRefineNetResNet(ResNet):
    """Light-Weight RefineNet on ResNet-18..152 with the published checkpoint key names.

    Upsampling uses align_corners=True, as the published weights were trained with it.
    """

    align_corners = True

    def __init__(self, num_classes: int, depth: int = 50, pad_mode: str = "replicate") -> None:
        super().__init__(depth)
        check_head_args(num_classes, pad_mode)
        self.pad_mode = pad_mode
        c1, c2, c3, c4 = self.channels
        self.p_ims1d2_outl1_dimred = conv1x1(c4, 512)
        self.mflow_conv_g1_pool = light_crp(512)
        self.mflow_conv_g1_b3_joint_varout_dimred = conv1x1(512, 256)
        self.p_ims1d2_outl2_dimred = conv1x1(c3, 256)
        self.adapt_stage2_b2_joint_varout_dimred = conv1x1(256, 256)
        self.mflow_conv_g2_pool = light_crp(256)
        self.mflow_conv_g2_b3_joint_varout_dimred = conv1x1(256, 256)
        self.p_ims1d2_outl3_dimred = conv1x1(c2, 256)
        self.adapt_stage3_b2_joint_varout_dimred = conv1x1(256, 256)
        self.mflow_conv_g3_pool = light_crp(256)
        self.mflow_conv_g3_b3_joint_varout_dimred = conv1x1(256, 256)
        self.p_ims1d2_outl4_dimred = conv1x1(c1, 256)
        self.adapt_stage4_b2_joint_varout_dimred = conv1x1(256, 256)
        self.mflow_conv_g4_pool = light_crp(256)
        self.clf_conv = conv3x3(256, num_classes, bias=True)

    @property
    def classifier(self) -> nn.Conv2d:
        """The final conv that gives the class scores (its bias shifts each class's score)."""
        return self.clf_conv

    def _merge(self, skip: Tensor, dimred: nn.Module, adapt: nn.Module, coarser: Tensor) -> Tensor:
        """Reduce a skip level, adapt it, add the upsampled coarser path and ReLU."""
        coarser = upsample_to(coarser, skip.shape[-2:], self.align_corners)
        return F.relu(adapt(dimred(skip)) + coarser, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        size, x = prepare_input(x, self.stride, self.pad_mode)
        l1, l2, l3, l4 = self.encode(x)
        y = F.relu(self.p_ims1d2_outl1_dimred(l4), inplace=True)
        y = self.mflow_conv_g1_b3_joint_varout_dimred(self.mflow_conv_g1_pool(y))
        y = self._merge(l3, self.p_ims1d2_outl2_dimred, self.adapt_stage2_b2_joint_varout_dimred, y)
        y = self.mflow_conv_g2_b3_joint_varout_dimred(self.mflow_conv_g2_pool(y))
        y = self._merge(l2, self.p_ims1d2_outl3_dimred, self.adapt_stage3_b2_joint_varout_dimred, y)
        y = self.mflow_conv_g3_b3_joint_varout_dimred(self.mflow_conv_g3_pool(y))
        y = self._merge(l1, self.p_ims1d2_outl4_dimred, self.adapt_stage4_b2_joint_varout_dimred, y)
        y = self.mflow_conv_g4_pool(y)
        return upsample_and_crop(self.clf_conv(y), x.shape[-2:], size, self.align_corners)


class LWRefineNetMobileNet(LayeredMobileNetV2):
    """Light-Weight RefineNet on MobileNet-v2 in the authors' layout (``layer1..8``, ``conv3..8``,
    ``crp1..4``, ``conv_adapt2..4``, ``segm``). 1x1 convs bring the six stages to
    ``decoder_channels``; they are fused in pairs with ReLU6 and four CRPs."""

    align_corners = True

    def __init__(self, num_classes: int, width_mult: float = 1.0, decoder_channels: int = 256,
                 pad_mode: str = "replicate", depthwise_last_crp: bool = False) -> None:
        super().__init__(width_mult)
        check_head_args(num_classes, pad_mode)
        self.pad_mode = pad_mode
        d = decoder_channels
        for index, channels in zip(range(3, 9), self.channels):
            self.add_module(f"conv{index}", conv1x1(channels, d))
        self.crp4 = light_crp(d)
        self.crp3 = light_crp(d)
        self.crp2 = light_crp(d)
        self.crp1 = light_crp(d, depthwise=depthwise_last_crp)
        self.conv_adapt4 = conv1x1(d, d)
        self.conv_adapt3 = conv1x1(d, d)
        self.conv_adapt2 = conv1x1(d, d)
        self.segm = conv3x3(d, num_classes, bias=True)

    @property
    def classifier(self) -> nn.Conv2d:
        """The final conv that gives the class scores (its bias shifts each class's score)."""
        return self.segm

    def decode(self, x: Tensor) -> Tensor:
        """Decoder features at stride 4 (after the finest CRP) for a padded batch."""
        l3, l4, l5, l6, l7, l8 = self.encode(x)
        y = F.relu6(self.conv8(l8) + self.conv7(l7), inplace=True)
        y = self.conv_adapt4(self.crp4(y))
        y = upsample_to(y, l6.shape[-2:], self.align_corners)
        y = F.relu6(self.conv6(l6) + self.conv5(l5) + y, inplace=True)
        y = self.conv_adapt3(self.crp3(y))
        y = upsample_to(y, l4.shape[-2:], self.align_corners)
        y = F.relu6(self.conv4(l4) + y, inplace=True)
        y = self.conv_adapt2(self.crp2(y))
        y = upsample_to(y, l3.shape[-2:], self.align_corners)
        y = F.relu6(self.conv3(l3) + y, inplace=True)
        return self.crp1(y)

    def forward(self, x: Tensor) -> Tensor:
        size, x = prepare_input(x, self.stride, self.pad_mode)
        return upsample_and_crop(self.segm(self.decode(x)), x.shape[-2:], size, self.align_corners)


def check_head_args(num_classes: int, pad_mode: str) -> None:
    """Reject a bad class count or padding mode when a model is built."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {sorted(PAD_MODES)}, got {pad_mode!r}")


def prepare_input(x: Tensor, stride: int, pad_mode: str) -> tuple[tuple[int, int], Tensor]:
    """Validate the batch and pad it to the stride; returns (original H, W) and the padded batch."""
    check_image_batch(x)
    size = (x.shape[-2], x.shape[-1])
    return size, pad_to_multiple(x, stride, pad_mode)


def refinenet(num_classes: int, depth: int = 101, pad_mode: str = "replicate") -> RefineNet:
    """The original 4-cascade RefineNet on ResNet-``depth``."""
    return RefineNet(num_classes, depth, pad_mode)


def lw_refinenet_resnet(num_classes: int, depth: int = 50, pad_mode: str = "replicate") -> LWRefineNetResNet:
    """Light-Weight RefineNet on ResNet-``depth`` (18, 34, 50, 101 or 152)."""
    return LWRefineNetResNet(num_classes, depth, pad_mode)


def lw_refinenet_mobilenet(num_classes: int, width_mult: float = 1.0, decoder_channels: int = 256,
                           pad_mode: str = "replicate") -> LWRefineNetMobileNet:
    """Light-Weight RefineNet on MobileNet-v2."""
    return LWRefineNetMobileNet(num_classes, width_mult, decoder_channels, pad_mode)
