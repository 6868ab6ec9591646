"""Raw maps on disk (depth as PNG millimetres and/or NPY metres, class probabilities) and in memory."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import stream
from stream.errors import DenseStreamError
from tests.test_end_to_end import assert_one_line_error, run_cli

SOURCE = "synth://pattern?frames=2&size=64x48"
CPU = {"device": "cpu", "precision": "fp32"}


def test_depth_npy_holds_metres_and_png_millimetres_of_the_same_map(tmp_path):
    result = run_cli("run", SOURCE, "--task", "seg+depth", "--raw", str(tmp_path), "--out", "null",
                     "--raw-format", "both", "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    pngs, npys = sorted(tmp_path.glob("*_depth.png")), sorted(tmp_path.glob("*_depth.npy"))
    assert len(pngs) == len(npys) == 2
    for png, npy in zip(pngs, npys):
        metres = np.load(npy)
        millimetres = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert metres.dtype == np.float32 and millimetres.dtype == np.uint16
        assert 0.5 < float(np.median(metres)) < 65.0  # metres, not millimetres
        np.testing.assert_array_equal(millimetres, np.clip(np.rint(metres.astype(np.float64) * 1000), 0, 65535))


def test_npy_only_leaves_out_the_png_depth(tmp_path):
    summary = stream.run(SOURCE, "depth", raw=str(tmp_path), raw_format="npy", **CPU)
    assert summary.exit_code == 0, summary.error
    assert len(list(tmp_path.glob("*_depth.npy"))) == 2 and not list(tmp_path.glob("*_depth.png"))


def test_raw_probs_are_class_probabilities_that_agree_with_the_labels(tmp_path):
    summary = stream.run(SOURCE, "seg", raw=str(tmp_path), raw_probs=True, **CPU)
    assert summary.exit_code == 0, summary.error
    for probs_path in sorted(tmp_path.glob("*_probs.npy")):
        probs = np.load(probs_path)
        labels = cv2.imread(str(probs_path).replace("_probs.npy", "_labels.png"), cv2.IMREAD_UNCHANGED)
        assert probs.dtype == np.float16 and probs.shape == (11, 48, 64)
        np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=0.02)
        assert (probs.argmax(0) == labels).mean() > 0.99


def test_api_yields_the_maps_asked_for_without_writing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = list(stream.build_pipeline(SOURCE, "seg+depth", outputs=("labels", "depth"), **CPU))
    assert len(results) == 2
    for result in results:
        assert set(result.outputs) == {"labels", "depth"}
        assert result.outputs["labels"].shape == (48, 64) and result.outputs["labels"].dtype == np.uint8
        assert result.outputs["depth"].dtype == np.float32 and np.isfinite(result.outputs["depth"]).all()
    assert list(tmp_path.iterdir()) == []


def test_api_yields_probabilities_and_refuses_what_a_task_cannot_give():
    result = next(iter(stream.build_pipeline(SOURCE, "seg", outputs=("probs",), **CPU)))
    assert result.outputs["probs"].shape == (11, 48, 64)
    with pytest.raises(DenseStreamError, match="segmenting tasks"):
        stream.build_pipeline(SOURCE, "denoise", outputs=("probs",), **CPU)
    with pytest.raises(DenseStreamError, match="unknown output 'logit'"):
        stream.build_pipeline(SOURCE, "seg", outputs=("logit",), **CPU)


def test_raw_probs_without_a_raw_folder_is_one_error_line():
    assert_one_line_error(run_cli("run", SOURCE, "--out", "null", "--raw-probs"), "--raw")
