"""Checkpoints as their publishers' code saves them: the PyTorch SiamFC AlexNet state dict and
the Light-Weight RefineNet train script's ``{"segmenter", "epoch_start", "best_val"}`` file."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nets import zoo
from nets.checkpoints import read_state_dict
from nets.errors import NetsError
from nets.refinenet import lw_refinenet_mobilenet, lw_refinenet_resnet
from nets.siamese import SiamFCNet
from stream.tasks import build_task
from tests.media import make_video
from tests.test_end_to_end import assert_one_line_error, run_cli

# huanglianghua/siamfc-pytorch AlexNetV1, written out from its definition:
# (layer, out channels, in channels per group, kernel, stride, groups, has BN + ReLU, max-pool).
SIAMFC_CONVS = ((1, 96, 3, 11, 2, 1, True, True), (2, 256, 48, 5, 1, 2, True, True),
                (3, 384, 256, 3, 1, 1, True, False), (4, 384, 192, 3, 1, 2, True, False),
                (5, 256, 192, 3, 1, 2, False, False))
SIAMFC_BN_EPS = 1e-6
SIAMFC_OUT_SCALE = 0.001


def published_siamfc_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under exactly the published keys and shapes. BN variances are near the BN
    epsilon (and the gammas small to keep activations in range), so a wrong epsilon shows."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    state = {}
    for layer, cout, cin, kernel, _, _, bn, _ in SIAMFC_CONVS:
        conv, norm = f"backbone.conv{layer}.0", f"backbone.conv{layer}.1"
        state[f"{conv}.weight"] = randn(cout, cin, kernel, kernel) * (2.0 / (cin * kernel * kernel)) ** 0.5
        state[f"{conv}.bias"] = 0.1 * randn(cout)
        if bn:
            state[f"{norm}.weight"] = 1e-3 * (1 + 0.2 * randn(cout))
            state[f"{norm}.bias"] = 0.1 * randn(cout)
            state[f"{norm}.running_mean"] = 0.1 * randn(cout)
            state[f"{norm}.running_var"] = 1e-6 * (0.5 + 1.5 * torch.rand(cout, generator=generator))
            state[f"{norm}.num_batches_tracked"] = torch.tensor(1000)
    return state


def reference_response(state: dict[str, torch.Tensor], z: torch.Tensor, x: torch.Tensor,
                       eps: float = SIAMFC_BN_EPS) -> torch.Tensor:
    """The published network in plain functional ops: embed both, correlate each search image
    with the exemplar, scale by out_scale."""

    def embed(image: torch.Tensor) -> torch.Tensor:
        for layer, _, _, _, stride, groups, bn, pool in SIAMFC_CONVS:
            conv, norm = f"backbone.conv{layer}.0", f"backbone.conv{layer}.1"
            image = F.conv2d(image, state[f"{conv}.weight"], state[f"{conv}.bias"], stride=stride, groups=groups)
            if bn:
                image = F.batch_norm(image, state[f"{norm}.running_mean"], state[f"{norm}.running_var"],
                                     state[f"{norm}.weight"], state[f"{norm}.bias"], training=False, eps=eps)
                image = F.relu(image)
            if pool:
                image = F.max_pool2d(image, 3, 2)
        return image

    kernel, search = embed(z), embed(x)
    return torch.cat([F.conv2d(search[i:i + 1], kernel) for i in range(search.shape[0])]) * SIAMFC_OUT_SCALE


@pytest.fixture(scope="module")
def siamfc_checkpoint(tmp_path_factory):
    state = published_siamfc_state()
    path = tmp_path_factory.mktemp("siamfc") / "siamfc_alexnet_e50.pth"
    torch.save(state, path)
    return path, state


def test_siamfc_checkpoint_imports_and_computes_the_published_response(siamfc_checkpoint):
    path, state = siamfc_checkpoint
    model, spec = zoo.import_checkpoint(path)
    assert isinstance(model, SiamFCNet) and not model.training
    assert (spec.arch, spec.task, spec.classes) == ("siamfc-alexnet", "track", ())
    assert spec.tracker == {"centre_exemplar": False}
    generator = torch.Generator().manual_seed(1)
    z = 255 * torch.rand(1, 3, 127, 127, generator=generator)
    x = 255 * torch.rand(2, 3, 255, 255, generator=generator)
    with torch.no_grad():
        ours = model(z, x)
        expected = reference_response(state, z, x)
        wrong_eps = reference_response(state, z, x, eps=1e-5)
    assert ours.shape == expected.shape == (2, 1, 17, 17)
    scale = expected.abs().max().item()
    assert expected.std() > 1e-3 * scale
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4 * scale)
    assert not torch.allclose(wrong_eps, expected, rtol=1e-2, atol=1e-2 * scale)


def test_siamfc_checkpoint_is_named_by_arch_and_zoo_tracker_keeps_its_own_head(siamfc_checkpoint):
    path, _ = siamfc_checkpoint
    assert zoo.import_checkpoint(path, arch="siamfc-alexnet")[1].tracker == {"centre_exemplar": False}
    published = build_task("track", model=str(path), init_box=(4, 4, 20, 16))
    published.prepare(torch.device("cpu"))
    assert published.tracker.params.centre_exemplar is False
    shipped = build_task("track", init_box=(4, 4, 20, 16))
    shipped.prepare(torch.device("cpu"))
    assert shipped.tracker.params.centre_exemplar is True


def test_siamfc_layout_refuses_a_segmentation_checkpoint(tmp_path):
    path = tmp_path / "lw.pth"
    torch.save(lw_refinenet_mobilenet(3, decoder_channels=16).state_dict(), path)
    with pytest.raises(NetsError, match="does not fit SiamFCNet"):
        zoo.import_checkpoint(path, arch="siamfc-alexnet")


def test_cli_tracks_with_the_published_siamfc_checkpoint(siamfc_checkpoint, tmp_path):
    path, _ = siamfc_checkpoint
    clip = make_video(tmp_path / "clip.mp4", frames=4, size=(96, 72))
    raw = tmp_path / "raw"
    result = run_cli("run", str(clip.path), "--task", "track", "--model", str(path), "--init-box", "30,20,24,20",
                     "--out", "null", "--raw", str(raw), "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    with open(raw / "tracks.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert [float(v) for v in list(rows[0].values())[1:5]] == [30, 20, 24, 20]


def _no_numpy_globals_left() -> bool:
    """True when no NumPy global stays allowed for ``weights_only`` loads after ours."""
    return not any("numpy" in repr(entry) for entry in torch.serialization.get_safe_globals())


def _train_script_file(path, state: dict[str, torch.Tensor], wrapper: str = "segmenter", **extra) -> None:
    """torch.save of what DrSleep's light-weight-refinenet train script saves: the DataParallel
    state dict, the epoch and the best validation mIoU (a NumPy float64, from np.mean)."""
    torch.save({wrapper: {f"module.{k}": v for k, v in state.items()}, "epoch_start": 42,
                "best_val": np.mean(np.array([0.61, 0.64])), **extra}, path)


@pytest.mark.parametrize("layout", ["lwrefinenet-mbv2", "lwrefinenet-r18"])
def test_lw_refinenet_train_script_checkpoint_imports(tmp_path, layout):
    torch.manual_seed(0)
    source = lw_refinenet_mobilenet(21) if layout == "lwrefinenet-mbv2" else lw_refinenet_resnet(21, depth=18)
    path = tmp_path / "checkpoint.pth.tar"
    _train_script_file(path, source.state_dict())
    model, spec = zoo.import_checkpoint(path)
    assert spec.arch == layout and len(spec.classes) == 21
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        expected = source.eval()(x)
        torch.testing.assert_close(model(x), expected)
    assert expected.std() > 0
    assert _no_numpy_globals_left()


def test_numpy_scalars_load_under_the_numpy_1_pickle_name_and_a_state_dict_wrapper(tmp_path):
    """A file written under NumPy 1 names the scalar reconstructor numpy.core.multiarray.scalar;
    legacy-format bytes are rewritten to that name (the storage bytes come after the pickle)."""
    state = {"conv.weight": torch.arange(6.0).view(2, 3)}
    path = tmp_path / "old.pth"
    torch.save({"state_dict": state, "epoch": 3, "best_val": np.float64(0.5), "lr": np.float32(1e-4)}, path,
               _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar"))
    loaded = read_state_dict(path)
    assert list(loaded) == ["conv.weight"] and torch.equal(loaded["conv.weight"], state["conv.weight"])


PLANTED: list[str] = []


def _plant(word: str) -> str:
    PLANTED.append(word)
    return word


class Planted:
    """An arbitrary object: unpickling it would call ``_plant``."""

    def __reduce__(self):
        return _plant, ("unpickled",)


@pytest.mark.parametrize("extra", [Planted(), np.array([0.61, 0.64])], ids=["custom-object", "numpy-array"])
def test_checkpoint_with_other_objects_is_still_refused(tmp_path, extra):
    path = tmp_path / "checkpoint.pth.tar"
    _train_script_file(path, lw_refinenet_mobilenet(3, decoder_channels=16).state_dict(), extra=extra)
    PLANTED.clear()
    with pytest.raises(NetsError, match="cannot read checkpoint") as caught:
        zoo.import_checkpoint(path)
    assert "\n" not in str(caught.value)
    assert PLANTED == [] and _no_numpy_globals_left()


def test_cli_refuses_a_checkpoint_holding_a_custom_object(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    _train_script_file(path, lw_refinenet_mobilenet(3, decoder_channels=16).state_dict(), extra=Planted())
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    result = run_cli("run", str(clip.path), "--task", "seg", "--model", str(path), "--out", "null",
                     "--device", "cpu", "--threads", "1")
    assert_one_line_error(result, "cannot read checkpoint", "checkpoint.pth.tar")
