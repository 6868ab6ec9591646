"""RefineNet and Light-Weight RefineNet: input-size outputs and the published LW-ResNet layout."""

import pytest
import torch
import torch.nn.functional as F

from nets.backbones import resnet
from nets.layers import LightCRP, max_pool5
from nets.multitask import joint_refinenet
from nets.refinenet import lw_refinenet_mobilenet, lw_refinenet_resnet, refinenet
from nets.zoo import import_checkpoint


def _decoder_table(num_classes: int, top_channels: int, level_channels: tuple[int, int, int]) -> dict:
    """Decoder keys and shapes of the published Light-Weight RefineNet (ResNet) checkpoints:
    1x1 convs without bias named after the authors' Caffe/MATLAB blobs, CRPs of four 1x1 convs."""
    table = {"p_ims1d2_outl1_dimred.weight": (512, top_channels, 1, 1)}
    for stage in range(1, 5):
        width = 512 if stage == 1 else 256
        for conv in range(1, 5):
            table[f"mflow_conv_g{stage}_pool.0.{conv}_outvar_dimred.weight"] = (width, width, 1, 1)
    for stage in range(1, 4):
        width = 512 if stage == 1 else 256
        table[f"mflow_conv_g{stage}_b3_joint_varout_dimred.weight"] = (256, width, 1, 1)
    for outl, adapt, channels in zip((2, 3, 4), (2, 3, 4), level_channels):
        table[f"p_ims1d2_outl{outl}_dimred.weight"] = (256, channels, 1, 1)
        table[f"adapt_stage{adapt}_b2_joint_varout_dimred.weight"] = (256, 256, 1, 1)
    table["clf_conv.weight"] = (num_classes, 256, 3, 3)
    table["clf_conv.bias"] = (num_classes,)
    return table


@pytest.mark.parametrize(
    "model",
    [
        lambda: refinenet(5, depth=18),
        lambda: lw_refinenet_resnet(5, depth=18),
        lambda: lw_refinenet_resnet(5, depth=18, pad_mode="zeros"),
        lambda: lw_refinenet_mobilenet(5, decoder_channels=32),
    ],
    ids=["refinenet-r18", "lw-r18", "lw-r18-zeros", "lw-mbv2"],
)
def test_logits_at_odd_input_size(model):
    torch.manual_seed(0)
    net = model().eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 59, 81))
    assert out.shape == (2, 5, 59, 81)
    assert torch.isfinite(out).all()


def test_lw_mobilenet_at_larger_odd_size():
    torch.manual_seed(0)
    net = lw_refinenet_mobilenet(11).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 359, 481))
    assert out.shape == (1, 11, 359, 481)


def test_padding_is_cropped_back_exactly():
    """With zero padding, an odd-size batch is padded to exactly the stride-aligned batch whose
    extra row/column is zero, so its logits must equal that batch's top-left crop."""
    torch.manual_seed(0)
    net = lw_refinenet_mobilenet(3, decoder_channels=16, pad_mode="zeros").eval()
    x = torch.randn(1, 3, 64, 96)
    x[..., 63:, :] = 0
    x[..., :, 95:] = 0
    with torch.no_grad():
        full = net(x)
        cut = net(x[..., :63, :95])
    assert cut.shape == (1, 3, 63, 95)
    torch.testing.assert_close(cut, full[..., :63, :95])


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    net = lw_refinenet_mobilenet(4, decoder_channels=32).eval()
    x = torch.randn(1, 3, 59, 81)
    with torch.no_grad():
        reference = net(x)
        fast = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)


def test_bad_input_and_arguments_raise():
    net = lw_refinenet_resnet(3, depth=18).eval()
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        net(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="floating-point"):
        net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="pad_mode"):
        lw_refinenet_resnet(3, depth=18, pad_mode="reflect")
    with pytest.raises(ValueError, match="num_classes"):
        lw_refinenet_mobilenet(0)


