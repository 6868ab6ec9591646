"""ResNet / MobileNet-v2 encoders: feature levels, torchvision key layout, ImageNet loading."""

import pytest
import torch

from nets.backbones import LayeredMobileNetV2, load_imagenet, mobilenet_v2, resnet
from nets.errors import NetsError
from nets.refinenet import lw_refinenet_mobilenet, lw_refinenet_resnet

# A subset of torchvision's resnet50 state dict (name -> shape), from its published layout.
RESNET50_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.running_var": (64,),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv2.weight": (64, 64, 3, 3),
    "layer1.0.conv3.weight": (256, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.weight": (256,),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer2.0.downsample.0.weight": (512, 256, 1, 1),
    "layer3.5.conv3.weight": (1024, 256, 1, 1),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.2.bn3.bias": (2048,),
    "fc.weight": (1000, 2048),
    "fc.bias": (1000,),
}

# A subset of torchvision's mobilenet_v2 state dict.
MOBILENET_V2_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.weight": (32,),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.running_mean": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.bias": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.running_var": (1280,),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    """Give every BN layer non-trivial statistics so encoder comparisons mean something."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)


def test_resnet50_has_torchvision_keys():
    with torch.device("meta"):
        state = resnet(50, num_classes=1000).state_dict()
    assert len(state) == 320
    for key, shape in RESNET50_KEYS.items():
        assert tuple(state[key].shape) == shape, key


def test_mobilenet_v2_has_torchvision_keys():
    with torch.device("meta"):
        state = mobilenet_v2(num_classes=1000).state_dict()
    assert len(state) == 314
    for key, shape in MOBILENET_V2_KEYS.items():
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize("depth, channels", [(18, (64, 128, 256, 512)), (50, (256, 512, 1024, 2048))])
def test_resnet_levels_at_odd_size(depth, channels):
    torch.manual_seed(0)
    model = resnet(depth).eval()
    with torch.no_grad():
        levels = model(torch.randn(1, 3, 59, 81))
    assert [t.shape[1] for t in levels] == list(channels)
    assert [tuple(t.shape[-2:]) for t in levels] == [(15, 21), (8, 11), (4, 6), (2, 3)]


@pytest.mark.parametrize("factory", [mobilenet_v2, LayeredMobileNetV2])
def test_mobilenet_v2_stage_outputs(factory):
    torch.manual_seed(0)
    model = factory().eval()
    with torch.no_grad():
        stages = model(torch.randn(1, 3, 64, 96))
    assert [t.shape[1] for t in stages] == [24, 32, 64, 96, 160, 320]
    assert [t.shape[-1] for t in stages] == [24, 12, 6, 6, 3, 3]


def test_classify_gives_imagenet_logits_and_needs_a_head():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    assert resnet(18, num_classes=1000).eval().classify(x).shape == (2, 1000)
    assert mobilenet_v2(0.5, num_classes=10).eval().classify(x).shape == (2, 10)
    with pytest.raises(ValueError, match="without a classifier"):
        resnet(18).classify(x)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="depth"):
        resnet(42)
    with pytest.raises(ValueError, match="width_mult"):
        mobilenet_v2(0)


def test_load_imagenet_into_backbone_and_decoder_model(tmp_path):
    torch.manual_seed(0)
    source = resnet(18, num_classes=1000)
    _randomise_batchnorm(source)
    source.eval()
    path = tmp_path / "resnet18.pth"
    torch.save({k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    x = torch.randn(1, 3, 64, 64)
    for target in (resnet(18), lw_refinenet_resnet(3, depth=18)):
        load_imagenet(target, path).eval()
        with torch.no_grad():
            for ours, theirs in zip(target.encode(x), source.encode(x)):
                torch.testing.assert_close(ours, theirs)


def test_torchvision_mobilenet_loads_into_layered_layout(tmp_path):
    torch.manual_seed(0)
    source = mobilenet_v2(num_classes=1000)
    _randomise_batchnorm(source)
    source.eval()
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(source.state_dict(), path)
    target = load_imagenet(lw_refinenet_mobilenet(3, decoder_channels=16), path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(target.encode(x), source.encode(x)):
            torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_load_imagenet_rejects_wrong_or_missing_files(tmp_path):
    path = tmp_path / "mobilenet.pth"
    torch.save(mobilenet_v2().state_dict(), path)
    with pytest.raises(NetsError, match="does not match"):
        load_imagenet(resnet(18), path)
    with pytest.raises(NetsError, match="not found"):
        load_imagenet(resnet(18), tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(NetsError, match="cannot read"):
        load_imagenet(resnet(18), garbage)
