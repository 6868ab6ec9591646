"""ImageNet encoders (ResNet-18..152, MobileNet-v2) that hand their feature levels to a decoder.

State-dict keys follow torchvision (``conv1``, ``bn1``, ``layer1..4``, ``fc``; ``features.N``,
``classifier.1``) so a user's torchvision ImageNet checkpoint loads strictly. ``LayeredMobileNetV2``
is the same network in the layout of the Light-Weight RefineNet authors (``layer1..layer8``),
which their segmentation and joint checkpoints use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from nets.checkpoints import read_state_dict
from nets.errors import NetsError

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "MobileNetV2",
    "LayeredMobileNetV2",
    "resnet",
    "mobilenet_v2",
    "load_imagenet",
    "torchvision_to_layered",
]

BN_EPS = 1e-5


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or projected) shortcut; ResNet-18/34."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision v1.5), 1x1 expand; ResNet-50+."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """The 1x1 conv + BN shortcut used when a block changes shape (``downsample.0/1``)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


RESNET_CONFIGS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ResNet encoder; ``encode`` returns the 1/4, 1/8, 1/16, 1/32 levels.

    With ``num_classes`` it also carries the ImageNet ``fc`` head (see ``classify``).
    """

    encoder_modules: tuple[str, ...] = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    stride = 32

    def __init__(self, depth: int, num_classes: int | None = None) -> None:
        super().__init__()
        if depth not in RESNET_CONFIGS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNET_CONFIGS)}, got {depth}")
        block, counts = RESNET_CONFIGS[depth]
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
            stride = 1 if index == 1 else 2
            blocks = []
            for i in range(count):
                blocks.append(block(channels, planes, stride if i == 0 else 1))
                channels = planes * block.expansion
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
        self.channels = tuple(p * block.expansion for p in (64, 128, 256, 512))
        self.fc = nn.Linear(self.channels[-1], num_classes) if num_classes else None

    def encode(self, x: Tensor) -> list[Tensor]:
        """Feature maps at strides 4, 8, 16, 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        levels = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            levels.append(x)
        return levels

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.encode(x)

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits (needs the ``fc`` head)."""
        if self.fc is None:
            raise ValueError("this ResNet was built without a classifier head (num_classes=None)")
        return self.fc(torch.flatten(self.encode(x)[-1].mean((2, 3), keepdim=True), 1))


def _divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    """Conv (no bias) → BN → optional ReLU6, as a Sequential (keys ``.0`` conv, ``.1`` BN)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


# expansion t, output channels c, repeats n, first stride s (MobileNet-v2 paper, Table 2)
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """MobileNet-v2 block in torchvision layout (``conv``; no expansion conv when t == 1)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = [] if expansion == 1 else [_conv_bn(in_channels, hidden, 1)]
        layers += [
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """MobileNet-v2 in torchvision layout; ``encode`` returns the six stage outputs
    24@1/4, 32@1/8, 64@1/16, 96@1/16, 160@1/32, 320@1/32 (channels at width 1.0).

    With ``num_classes`` it also carries ``features.18`` (1x1 to 1280) and ``classifier.1``.
    """

    stride = 32

    def __init__(self, width_mult: float = 1.0, num_classes: int | None = None) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        channels = _divisible(32 * width_mult)
        layers: list[nn.Module] = [_conv_bn(3, channels, 3, 2)]
        self.stage_ends: list[int] = []
        for t, c, n, s in MOBILENET_V2_STAGES:
            out_channels = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
            self.stage_ends.append(len(layers) - 1)
        self.channels = tuple(_divisible(c * width_mult) for _, c, _, _ in MOBILENET_V2_STAGES[1:])
        self.stage_ends = self.stage_ends[1:]
        last = _divisible(1280 * max(1.0, width_mult))
        if num_classes:
            layers.append(_conv_bn(channels, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes)) if num_classes else None
        self.encoder_modules = ("features",)

    def encode(self, x: Tensor) -> list[Tensor]:
        """The six stage outputs at strides 4, 8, 16, 16, 32, 32."""
        outputs = []
        for index in range(self.stage_ends[-1] + 1):
            x = self.features[index](x)
            if index in self.stage_ends:
                outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.encode(x)

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits (needs the classifier head)."""
        if self.classifier is None:
            raise ValueError("this MobileNetV2 was built without a classifier head (num_classes=None)")
        x = self.features[-1](self.encode(x)[-1])
        return self.classifier(torch.flatten(x.mean((2, 3), keepdim=True), 1))