def test_lw_resnet50_loads_published_layout(tmp_path):
    """A random checkpoint in the published LW-ResNet-50 layout (torchvision encoder keys plus
    the decoder table above) imports strictly and computes what the source model computes."""
    torch.manual_seed(0)
    state = {k: v for k, v in resnet(50).state_dict().items() if not k.endswith("num_batches_tracked")}
    for key in state:
        if key.endswith(("running_mean", "bn1.bias", "bn2.bias", "bn3.bias")):
            state[key] = 0.1 * torch.randn_like(state[key])
    table = _decoder_table(21, 2048, (1024, 512, 256))
    state.update({k: 0.05 * torch.randn(shape) for k, shape in table.items()})
    source = lw_refinenet_resnet(21, depth=50)
    assert {k for k in source.state_dict() if not k.endswith("num_batches_tracked")} == set(state)
    source.load_state_dict(state, strict=False)
    path = tmp_path / "rf_lw50_voc.pth"
    torch.save(state, path)
    model, spec = import_checkpoint(path)
    assert spec.arch == "lwrefinenet-r50" and len(spec.classes) == 21
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        expected = source.eval()(x)
        torch.testing.assert_close(model(x), expected)
    assert expected.std() > 0


def test_lw_resnet_decoder_keys_for_small_encoders():
    names = set(lw_refinenet_resnet(7, depth=18).state_dict())
    table = _decoder_table(7, 512, (256, 128, 64))
    assert set(table) <= names
    shapes = lw_refinenet_resnet(7, depth=18).state_dict()
    assert all(tuple(shapes[k].shape) == v for k, v in table.items())


def test_light_crp_matches_its_definition():
    """Each stage: 5x5 max-pool (stride 1) of the running top, 1x1 conv, added to the sum."""
    torch.manual_seed(0)
    crp = LightCRP(8, stages=4)
    x = torch.randn(1, 8, 13, 17)
    expected, top = x, x
    for i in range(1, 5):
        top = F.conv2d(F.max_pool2d(top, 5, 1, 2), getattr(crp, f"{i}_outvar_dimred").weight)
        expected = expected + top
    with torch.no_grad():
        torch.testing.assert_close(crp(x), expected)
    assert torch.equal(max_pool5(x), F.max_pool2d(x, 5, 1, 2))


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 4, 2, 3), (1, 5, 7, 4), (1, 8, 13, 17)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool5_equals_the_pooling_kernel(shape, dtype, channels_last):
    torch.manual_seed(0)
    x = torch.randn(shape).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    pooled = max_pool5(x)
    assert pooled.dtype == dtype and torch.equal(pooled, F.max_pool2d(x, 5, 1, 2))


def test_max_pool5_trains_like_the_pooling_kernel():
    x = torch.randn(2, 3, 9, 11, requires_grad=True)
    reference = x.detach().clone().requires_grad_(True)
    max_pool5(x).square().sum().backward()
    F.max_pool2d(reference, 5, 1, 2).square().sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)


@pytest.mark.parametrize(
    "model",
    [
        lambda: refinenet(5, depth=18),
        lambda: lw_refinenet_resnet(5, depth=18),
        lambda: lw_refinenet_mobilenet(5, decoder_channels=32),
        lambda: joint_refinenet(5, decoder_channels=32),
    ],
    ids=["refinenet-r18", "lw-r18", "lw-mbv2", "joint-mbv2"],
)
def test_classifier_bias_shifts_every_class_score_exactly(model):
    """Training folds per-class offsets into ``classifier.bias``; that must move each class's
    score by the same amount at every output pixel, whatever the upsampling and cropping."""
    torch.manual_seed(0)
    net = model().eval()
    x = torch.randn(1, 3, 45, 61)
    offsets = torch.tensor([0.5, -1.0, 2.0, 0.0, -0.25])
    with torch.no_grad():
        before = net(x)
        net.classifier.bias += offsets
        after = net(x)
    if isinstance(before, tuple):
        (before, depth_before), (after, depth_after) = before, after
        assert torch.equal(depth_before, depth_after)
    assert net.classifier.out_channels == 5
    assert torch.allclose(after - before, offsets.view(1, 5, 1, 1).expand_as(before), atol=1e-5)
