"""SiamFC: embedding shapes, checkpoint key layout, batched correlation and the tracker."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nets.siamese import SiamFCNet, SiamFCTracker, xcorr

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
CONVS = {  # name: (out, in per group, kernel)
    "conv1": (96, 3, 11),
    "conv2": (256, 48, 5),
    "conv3": (384, 256, 3),
    "conv4": (384, 192, 3),
    "conv5": (256, 192, 3),
}


def public_key_table() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the common public PyTorch SiamFC checkpoint (AlexNetV1 backbone)."""
    table = {}
    for name, (cout, cin, k) in CONVS.items():
        table[f"backbone.{name}.0.weight"] = (cout, cin, k, k)
        table[f"backbone.{name}.0.bias"] = (cout,)
        if name != "conv5":
            for field in BN:
                table[f"backbone.{name}.1.{field}"] = () if field == "num_batches_tracked" else (cout,)
    return table


def random_checkpoint() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in public_key_table().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state


def test_embedding_and_response_shapes():
    torch.manual_seed(0)
    net = SiamFCNet().eval()
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        assert net.backbone(z).shape == (2, 256, 6, 6)
        assert net.backbone(x).shape == (2, 256, 22, 22)
        assert net(z, x).shape == (2, 1, 17, 17)


def test_layer_spec():
    net = SiamFCNet()
    groups = {name: getattr(net.backbone, name)[0].groups for name in CONVS}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    assert all(getattr(net.backbone, name)[0].bias is not None for name in CONVS)
    assert all(getattr(net.backbone, name)[1].eps == 1e-6 for name in CONVS if name != "conv5")


def test_public_key_layout_loads_strictly():
    state = random_checkpoint()
    net = SiamFCNet()
    net.load_state_dict(state, strict=True)
    assert set(net.state_dict()) == set(state)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_head_is_scaled_correlation_of_embeddings():
    torch.manual_seed(0)
    net = SiamFCNet(out_scale=0.001)
    net.backbone = torch.nn.Identity()
    z = torch.randn(1, 4, 3, 3)
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(net(z, x), F.conv2d(x, z) * 0.001)


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_other_layouts_do_not_load(change):
    state = random_checkpoint()
    if change == "missing":
        del state["backbone.conv3.1.running_mean"]
    elif change == "unexpected":
        state["head.bias"] = torch.zeros(1)
    else:
        state["backbone.conv2.0.weight"] = torch.zeros(256, 96, 5, 5)
    with pytest.raises(RuntimeError):
        SiamFCNet().load_state_dict(state, strict=True)


def test_batched_xcorr_equals_loop():
    torch.manual_seed(0)
    z = torch.randn(4, 8, 3, 5)
    x = torch.randn(4, 8, 11, 13)
    loop = torch.cat([F.conv2d(x[i : i + 1], z[i : i + 1]) for i in range(4)])
    got = xcorr(z, x)
    assert got.shape == (4, 1, 9, 9)
    torch.testing.assert_close(got, loop)


def test_xcorr_broadcasts_one_exemplar():
    torch.manual_seed(0)
    z = torch.randn(1, 8, 3, 3)
    x = torch.randn(3, 8, 9, 9)
    torch.testing.assert_close(xcorr(z, x), F.conv2d(x, z))


@pytest.mark.parametrize(
    ("z", "x"),
    [
        (torch.zeros(2, 8, 3, 3), torch.zeros(3, 8, 9, 9)),
        (torch.zeros(1, 4, 3, 3), torch.zeros(1, 8, 9, 9)),
        (torch.zeros(1, 8, 10, 3), torch.zeros(1, 8, 9, 9)),
    ],
)
def test_xcorr_rejects_mismatched_shapes(z, x):
    with pytest.raises(ValueError, match="xcorr"):
        xcorr(z, x)


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


