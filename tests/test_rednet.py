"""RED-Net: output sizes per mode, skip structure, global residual, self-ensemble and deepening."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nets.rednet import RedNet, deepened, self_ensemble


class CountAdds(TorchDispatchMode):
    """Counts tensor-tensor additions dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.adds = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor):
            self.adds += 1
        return func(*args, **(kwargs or {}))


def reference_forward(net: RedNet, x: torch.Tensor) -> torch.Tensor:
    """The paper's rule in levels: encoder conv j (1-based) reaches level j, decoder layer j
    returns to level half - j; even interior levels are joined by a skip."""
    half = net.depth // 2
    saved = {}
    h = x
    for j, conv in enumerate(net.encoder, start=1):
        h = F.relu(F.conv2d(h, conv.weight, conv.bias, padding=1))
        saved[j] = h
    for j, deconv in enumerate(net.decoder, start=1):
        h = F.conv_transpose2d(h, deconv.weight, deconv.bias, padding=1)
        level = half - j
        if level > 0 and level % 2 == 0:
            h = h + saved[level]
        if j < half:
            h = F.relu(h)
    return x + h


@pytest.mark.parametrize("mode", ["denoise", "jpeg", "deblur"])
def test_same_size_modes_keep_odd_sizes(mode):
    torch.manual_seed(0)
    net = RedNet(depth=10, width=8, mode=mode).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_super_resolution_upsamples_by_scale(scale):
    torch.manual_seed(0)
    net = RedNet(depth=10, width=8, mode="sr", scale=scale).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 3, 37 * scale, 53 * scale)


def test_super_resolution_with_zero_decoder_is_bicubic_upsampling():
    torch.manual_seed(0)
    net = RedNet(depth=10, width=8, mode="sr", scale=3).eval()
    for p in net.decoder.parameters():
        nn.init.zeros_(p)
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        y = net(x)
    assert torch.equal(y, F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False))


@pytest.mark.parametrize("depth", [10, 20, 30])
def test_zero_decoder_leaves_identity(depth):
    torch.manual_seed(0)
    net = RedNet(depth=depth, width=4).eval()
    for p in net.decoder.parameters():
        nn.init.zeros_(p)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(net(x), x)


@pytest.mark.parametrize(("depth", "skips"), [(10, 2), (20, 4), (30, 7)])
def test_skip_additions_counted(depth, skips):
    torch.manual_seed(0)
    net = RedNet(depth=depth, width=4).eval()
    counter = CountAdds()
    with torch.no_grad(), counter:
        net(torch.rand(1, 3, 8, 8))
    assert counter.adds == skips + 1


@pytest.mark.parametrize("depth", [10, 20, 30])
def test_matches_level_based_reference(depth):
    torch.manual_seed(depth)
    net = RedNet(depth=depth, width=6).eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference_forward(net, x))


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    net = RedNet(depth=10, width=8).eval()
    x = torch.rand(1, 3, 21, 17)
    with torch.no_grad():
        expected = net(x)
        net = net.to(memory_format=torch.channels_last)
        got = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected)


def test_single_channel_input():
    net = RedNet(depth=4, width=4, in_channels=1).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 5, 6)).shape == (1, 1, 5, 6)


def test_self_ensemble_of_equivariant_model_is_plain_output():
    torch.manual_seed(0)
    pointwise = nn.Sequential(nn.Conv2d(3, 5, 1), nn.ReLU(), nn.Conv2d(5, 3, 1)).eval()
    x = torch.rand(2, 3, 7, 11)
    with torch.no_grad():
        torch.testing.assert_close(self_ensemble(pointwise, x), pointwise(x))


def test_self_ensemble_is_manual_eight_way_average():
    torch.manual_seed(0)
    net = RedNet(depth=4, width=4, mode="sr", scale=2).eval()
    x = torch.rand(1, 3, 5, 9)
    with torch.no_grad():
        outputs = [
            net(x),
            net(x.flip(-1)).flip(-1),
            net(x.flip(-2)).flip(-2),
            net(x.flip(-1, -2)).flip(-1, -2),
            net(x.transpose(-1, -2)).transpose(-1, -2),
            net(x.transpose(-1, -2).flip(-1)).flip(-1).transpose(-1, -2),
            net(x.transpose(-1, -2).flip(-2)).flip(-2).transpose(-1, -2),
            net(x.transpose(-1, -2).flip(-1, -2)).flip(-1, -2).transpose(-1, -2),
        ]
        expected = torch.stack(outputs).mean(0)
        got = self_ensemble(net, x)
    assert got.shape == (1, 3, 10, 18)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, outputs[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 9}, "even"),
        ({"depth": 2}, "even"),
        ({"mode": "inpaint"}, "mode"),
        ({"mode": "sr", "scale": 5}, "scale"),
        ({"mode": "denoise", "scale": 2}, "scale"),
        ({"width": 0}, "positive"),
    ],
)
def test_bad_configuration_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RedNet(**kwargs)


@pytest.mark.parametrize(
    "x", [torch.rand(3, 8, 8), torch.rand(1, 4, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)]
)
def test_bad_input_raises(x):
    with pytest.raises(ValueError, match="RED-Net expects"):
        RedNet(depth=4, width=4)(x)


def _scrambled(net: RedNet) -> RedNet:
    """``net`` with every weight and bias random (a fresh net's last layers are far from zero)."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return net


@pytest.mark.parametrize("depth, deeper, mode, scale", [(10, 20, "jpeg", 1), (10, 14, "sr", 2), (4, 6, "denoise", 1),
                                                       (8, 10, "deblur", 1), (6, 12, "sr", 4)])
def test_deepened_net_computes_the_same_output(depth, deeper, mode, scale):
    shallow = _scrambled(RedNet(depth, 6, mode, scale))
    deep = deepened(shallow, deeper)
    assert (deep.depth, deep.mode, deep.scale, len(deep.encoder)) == (deeper, mode, scale, deeper // 2)
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        torch.testing.assert_close(deep(x), shallow(x), rtol=0, atol=1e-6)


def test_deepened_net_keeps_the_outer_layers_and_learns_in_the_new_ones():
    shallow = _scrambled(RedNet(6, 4, "jpeg"))
    deep = deepened(shallow, 10)
    assert torch.equal(deep.encoder[0].weight, shallow.encoder[0].weight)
    assert torch.equal(deep.decoder[-1].weight, shallow.decoder[-1].weight)
    optimiser = torch.optim.SGD(deep.parameters(), lr=0.1)
    x = torch.rand(1, 3, 12, 12)
    for _ in range(2):  # a layer behind a zeroed one gets its first gradient on the second step
        optimiser.zero_grad()
        deep(x).square().mean().backward()
        optimiser.step()
    assert all(layer.weight.grad.abs().sum() > 0 for layer in (*deep.encoder[3:], *deep.decoder[:2]))


@pytest.mark.parametrize("deeper", [10, 8, 13])
def test_deepening_to_no_more_or_an_odd_depth_raises(deeper):
    with pytest.raises(ValueError, match="even depth above 10"):
        deepened(RedNet(10, 4, "jpeg"), deeper)
