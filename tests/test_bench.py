"""``densestream bench``: every row measured, JSON keys, ratios, soak memory, skipped peers."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stream import bench
from stream.bench_cli import bench as bench_command
from stream.errors import DenseStreamError
from stream.tasks import Task
from tests.fakes import ConvSegTask, LumaTask

SOURCE = "synth://pattern?frames=6&size=64x48"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIP = DATA / "video" / "solidWhiteRight.mp4"
MEASURED = ("decode", "model", "pipeline_null", "pipeline_mp4", "naive", "live")
ROW_KEYS = {"frames", "seconds", "fps", "fps_median", "ms_per_frame_median", "peak_rss_mb",
            "peak_device_mb"}


@pytest.fixture(scope="module")
def luma_result():
    return bench.measure(SOURCE, LumaTask(), frames=6, repeat=2, device="cpu", precision="fp32")


def test_every_row_is_measured_with_positive_rates(luma_result):
    rows = luma_result["rows"]
    for name in MEASURED:
        assert ROW_KEYS <= set(rows[name]), name
        assert len(rows[name]["fps"]) == 2 and all(fps > 0 for fps in rows[name]["fps"]), name
        assert rows[name]["peak_rss_mb"] > 0
    for name in ("decode", "model", "pipeline_null", "pipeline_mp4", "naive"):
        assert rows[name]["frames"] == [6, 6], name
    for name in ("pipeline_null", "pipeline_mp4", "live"):
        assert 0.0 < rows[name]["device_stage_share_median"] <= 1.0, name
    live = rows["live"]
    assert 0.0 <= live["drop_rate_median"] < 1.0 and live["latency_ms_p95_median"] > 0
    assert luma_result["meta"]["frames"] == 6 and luma_result["meta"]["resolution"] == [64, 48]
    assert luma_result["meta"]["input_reencoded"] is True


def test_medians_and_ratios_come_from_the_measured_numbers(luma_result):
    rows = luma_result["rows"]
    for name in MEASURED:
        row = rows[name]
        assert row["fps"] == pytest.approx([n / s for n, s in zip(row["frames"], row["seconds"])])
        assert row["fps_median"] == pytest.approx(float(np.median(row["fps"])))
        assert row["ms_per_frame_median"] == pytest.approx(1000.0 / row["fps_median"])
    ratios = luma_result["ratios"]
    assert ratios["pipeline_null_over_model"] == pytest.approx(
        rows["pipeline_null"]["fps_median"] / rows["model"]["fps_median"])
    assert ratios["pipeline_mp4_over_naive"] == pytest.approx(
        rows["pipeline_mp4"]["fps_median"] / rows["naive"]["fps_median"])


def test_ratios_with_known_numbers_and_missing_rows():
    rows = {"model": {"fps_median": 40.0}, "pipeline_null": {"fps_median": 30.0},
            "pipeline_mp4": {"fps_median": 24.0}, "naive": {"fps_median": 6.0}}
    assert bench.compute_ratios(rows) == {"pipeline_null_over_model": 0.75,
                                          "pipeline_mp4_over_naive": 4.0,
                                          "pipeline_null_over_naive": 5.0}
    del rows["naive"]
    assert bench.compute_ratios(rows)["pipeline_mp4_over_naive"] is None


def test_cli_seg_writes_json_with_the_documented_keys(tmp_path):
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(bench_command, [
        SOURCE, "--task", "seg", "--frames", "3", "--repeat", "1", "--device", "cpu",
        "--precision", "fp32", "--skip", "live", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert "| pipeline -> null sink |" in result.output and "ratios of median" in result.output
    data = json.loads(path.read_text())
    assert set(data) == {"meta", "rows", "ratios", "precision_check"}
    assert {"device", "device_name", "torch", "date", "precision", "task", "model", "resolution",
            "frames", "repeat", "batch"} <= set(data["meta"])
    assert data["meta"]["task"] == "seg" and data["meta"]["precision"] == "fp32"
    assert "live" not in data["rows"]
    for name in ("decode", "model", "pipeline_null", "pipeline_mp4", "naive"):
        assert ROW_KEYS <= set(data["rows"][name]) and data["rows"][name]["fps_median"] > 0
    assert set(data["ratios"]) == {"pipeline_null_over_model", "pipeline_mp4_over_naive",
                                   "pipeline_null_over_naive"}
    assert "skipped" in data["precision_check"]


def test_cli_rejects_bad_settings_in_one_line():
    runner = CliRunner()
    odd = runner.invoke(bench_command, [SOURCE, "--resolution", "65x48"])
    assert odd.exit_code == 1 and "even sizes" in odd.output
    skip = runner.invoke(bench_command, [SOURCE, "--skip", "teleport"])
    assert skip.exit_code != 0 and "teleport" in skip.output
    threads = runner.invoke(bench_command, [SOURCE, "--threads", "0"])
    assert threads.exit_code == 1 and "threads must be at least 1" in threads.output
    task = runner.invoke(bench_command, [SOURCE, "--task", "warp"])
    assert task.exit_code == 1 and "unknown task 'warp'" in task.output


def test_soak_records_rss_at_the_checkpoint_and_the_end():
    seen = []
    result = bench.soak(LumaTask(), frames=60, resolution=(32, 24), checkpoint=20, every=20,
                        device="cpu", precision="fp32", progress=lambda done, *_: seen.append(done))
    assert result["frames"] == 60 and seen == list(range(1, 61))
    assert result["rss_mb_at_checkpoint"] > 0 and result["rss_mb_at_end"] > 0
    assert set(result["rss_mb_samples"]) == {"20", "40", "60"}
    expected = (result["rss_mb_at_end"] - result["rss_mb_at_checkpoint"]) / result["rss_mb_at_checkpoint"]
    assert result["rss_growth"] == pytest.approx(expected)
    with pytest.raises(DenseStreamError, match="checkpoint"):
        bench.soak(LumaTask(), frames=10, checkpoint=10, device="cpu")


def test_supervision_row_is_skipped_when_the_package_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "supervision", None)
    result = bench.measure(SOURCE, LumaTask(), frames=2, repeat=1, device="cpu",
                           precision="fp32", rows=("model", "supervision"))
    assert "not installed" in result["rows"]["supervision"]["skipped"]
    assert set(result["rows"]) == {"model", "supervision"}
    assert "skipped: supervision is not installed" in bench.format_table(result)


def test_supervision_row_drives_the_same_model_when_installed():
    pytest.importorskip("supervision", reason="supervision is not installed (optional extra 'bench')")
    result = bench.measure(SOURCE, ConvSegTask(), frames=3, repeat=1, device="cpu",
                           precision="fp32", rows=("model", "supervision"))
    row = result["rows"]["supervision"]
    assert "skipped" not in row and row["frames"] == [3] and row["fps_median"] > 0


def test_argmax_disagreement_is_zero_for_fp32_and_counts_bf16_changes():
    torch.manual_seed(0)
    images = [np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8) for i in range(3)]
    task = ConvSegTask()
    assert bench.argmax_disagreement(task, images, "cpu", torch.float32) == 0.0
    changed = bench.argmax_disagreement(task, images, "cpu", torch.bfloat16, batch=2)
    assert 0.0 < changed < 0.5
    with pytest.raises(DenseStreamError, match="no labels"):
        bench.argmax_disagreement(NoLabels(), images, "cpu", torch.bfloat16)


class NoLabels(Task):
    name = "restore-only"
    outputs = ("restored",)


def test_naive_overlay_blends_the_palette_colour_half_and_half():
    bgr = np.zeros((4, 5, 3), np.uint8)
    palette = np.array([[0, 0, 0], [200, 100, 50]], np.uint8)
    labels = np.ones((4, 5), np.uint8)
    out = bench.naive_overlay(bgr, {"labels": labels}, palette, (1.0, 80.0))
    assert np.all(out == np.array([100, 50, 25], np.uint8))


def test_bench_refuses_tasks_without_labels_or_depth():
    with pytest.raises(DenseStreamError, match="labels or depth"):
        bench.measure(SOURCE, NoLabels(), frames=2, repeat=1, device="cpu")


@pytest.mark.skipif(not CLIP.is_file(), reason="shared data (solidWhiteRight.mp4) is absent")
def test_real_clip_is_reused_at_its_own_size_and_reencoded_when_resized(tmp_path):
    same = bench.prepare_input(str(CLIP), 2, None, tmp_path)
    assert same.clip == CLIP and not same.reencoded and same.images[0].shape == (540, 960, 3)
    small = bench.prepare_input(str(CLIP), 2, (96, 54), tmp_path)
    assert small.reencoded and small.count == 2 and small.images[1].shape == (54, 96, 3)
    assert bench.time_decode(small.clip, 5)[0] == 2
