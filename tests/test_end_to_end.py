"""Whole runs through the real sources, overlay and sinks: timing, audio, interruption, bad input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest
import torch

import stream
from stream.errors import SinkError
from tests.fakes import LumaTask
from tests.media import free_port, make_audio_only, make_video, truncate

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "video" / "solidWhiteRight.mp4"
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"real clip not found at {CLIP}")


def video_timestamps(path: Path) -> tuple[list[Fraction], bool]:
    """Presentation times of every decoded video frame, and whether an audio stream exists."""
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        times = [frame.pts * frame.time_base for frame in container.decode(video=0)]
    return times, has_audio


@needs_clip
def test_real_clip_keeps_every_frame_timestamp_and_audio(tmp_path):
    out = tmp_path / "overlay.mp4"
    summary = stream.run(str(CLIP), LumaTask(), out=str(out), device="cpu", batch=4)
    assert summary.exit_code == 0, summary.error
    assert summary.frames_in == summary.frames_out == 221
    source_times, _ = video_timestamps(CLIP)
    out_times, has_audio = video_timestamps(out)
    assert len(out_times) == 221
    assert out_times == source_times
    assert has_audio


def test_generated_vfr_clip_with_audio_round_trips(tmp_path):
    clip = make_video(tmp_path / "in.mkv", frames=12, size=(64, 48), vfr=True, audio=True)
    out = tmp_path / "out.mp4"
    summary = stream.run(str(clip.path), LumaTask(), out=str(out), device="cpu",
                         layout="side-by-side")
    assert summary.exit_code == 0, summary.error
    times, has_audio = video_timestamps(out)
    assert times == clip.seconds and has_audio
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].width == 3 * 64


INTERRUPT_SCRIPT = """
import sys, stream
from tests.fakes import LumaTask
def progress(done, total, fps):
    print(done, flush=True)
summary = stream.run(sys.argv[1], LumaTask(delay=0.03), out=sys.argv[2], device="cpu",
                     progress=progress)
sys.exit(summary.exit_code)
"""


def test_sigint_mid_run_leaves_a_playable_file_with_the_frames_so_far(tmp_path):
    clip = make_video(tmp_path / "long.mp4", frames=300, size=(96, 64), audio=True)
    out = tmp_path / "partial.mp4"
    child = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT, str(clip.path), str(out)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if int(line) >= 15:
            child.send_signal(signal.SIGINT)
            break
    rest, errors = child.communicate(timeout=60)
    assert child.returncode == 130, errors
    assert "Traceback" not in errors
    written = int(rest.split()[-1]) if rest.split() else 15
    times, has_audio = video_timestamps(out)
    assert 15 <= len(times) == written < 300
    assert times == clip.seconds[: len(times)]
    assert has_audio


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "DENSESTREAM_DEBUG": ""})


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def bad_inputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (source argument, a word the error line must contain)."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    good = make_video(tmp_path / "good.mp4", frames=30, size=(64, 48))
    cut = truncate(good.path, tmp_path / "cut.mp4", keep=0.5)
    audio = make_audio_only(tmp_path / "sound.m4a")
    port = free_port()
    return {
        "missing": (str(tmp_path / "nope.mp4"), "nope.mp4"),
        "empty": (str(empty), "empty.mp4"),
        "text": (str(text), "notes.mp4"),
        "truncated": (str(cut), "cut.mp4"),
        "audio-only": (str(audio), "sound.m4a"),
        "unreachable": (f"rtsp://127.0.0.1:{port}/cam", "127.0.0.1"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "audio-only",
                                  "unreachable"])
def test_bad_input_gives_one_error_line(tmp_path, case):
    source, fragment = bad_inputs(tmp_path)[case]
    out = tmp_path / "out.mp4"
    result = run_cli("run", source, "--task", "seg", "--out", str(out), "--device", "cpu")
    assert_one_line_error(result, fragment)


def test_unwritable_output_gives_one_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    clip = make_video(tmp_path / "in.mp4", frames=3)
    result = run_cli("run", str(clip.path), "--task", "seg", "--out", str(blocker / "out.mp4"))
    assert_one_line_error(result, "out.mp4")


def test_bad_thread_count_gives_one_error_line():
    result = run_cli("run", "synth://pattern?frames=2&size=32x32", "--out", "null", "--threads", "0")
    assert_one_line_error(result, "threads must be at least 1")


def test_build_pipeline_sets_the_cpu_threads(tmp_path):
    before = torch.get_num_threads()
    try:
        stream.build_pipeline("synth://pattern?frames=1&size=32x32", LumaTask(), out="null", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_unwritable_output_raises_before_any_frame_is_read(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    clip = make_video(tmp_path / "in.mp4", frames=3)
    with pytest.raises(SinkError):
        stream.build_pipeline(str(clip.path), LumaTask(), out=str(blocker / "out.mp4"))


def test_cli_runs_the_synthetic_default_to_an_image_folder_and_raw_maps(tmp_path):
    result = run_cli("run", "synth://pattern?frames=3&size=64x48", "--task", "seg+depth",
                     "--out", str(tmp_path / "frames"), "--raw", str(tmp_path / "raw"),
                     "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "frames: 3 written of 3 read" in result.stderr
    assert len(list((tmp_path / "frames").glob("*.png"))) == 3
    assert len(list((tmp_path / "raw").glob("*_labels.png"))) == 3
    assert len(list((tmp_path / "raw").glob("*_depth.png"))) == 3
