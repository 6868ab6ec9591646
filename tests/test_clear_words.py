"""Clear words (issue 19): each failure the ``densestream`` command meets says what is wrong in
one ``error:`` line (or one ``warning:`` line), before the run where it can."""
from __future__ import annotations

import os
import re
import time
from fractions import Fraction
from pathlib import Path

import cv2
import pytest
import torch
from click.testing import CliRunner

import stream
from stream.cli import main
from stream.errors import DenseStreamError, SinkError, SourceError
from stream.sources import cameras, open_source
from tests.fakes import LumaTask
from tests.test_faults import run_cli
from stream.sources.files import damage_message
from tests.media import corrupt, free_port, make_video, start_stream_server

SOURCE = "synth://pattern?frames=3&size=64x48"


def cli(*args: str):
    """``densestream ARGS`` in-process; stderr apart from stdout."""
    return CliRunner().invoke(main, list(args))


def only_error(result) -> str:
    """The one stderr line of a failed command, which must be an ``error:`` line."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# -- 1. live streams that go quiet ------------------------------------------------------------------

def test_a_silent_udp_port_says_no_data_for_how_long():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        open_source(f"udp://127.0.0.1:{port}", open_timeout=0.5, read_timeout=0.5)
    assert str(raised.value) == f"no data from udp://127.0.0.1:{port} for 0.5 s"
    assert time.monotonic() - started < 3


def test_a_stream_that_stops_sending_says_no_data_for_how_long():
    port = free_port()
    server = start_stream_server(port, frames=6, linger=20)
    url = f"tcp://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                source = open_source(url, read_timeout=0.5, reconnect_attempts=0,
                                     av_options={"analyzeduration": "100000"})
                break
            except SourceError as error:
                if "refused" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with pytest.warns(UserWarning, match=f"no data from {url} for 0.5 s"):
            with pytest.raises(SourceError, match=f"last error: no data from {url} for 0.5 s$"):
                with source:
                    for _ in source:
                        pass
    finally:
        server.kill()
        server.join(5)


# -- 2. outputs under a file ------------------------------------------------------------------------

@pytest.mark.parametrize("option, under", [("--out", "x.mp4"), ("--out", "a/frames"), ("--raw", "maps"),
                                           ("--json", "summary.json")])
def test_an_output_under_a_file_says_its_parent_is_a_file(tmp_path, option, under):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("kept")
    args = ["--out", "null"] if option != "--out" else []
    result = cli("run", SOURCE, "--task", "denoise", "--device", "cpu", *args, option, str(blocker / under))
    assert only_error(result).endswith(f"{blocker / under}: its parent {blocker} is a file, not a folder")
    assert blocker.read_text() == "kept"


def test_a_raw_folder_that_is_a_file_says_so(tmp_path):
    blocker = tmp_path / "maps"
    blocker.write_text("kept")
    with pytest.raises(SinkError, match=f"output folder {blocker} is a file"):
        stream.run(SOURCE, LumaTask(), raw=str(blocker), device="cpu", overwrite=True)
    assert blocker.read_text() == "kept"


# -- 3. --init-box ----------------------------------------------------------------------------------

@pytest.mark.parametrize("box, words", [
    ("nan,0,10,10", "must hold finite numbers"), ("0,0,inf,10", "must hold finite numbers"),
    ("0,0,0,10", "needs a positive width and height"), ("0,0,10,-5", "needs a positive width and height"),
    ("100,10,10,10", "lies outside the 64x48 frame"), ("-30,-30,10,10", "lies outside the 64x48 frame"),
])
def test_a_bad_init_box_is_refused_before_an_existing_output_is_touched(tmp_path, box, words):
    out = tmp_path / "old.mp4"
    out.write_bytes(b"an earlier result")
    result = cli("run", SOURCE, "--task", "track", f"--init-box={box}", "--device", "cpu", "--out", str(out), "-y")
    assert words in only_error(result)
    assert out.read_bytes() == b"an earlier result" and [p.name for p in tmp_path.iterdir()] == ["old.mp4"]


def test_the_api_checks_a_box_given_as_numbers():
    with pytest.raises(DenseStreamError, match="must hold finite numbers"):
        stream.build_pipeline(SOURCE, "track", init_box=(float("nan"), 0, 10, 10), out="null", device="cpu")


# -- 4. options the task would ignore ---------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--task", "seg", "--init-box", "0,0,10,10"], "--init-box has no effect with --task seg:"),
    (["--task", "denoise", "--refine", "ccrf"], "--refine ccrf has no effect with --task denoise: it refines depth"),
    (["--task", "depth", "--refine", "spn"], "--refine spn has no effect with --task depth: it refines segmentation"),
    (["--task", "track", "--init-box", "0,0,10,10", "--refine", "crf"],
     "--refine crf has no effect with --task track: it refines segmentation"),
])
def test_an_option_without_effect_on_the_task_is_refused(tmp_path, args, words):
    out = tmp_path / "never.mp4"
    result = cli("run", SOURCE, *args, "--device", "cpu", "--out", str(out))
    assert words in only_error(result)
    assert not out.exists()


# -- 5. a missing camera ----------------------------------------------------------------------------

@pytest.mark.skipif(Path("/dev/video9").exists(), reason="this machine has a /dev/video9")
@pytest.mark.parametrize("spec", ["9", "/dev/video9"])
def test_a_missing_camera_prints_only_the_error_line(spec):
    result = run_cli("run", spec, "--out", "null")
    assert result.returncode == 1
    assert result.stderr == f"error: camera {spec}: cannot open camera (no such device, or it is busy)\n"


def test_quieting_opencv_restores_its_settings(monkeypatch):
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)
    monkeypatch.delenv(cameras.FFMPEG_LOG_VARIABLE, raising=False)
    level = cv2.utils.logging.getLogLevel()
    with cameras.quiet_opencv():
        assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT
        assert os.environ[cameras.FFMPEG_LOG_VARIABLE] == "-8"
    assert cv2.utils.logging.getLogLevel() == level and cameras.FFMPEG_LOG_VARIABLE not in os.environ


# -- 6. a damaged video file ------------------------------------------------------------------------

def test_a_corrupted_stretch_is_skipped_with_one_warning_line(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=40, size=(64, 48), options={"g": "8"})
    damaged = corrupt(clip.path, tmp_path / "damaged.mp4")
    result = cli("run", str(damaged), "--task", "denoise", "--device", "cpu", "--out", "null", "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    match = re.fullmatch(rf"warning: (\d+) packets of {re.escape(str(damaged))} could not be decoded and were "
                         r"skipped(; \d+ frames? had decoding errors, patched up by the decoder's error concealment)?",
                         lines[0])
    assert match, lines[0]
    with open_source(str(damaged)) as source:
        kept = sum(1 for _ in source)
    assert 0 < kept < 40 and kept + int(match[1]) >= 40 - 8  # at most one group of pictures lost besides


def test_the_damage_message_counts_skipped_packets_and_concealed_frames():
    assert damage_message("in.mp4", 0, 0) is None
    assert damage_message("in.mp4", 1, 0) == "1 packet of in.mp4 could not be decoded and was skipped"
    assert damage_message("in.mp4", 0, 3) == \
        "3 frames of in.mp4 had decoding errors, patched up by the decoder's error concealment"


# -- 7. checkpoints that are not ---------------------------------------------------------------------

def _pickled_object(path: Path) -> None:
    torch.save({"model": Fraction(1, 3)}, path)  # a Python object a weights-only load refuses


@pytest.mark.parametrize("write, words", [
    (lambda path: path.write_text("not a model\n"), "not a PyTorch checkpoint"),
    (lambda path: path.write_text("hello"), "not a PyTorch checkpoint"),
    (lambda path: path.write_bytes(b"PK\x03\x04" + bytes(60)), "not a PyTorch checkpoint"),
    (_pickled_object, "it holds a pickled Python object (fractions.Fraction) besides tensors"),
], ids=["text", "other-text", "broken-zip", "pickled-object"])
def test_a_checkpoint_that_cannot_be_read_says_why_without_unsafe_advice(tmp_path, write, words):
    path = tmp_path / "x.pt"
    write(path)
    line = only_error(cli("run", SOURCE, "--model", str(path), "--device", "cpu", "--out", "null"))
    assert line.startswith(f"error: cannot read checkpoint {path}: {words}")
    assert "weights_only" not in line and "trust" not in line


# -- 8. exit codes (130 is checked in tests/test_faults.py, where signals are sent) -----------------

@pytest.mark.parametrize("args, code", [
    (["run", SOURCE, "--task", "denoise", "--device", "cpu", "--out", "null", "-q"], 0),
    (["run", SOURCE, "--task", "denoise", "--device", "cpu"], 1),
    (["run", SOURCE, "--no-such-option"], 2),
    (["run", SOURCE, "--layout", "mosaic", "--out", "null"], 2),
    (["run"], 2),
], ids=["ok", "error", "unknown-option", "bad-choice", "missing-source"])
def test_exit_codes_are_those_the_readme_lists(args, code):
    result = cli(*args)
    assert result.exit_code == code, result.output
    if code == 1:
        assert only_error(result) == "error: nothing to write: give --out, --raw or --show"
    if code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(" run --help"), lines


def test_the_readme_lists_every_exit_code():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### Exit codes", 1)[1].split("###", 1)[0]
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()] == ["0", "1", "2", "130"]


def test_no_command_prints_the_help_not_an_error():
    result = cli()
    assert result.exit_code == 2 and result.output.startswith("Usage: ") and "error:" not in result.output
    assert "repair" in result.output and "run" in result.output
