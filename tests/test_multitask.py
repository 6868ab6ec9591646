"""Joint segmentation + depth model: outputs and the authors' ExpKITTI/ExpNYUD checkpoint layout."""

import pytest
import torch

from nets.multitask import joint_refinenet
from nets.zoo import import_checkpoint

# MobileNet-v2 stages as in the authors' encoder: expansion, channels, repeats, first stride.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var")


def _joint_table(num_classes: int) -> dict:
    """Key -> shape of the authors' joint checkpoints (multi-task-refinenet, 'hydranet'):
    stem ``layer1`` = conv-BN-ReLU6; ``layer2..8`` are inverted-residual blocks whose ``output``
    holds three conv-BN units (1x1 expand, 3x3 depthwise, 1x1 project; the expand conv exists even
    at expansion 1); decoder 1x1 convs ``conv3..8`` to 256, light CRPs ``crp1..4`` (crp1 depthwise),
    ``conv_adapt2..4``; per task a depthwise 1x1 ``pre_*`` and a 3x3 conv with bias."""
    table = {"layer1.0.weight": (32, 3, 3, 3)}
    table.update({f"layer1.1.{s}": (32,) for s in BN_SUFFIXES})
    channels = 32
    for layer, (t, c, n, _) in enumerate(STAGES, start=2):
        for i in range(n):
            hidden = channels * t
            prefix = f"layer{layer}.{i}.output"
            for unit, shape in enumerate(((hidden, channels, 1, 1), (hidden, 1, 3, 3), (c, hidden, 1, 1))):
                table[f"{prefix}.{unit}.0.weight"] = shape
                table.update({f"{prefix}.{unit}.1.{s}": (shape[0],) for s in BN_SUFFIXES})
            channels = c
    for index, c in zip(range(3, 9), (24, 32, 64, 96, 160, 320)):
        table[f"conv{index}.weight"] = (256, c, 1, 1)
    for crp in range(1, 5):
        for stage in range(1, 5):
            table[f"crp{crp}.0.{stage}_outvar_dimred.weight"] = (256, 1 if crp == 1 else 256, 1, 1)
    for adapt in (2, 3, 4):
        table[f"conv_adapt{adapt}.weight"] = (256, 256, 1, 1)
    table["pre_segm.weight"] = (256, 1, 1, 1)
    table["segm.weight"] = (num_classes, 256, 3, 3)
    table["segm.bias"] = (num_classes,)
    table["pre_depth.weight"] = (256, 1, 1, 1)
    table["depth.weight"] = (1, 256, 3, 3)
    table["depth.bias"] = (1,)
    return table


def _random_state(table: dict) -> dict:
    state = {}
    for key, shape in table.items():
        if key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape)
        elif key.endswith(("running_mean", ".bias")):
            state[key] = 0.1 * torch.randn(shape)
        elif ".1.weight" in key and len(shape) == 1:
            state[key] = 1.0 + 0.1 * torch.randn(shape)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape) * (1.0 / fan_in) ** 0.5
    return state


def test_outputs_at_odd_size_and_non_negative_depth():
    torch.manual_seed(0)
    net = joint_refinenet(6, decoder_channels=32).eval()
    with torch.no_grad():
        logits, depth = net(torch.randn(2, 3, 59, 81))
    assert logits.shape == (2, 6, 59, 81)
    assert depth.shape == (2, 1, 59, 81)
    assert (depth >= 0).all()


def test_training_mode_keeps_the_signed_depth():
    torch.manual_seed(0)
    net = joint_refinenet(3, decoder_channels=16)
    with torch.no_grad():
        net.depth.bias.fill_(-100.0)
    _, depth = net.train()(torch.randn(2, 3, 32, 32))
    assert (depth < 0).any()
    depth.sum().backward()
    assert net.depth.weight.grad is not None


@pytest.mark.parametrize("num_classes, expected_name, wrap", [
    (6, "joint-mbv2-kitti", lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}}),
    (40, "joint-mbv2-nyud", lambda s: {"state_dict": s, "epoch": 1}),
])
def test_authors_checkpoint_layout_loads_strictly(tmp_path, num_classes, expected_name, wrap):
    torch.manual_seed(0)
    table = _joint_table(num_classes)
    reference = joint_refinenet(num_classes)
    ours = {k: tuple(v.shape) for k, v in reference.state_dict().items()
            if not k.endswith("num_batches_tracked")}
    assert ours == table
    state = _random_state(table)
    reference.load_state_dict(state, strict=False)
    path = tmp_path / "Exp_joint.ckpt"
    torch.save(wrap(state), path)
    model, spec = import_checkpoint(path)
    assert spec.name == expected_name and spec.task == "segment+depth"
    x = torch.randn(1, 3, 45, 61)
    with torch.no_grad():
        logits, depth = model(x)
        expected_logits, expected_depth = reference.eval()(x)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(depth, expected_depth)
    assert logits.shape == (1, num_classes, 45, 61) and expected_logits.std() > 0
