"""Joint segmentation + depth: MobileNet-v2 Light-Weight RefineNet with two heads
(Nekrasov et al., ICRA 2019), in the layout of the authors' ExpKITTI/ExpNYUD checkpoints."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from nets.layers import conv1x1, conv3x3, upsample_and_crop
from nets.refinenet import LWRefineNetMobileNet, prepare_input

__all__ = ["JointRefineNet", "joint_refinenet"]


class JointRefineNet(LWRefineNetMobileNet):
    """Shared MobileNet-v2 encoder and light decoder; after the last (depthwise) CRP each task
    has a depthwise 1x1 (``pre_segm``/``pre_depth``) → ReLU6 → 3x3 conv with bias
    (``segm`` with C outputs, ``depth`` with 1).

    ``forward`` returns (logits N x C x H x W, depth N x 1 x H x W in metres) at the input
    size; depth is made non-negative (absolute value) in eval mode.
    """

    align_corners = False

    def __init__(self, num_classes: int, width_mult: float = 1.0, decoder_channels: int = 256,
                 pad_mode: str = "replicate") -> None:
        super().__init__(num_classes, width_mult, decoder_channels, pad_mode, depthwise_last_crp=True)
        d = decoder_channels
        self.pre_segm = conv1x1(d, d, groups=d)
        self.pre_depth = conv1x1(d, d, groups=d)
        self.depth = conv3x3(d, 1, bias=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        size, x = prepare_input(x, self.stride, self.pad_mode)
        features = self.decode(x)
        logits = self.segm(F.relu6(self.pre_segm(features)))
        depth = self.depth(F.relu6(self.pre_depth(features)))
        padded = x.shape[-2:]
        logits = upsample_and_crop(logits, padded, size, self.align_corners)
        depth = upsample_and_crop(depth, padded, size, self.align_corners)
        return logits, depth if self.training else depth.abs()


def joint_refinenet(num_classes: int, width_mult: float = 1.0, decoder_channels: int = 256,
                    pad_mode: str = "replicate") -> JointRefineNet:
    """The joint segmentation + depth MobileNet-v2 Light-Weight RefineNet."""
    return JointRefineNet(num_classes, width_mult, decoder_channels, pad_mode)