class LayeredInvertedResidual(nn.Module):
    """MobileNet-v2 block in the RefineNet authors' layout: ``output`` = three conv-BN units,
    including a 1x1 expansion conv even when t == 1."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.output = nn.Sequential(
            _conv_bn(in_channels, hidden, 1),
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            _conv_bn(hidden, out_channels, 1, act=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.output(x)
        return x + out if self.use_residual else out


class LayeredMobileNetV2(nn.Module):
    """MobileNet-v2 as ``layer1`` (stem) .. ``layer8`` (one per stage), the layout of the
    Light-Weight RefineNet and multi-task RefineNet checkpoints. ``encode`` returns the
    outputs of layer3..layer8 (24, 32, 64, 96, 160, 320 channels at width 1.0)."""

    stride = 32

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        channels = _divisible(32 * width_mult)
        self.layer1 = _conv_bn(3, channels, 3, 2)
        for index, (t, c, n, s) in enumerate(MOBILENET_V2_STAGES, start=2):
            out_channels = _divisible(c * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(LayeredInvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
        self.channels = tuple(_divisible(c * width_mult) for _, c, _, _ in MOBILENET_V2_STAGES[1:])
        self.encoder_modules = tuple(f"layer{i}" for i in range(1, 9))

    def encode(self, x: Tensor) -> list[Tensor]:
        """The outputs of layer3..layer8 at strides 4, 8, 16, 16, 32, 32."""
        x = self.layer2(self.layer1(x))
        outputs = []
        for layer in (self.layer3, self.layer4, self.layer5, self.layer6, self.layer7, self.layer8):
            x = layer(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.encode(x)


def resnet(depth: int, num_classes: int | None = None) -> ResNet:
    """ResNet-18/34/50/101/152; pass ``num_classes=1000`` for the ImageNet head."""
    return ResNet(depth, num_classes)


def mobilenet_v2(width_mult: float = 1.0, num_classes: int | None = None) -> MobileNetV2:
    """MobileNet-v2 in torchvision layout; pass ``num_classes=1000`` for the ImageNet head."""
    return MobileNetV2(width_mult, num_classes)


def torchvision_to_layered(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert a torchvision MobileNet-v2 encoder state dict to the ``layer1..8`` layout.

    The t == 1 block there has no expansion conv; it becomes an identity 1x1 conv and an identity
    BN, which is exact because its input is a ReLU6 output (already within 0..6).
    """
    out: dict[str, Tensor] = {}
    _copy_prefix(state, "features.0.", out, "layer1.")
    feature = 1
    for stage, (t, c, n, _) in enumerate(MOBILENET_V2_STAGES, start=2):
        for i in range(n):
            source, target = f"features.{feature}.conv.", f"layer{stage}.{i}.output."
            if t == 1:
                hidden = state[f"{source}0.0.weight"].shape[0]
                reference = state[f"{source}0.1.running_var"]
                out[f"{target}0.0.weight"] = torch.eye(hidden, dtype=reference.dtype)[:, :, None, None]
                out[f"{target}0.1.weight"] = torch.ones(hidden, dtype=reference.dtype)
                out[f"{target}0.1.bias"] = torch.zeros(hidden, dtype=reference.dtype)
                out[f"{target}0.1.running_mean"] = torch.zeros(hidden, dtype=reference.dtype)
                out[f"{target}0.1.running_var"] = torch.full((hidden,), 1.0 - BN_EPS, dtype=reference.dtype)
                out[f"{target}0.1.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
                _copy_prefix(state, f"{source}0.", out, f"{target}1.")
                _copy_prefix(state, f"{source}1.", out, f"{target}2.0.")
                _copy_prefix(state, f"{source}2.", out, f"{target}2.1.")
            else:
                _copy_prefix(state, f"{source}0.", out, f"{target}0.")
                _copy_prefix(state, f"{source}1.", out, f"{target}1.")
                _copy_prefix(state, f"{source}2.", out, f"{target}2.0.")
                _copy_prefix(state, f"{source}3.", out, f"{target}2.1.")
            feature += 1
    return out


def _copy_prefix(source: Mapping[str, Tensor], old: str, target: dict[str, Tensor], new: str) -> None:
    """Copy every ``old*`` entry of ``source`` into ``target`` under ``new*``."""
    for key, value in source.items():
        if key.startswith(old):
            target[new + key[len(old):]] = value


def load_imagenet(model: nn.Module, path: str | Path) -> nn.Module:
    """Load torchvision ImageNet weights into ``model``'s encoder, strictly.

    Every encoder tensor must be present with the right shape (BN ``num_batches_tracked`` may be
    absent, as in torchvision's oldest files) and the file may hold nothing else but the ImageNet
    classifier head (ignored when the model has none). Works on a bare backbone
    and on a decoder model built on one; a torchvision MobileNet-v2 file also loads into the
    ``layer1..8`` layout. Raises NetsError with one line on any mismatch.
    """
    if not hasattr(model, "encoder_modules"):
        raise NetsError(f"{type(model).__name__} has no ImageNet encoder to load into")
    state = read_state_dict(path)
    head_prefixes = ("features.18.", "classifier.", "fc.")
    if isinstance(model, LayeredMobileNetV2) and "features.0.0.weight" in state:
        head = {k: v for k, v in state.items() if k.startswith(head_prefixes)}
        body = {k: v for k, v in state.items() if k not in head}
        try:
            state = {**torchvision_to_layered(body), **head}
        except KeyError as exc:
            raise NetsError(f"{path} is not a torchvision MobileNet-v2 checkpoint (missing {exc})") from None
    own = set(model.encoder_modules)
    if isinstance(model, ResNet) and model.fc is not None:
        own.add("fc")
    if isinstance(model, MobileNetV2) and model.classifier is not None:
        own.add("classifier")
    expected = {k: v for k, v in model.state_dict().items() if k.split(".", 1)[0] in own}
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.startswith(head_prefixes))
    wrong = sorted(k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        detail = (f"missing {missing[0]}" if missing else
                  f"unexpected {unexpected[0]}" if unexpected else
                  f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, "
                  f"expected {tuple(expected[wrong[0]].shape)}")
        raise NetsError(f"{path} does not match {type(model).__name__}'s encoder: {detail}")
    with torch.no_grad():
        for key, tensor in expected.items():
            if key in state:
                tensor.copy_(state[key])
    return model
