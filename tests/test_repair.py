"""``densestream repair``: a cut-off fragmented recording becomes a playable, seekable copy."""
from __future__ import annotations

import struct
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.sinks.fragments import recording_options
from tests.media import make_video

FRAMES = 20


def _boxes(path: Path) -> list[tuple[bytes, int]]:
    """Top-level MP4 boxes as (kind, offset)."""
    data, boxes, position = path.read_bytes(), [], 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        boxes.append((kind, position))
        if length < 8:
            break
        position += length
    return boxes


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture
def cut_recording(tmp_path) -> Path:
    """A recording as the sinks write it (x264 zero-latency, a fragment per frame), cut 6 bytes
    into the header of its last fragment, as a power cut can leave it."""
    path = tmp_path / "rec.mp4"
    make_video(path, frames=FRAMES, options={"tune": "zerolatency"}, container_options=recording_options("mp4"))
    last_moof = [offset for kind, offset in _boxes(path) if kind == b"moof"][-1]
    with open(path, "r+b") as handle:
        handle.truncate(last_moof + 6)
    return path


def test_a_cut_off_recording_is_recovered_into_a_seekable_copy(cut_recording):
    before = cut_recording.read_bytes()
    result = CliRunner().invoke(main, ["repair", str(cut_recording)])
    assert result.exit_code == 0, result.output
    repaired = cut_recording.with_name("rec-repaired.mp4")
    assert result.stderr.strip() == f"{repaired}: {FRAMES - 1} frames, {(FRAMES - 1) / 25:.2f} s, 6 cut-off bytes dropped"
    assert cut_recording.read_bytes() == before  # the cut-off file is left as it was
    kinds = [kind for kind, _ in _boxes(repaired)]
    assert b"moof" not in kinds and kinds.index(b"moov") < kinds.index(b"mdat")  # regular, index first
    assert _frames(repaired) == FRAMES - 1


def test_an_existing_copy_needs_overwrite_and_out_picks_the_place(cut_recording, tmp_path):
    target = tmp_path / "fixed.mp4"
    target.write_bytes(b"keep me")
    refused = CliRunner().invoke(main, ["repair", str(cut_recording), "--out", str(target)])
    assert refused.exit_code == 1 and refused.stderr.startswith("error: output ") and "--overwrite" in refused.stderr
    assert target.read_bytes() == b"keep me"
    done = CliRunner().invoke(main, ["repair", str(cut_recording), "--out", str(target), "-y"])
    assert done.exit_code == 0, done.output
    assert _frames(target) == FRAMES - 1
    assert not list(tmp_path.glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing.mp4", "no such recording"),
    (lambda d: (d / "notes.txt").write_text("x") and d / "notes.txt", "reads .mp4, .mov and .mkv"),
    (lambda d: (d / "junk.mp4").write_bytes(b"\0" * 64) and d / "junk.mp4", "cannot be recovered"),
], ids=["missing", "not-a-video-name", "no-fragment"])
def test_what_cannot_be_repaired_is_one_error_line(tmp_path, setup, message):
    result = CliRunner().invoke(main, ["repair", str(setup(tmp_path))])
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not list(tmp_path.glob("*-repaired*")) and not list(tmp_path.glob(".*"))


def test_the_copy_may_not_be_the_recording(cut_recording):
    result = CliRunner().invoke(main, ["repair", str(cut_recording), "--out", str(cut_recording), "-y"])
    assert result.exit_code == 1 and "is the input" in result.stderr
