"""Command-line habits: -V, --quiet, --json, and `densestream sources`."""
from __future__ import annotations

import dataclasses
import json

import cv2
from click.testing import CliRunner

from stream.cli import main
from stream.sources import cameras
from stream.stats import RunSummary
from tests.test_end_to_end import run_cli

SOURCE = "synth://pattern?frames=2&size=64x48"


def test_short_version_flag():
    result = run_cli("-V")
    assert result.returncode == 0 and result.stdout.startswith("densestream, version ")


def test_quiet_prints_nothing_and_json_holds_the_summary_keys(tmp_path):
    path = tmp_path / "summary.json"
    result = run_cli("run", SOURCE, "--task", "denoise", "--out", "null", "--device", "cpu", "--threads", "1",
                     "--quiet", "--json", str(path))
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    summary = json.loads(path.read_text())
    assert set(summary) == {f.name for f in dataclasses.fields(RunSummary)} | {"fps", "exit_code"}
    assert summary["frames_in"] == summary["frames_out"] == 2 and summary["exit_code"] == 0
    assert summary["error"] is None and summary["fps"] > 0


def test_json_to_stdout_and_an_unwritable_json_path(tmp_path):
    result = run_cli("run", SOURCE, "--task", "denoise", "--out", "null", "--device", "cpu", "--json", "-")
    assert result.returncode == 0 and json.loads(result.stdout)["frames_out"] == 2
    assert "frames: 2 written" in result.stderr
    bad = run_cli("run", SOURCE, "--task", "denoise", "--out", "null", "--json", str(tmp_path / "no" / "s.json"))
    assert bad.returncode == 1 and "error: cannot write the summary" in bad.stderr and "Traceback" not in bad.stderr


class FakeCapture:
    """A camera that opens at 640x480 30 fps and accepts 640x480 and 1280x720 only."""

    def __init__(self, source) -> None:
        self.opened = source == "/dev/video0"
        self.size = [640, 480]

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1], cv2.CAP_PROP_FPS: 30.0}[prop]

    def set(self, prop, value) -> None:
        if prop == cv2.CAP_PROP_FRAME_WIDTH and value <= 1280:
            self.size = [int(value), {640: 480, 1280: 720}[int(value)]]

    def release(self) -> None:
        pass


def test_sources_lists_each_camera_with_what_it_can_do(monkeypatch):
    monkeypatch.setattr(cameras.sys, "platform", "linux")
    monkeypatch.setattr(cameras, "camera_sources", lambda: ["/dev/video0", "/dev/video1"])
    monkeypatch.setattr(cameras.cv2, "VideoCapture", FakeCapture)
    result = CliRunner().invoke(main, ["sources"])
    assert result.exit_code == 0, result.output
    assert "/dev/video0: 640x480 at 30 fps by default; takes 640x480, 1280x720" in result.output
    assert "/dev/video1: does not open" in result.output
    assert "synth://drive" in result.output and "synth://pattern" in result.output


def test_sources_without_cameras_says_so(monkeypatch):
    monkeypatch.setattr("stream.sources_cli.list_cameras", lambda: [])
    result = CliRunner().invoke(main, ["sources"])
    assert result.exit_code == 0 and "cameras:\n  none found" in result.output
