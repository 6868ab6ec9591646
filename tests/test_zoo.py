"""Model registry: specs, building, shipped-weight loading and checkpoint import errors."""

import hashlib
import json

import pytest
import torch

from nets import zoo
from nets.backbones import resnet
from nets.errors import NetsError

SMALL = {"decoder_channels": 16}


def _ship(tmp_path, name: str, state: dict, sha: str | None = None) -> None:
    """Write ``state`` as fp16 weights plus a manifest entry for ``name`` into tmp_path."""
    path = tmp_path / f"{name}.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    digest = sha or hashlib.sha256(path.read_bytes()).hexdigest()
    entry = {"file": path.name, "sha256": digest, "metrics": {"miou": 0.5}}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {name: entry}}))


def test_registry_names_and_specs():
    names = zoo.available()
    for name in ("lwrefinenet-mbv2-camvid", "lwrefinenet-r50-camvid", "refinenet-r101-camvid",
                 "joint-mbv2-camvid", "joint-mbv2-kitti", "joint-mbv2-nyud"):
        assert name in names
    camvid = zoo.spec("joint-mbv2-camvid")
    assert camvid.task == "segment+depth" and len(camvid.classes) == 11 and camvid.classes[0] == "Sky"
    assert camvid.mean == (0.485, 0.456, 0.406) and camvid.std == (0.229, 0.224, 0.225)
    assert len(zoo.spec("joint-mbv2-nyud").classes) == 40
    assert len(zoo.spec("joint-mbv2-kitti").classes) == 6
    assert zoo.spec("lwrefinenet-r50-camvid").weights is None


def test_shipped_manifest_is_valid():
    manifest = json.loads((zoo.WEIGHTS_DIR / "manifest.json").read_text())
    assert isinstance(manifest["models"], dict)
    for name, entry in manifest["models"].items():
        assert name in zoo.available()
        assert (zoo.WEIGHTS_DIR / entry["file"]).is_file()


@pytest.mark.parametrize("name", sorted(json.loads((zoo.WEIGHTS_DIR / "manifest.json").read_text())["models"]))
def test_every_shipped_weight_loads_with_its_provenance(name):
    """Each shipped file matches its sha256, is fp16 on disk, loads strictly into its registered
    layout, and its manifest entry says how it was trained and how fast it runs on the CPU."""
    entry = zoo.spec(name)
    manifest = json.loads((zoo.WEIGHTS_DIR / "manifest.json").read_text())["models"][name]
    on_disk = torch.load(zoo.WEIGHTS_DIR / entry.weights, map_location="cpu", weights_only=True)
    assert {t.dtype for t in on_disk.values() if t.is_floating_point()} == {torch.float16}
    model, _ = zoo.load(name)
    assert not model.training
    assert manifest["precision"] == "fp16" and manifest["command"].startswith("python -m nets.train train ")
    assert manifest["fps_cpu_480x360"] > 0 and manifest["metrics"] and manifest["recipe"] and manifest["data"]


def test_build_with_overrides_runs():
    torch.manual_seed(0)
    model = zoo.build("lwrefinenet-mbv2-camvid", **SMALL).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 47)).shape == (1, 11, 33, 47)


def test_unknown_names_and_bad_overrides_raise():
    with pytest.raises(NetsError, match="unknown model"):
        zoo.spec("no-such-model")
    with pytest.raises(NetsError, match="cannot build"):
        zoo.build("lwrefinenet-mbv2-camvid", no_such_argument=1)
    with pytest.raises(NetsError, match="no shipped weights"):
        zoo.load("joint-mbv2-kitti")


def test_load_shipped_fp16_weights_as_fp32(tmp_path):
    torch.manual_seed(0)
    name = "lwrefinenet-mbv2-camvid"
    source = zoo.build(name).eval()
    _ship(tmp_path, name, source.state_dict())
    model, spec = zoo.load(name, weights_dir=tmp_path)
    assert spec.metrics == {"miou": 0.5} and spec.weights == f"{name}.pt"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not model.training
    expected = source.half().float()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected(x))


def test_load_errors_raise_nets_error(tmp_path):
    name = "lwrefinenet-mbv2-camvid"
    state = zoo.build(name).state_dict()
    _ship(tmp_path, name, state, sha="0" * 64)
    with pytest.raises(NetsError, match="checksum"):
        zoo.load(name, weights_dir=tmp_path)

    (tmp_path / f"{name}.pt").unlink()
    with pytest.raises(NetsError, match="not found"):
        zoo.load(name, weights_dir=tmp_path)

    garbage = tmp_path / f"{name}.pt"
    garbage.write_bytes(b"\x00garbage bytes, not a checkpoint" * 10)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {name: {
        "file": garbage.name, "sha256": hashlib.sha256(garbage.read_bytes()).hexdigest()}}}))
    with pytest.raises(NetsError, match="cannot read"):
        zoo.load(name, weights_dir=tmp_path)

    _ship(tmp_path, name, state)
    data = garbage.read_bytes()
    garbage.write_bytes(data[: len(data) // 2])
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {name: {
        "file": garbage.name, "sha256": hashlib.sha256(garbage.read_bytes()).hexdigest()}}}))
    with pytest.raises(NetsError, match="cannot read"):
        zoo.load(name, weights_dir=tmp_path)

    _ship(tmp_path, name, zoo.build("joint-mbv2-camvid", **SMALL).state_dict())
    with pytest.raises(NetsError, match="does not fit"):
        zoo.load(name, weights_dir=tmp_path)

    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(NetsError, match="manifest"):
        zoo.load(name, weights_dir=tmp_path)


def test_import_checkpoint_errors(tmp_path):
    with pytest.raises(NetsError, match="not found"):
        zoo.import_checkpoint(tmp_path / "absent.ckpt")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(NetsError, match="cannot read"):
        zoo.import_checkpoint(garbage)
    unknown = tmp_path / "unknown.ckpt"
    torch.save({"state_dict": {"some.weight": torch.zeros(2, 2)}}, unknown)
    with pytest.raises(NetsError, match="none of the known layouts"):
        zoo.import_checkpoint(unknown)
    with pytest.raises(NetsError, match="unknown checkpoint layout"):
        zoo.import_checkpoint(unknown, arch="vgg16")
    lw18 = tmp_path / "lw18.ckpt"
    torch.save(zoo.build("lwrefinenet-r18-camvid").state_dict(), lw18)
    with pytest.raises(NetsError, match="does not fit"):
        zoo.import_checkpoint(lw18, arch="lwrefinenet-r34")
    with pytest.raises(NetsError, match="not a joint-mbv2 checkpoint"):
        zoo.import_checkpoint(lw18, arch="joint-mbv2")


def test_import_detects_torchvision_resnet_and_lw_layouts(tmp_path):
    torch.manual_seed(0)
    source = resnet(18, num_classes=1000).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model, spec = zoo.import_checkpoint(path)
    assert spec.arch == "resnet18" and spec.task == "classify"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.classify(x), source.classify(x))

    lw = zoo.build("lwrefinenet-mbv2-camvid", **SMALL)
    path = tmp_path / "lw_mbv2.ckpt"
    torch.save({"model": lw.state_dict()}, path)
    model, spec = zoo.import_checkpoint(path)
    assert spec.name == "lwrefinenet-mbv2-camvid" and spec.kwargs == SMALL
    with torch.no_grad():
        torch.testing.assert_close(model(x), lw.eval()(x))