class MovingSquare:
    """A 24 px textured square crossing a fixed 160x120 noise background at 2 px per frame."""

    side = 24

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.background = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        self.texture = rng.integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)

    def box(self, k: int) -> tuple[int, int, int, int]:
        return 20 + 2 * k, 40 + k, self.side, self.side

    def frame(self, k: int, present: bool = True) -> np.ndarray:
        image = self.background.copy()
        if present:
            x, y, w, h = self.box(k)
            image[y : y + h, x : x + w] = self.texture
        return image


FRAMES = 12


@pytest.fixture(scope="module")
def tracked():
    """Track the square for FRAMES frames, then with the square removed, then put back."""
    scene = MovingSquare()
    torch.manual_seed(0)
    tracker = SiamFCTracker(SiamFCNet())
    tracker.init(scene.frame(0), scene.box(0))
    visible = []
    for k in range(1, FRAMES):
        image = scene.frame(k)
        frame = torch.from_numpy(image).permute(2, 0, 1) if k % 2 else image
        visible.append(tracker.update(frame))
    vanished = [tracker.update(scene.frame(FRAMES - 1, present=False)) for _ in range(2)]
    returned = tracker.update(scene.frame(FRAMES - 1))
    return scene, visible, vanished, returned


def test_tracker_follows_moving_square(tracked):
    scene, visible, _, _ = tracked
    ious = [iou(r.box, scene.box(k)) for k, r in enumerate(visible, start=1)]
    assert np.mean(ious) > 0.7
    assert not any(r.lost for r in visible)


def test_tracker_reports_lost_and_keeps_box(tracked):
    _, visible, vanished, _ = tracked
    assert all(r.lost for r in vanished)
    assert all(r.score < min(v.score for v in visible) for r in vanished)
    assert all(r.box == pytest.approx(visible[-1].box) for r in vanished)


def test_tracker_resumes_when_target_returns(tracked):
    scene, _, _, returned = tracked
    assert not returned.lost
    assert iou(returned.box, scene.box(FRAMES - 1)) > 0.7


def test_published_head_holds_a_still_target():
    scene = MovingSquare()
    torch.manual_seed(0)
    tracker = SiamFCTracker(SiamFCNet(), centre_exemplar=False, lost_threshold=-1.0)
    tracker.init(scene.frame(3), scene.box(3))
    result = tracker.update(scene.frame(3))
    assert not result.lost
    assert iou(result.box, scene.box(3)) > 0.8


def test_crops_are_exact_inside_and_mean_coloured_outside():
    tracker = SiamFCTracker(SiamFCNet())
    image = torch.rand(3, 20, 30) * 255
    tracker.mean_colour = image.mean(dim=(1, 2))
    tracker.center = torch.tensor([15.0, 10.0])
    inside = tracker._crops(image, torch.tensor([8.0]), 8)
    torch.testing.assert_close(inside[0], image[:, 6:14, 11:19], atol=1e-3, rtol=0)
    tracker.center = torch.tensor([2.0, 2.0])
    edge = tracker._crops(image, torch.tensor([8.0]), 8)
    torch.testing.assert_close(edge[0, :, :2, :2], tracker.mean_colour.view(3, 1, 1).expand(3, 2, 2))
    torch.testing.assert_close(edge[0, :, 2:, 2:], image[:, :6, :6], atol=1e-3, rtol=0)


def test_tracker_rejects_bad_use():
    tracker = SiamFCTracker(SiamFCNet())
    frame = np.zeros((40, 50, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="before init"):
        tracker.update(frame)
    with pytest.raises(ValueError, match="uint8"):
        tracker.init(frame.astype(np.float32), (1, 1, 5, 5))
    with pytest.raises(ValueError, match="uint8"):
        tracker.init(torch.zeros(40, 50, 3, dtype=torch.uint8), (1, 1, 5, 5))
    with pytest.raises(ValueError, match="positive"):
        tracker.init(frame, (1, 1, 0, 5))
    with pytest.raises(ValueError, match="outside"):
        tracker.init(frame, (60, 1, 5, 5))
    with pytest.raises(ValueError, match="unknown SiamFC tracker parameters"):
        SiamFCTracker(SiamFCNet(), scale_pennalty=0.9)
