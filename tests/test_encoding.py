"""How video files are encoded: codec, quality, preset, bitrate, output size, full-size grid panels."""
from __future__ import annotations

import av
import pytest

from stream.errors import SinkError
from stream.sinks import encoders
from stream.sinks.encoders import encoder_settings, parse_bitrate
from tests.test_end_to_end import assert_one_line_error, run_cli

SOURCE = "synth://pattern?frames=3&size=64x48"


def test_defaults_are_constant_quality_with_each_encoders_own_scale():
    assert encoder_settings("libx264").options == {"crf": "20", "preset": "veryfast", "profile": "high",
                                                   "tune": "zerolatency"}
    assert encoder_settings("libx265").options["crf"] == "24"
    av1 = encoder_settings("libsvtav1", preset="slow")
    assert av1.options == {"crf": "32", "preset": "4", "svtav1-params": "pred-struct=1"}


def test_nvenc_settings_map_quality_and_presets(monkeypatch):
    monkeypatch.setattr(av, "codecs_available", {*av.codecs_available, "h264_nvenc"})
    settings = encoder_settings("h264_nvenc", crf=23, preset="slow")
    assert settings.options == {"profile": "high", "bf": "0", "delay": "0", "zerolatency": "1", "preset": "p6",
                                "rc": "vbr", "cq": "23"}
    assert encoder_settings("h264_nvenc").options["preset"] == "p4"


def test_bitrate_replaces_constant_quality():
    settings = encoder_settings("libx264", bitrate="2.5M")
    assert settings.bit_rate == 2_500_000 and "crf" not in settings.options
    assert encoder_settings("libsvtav1", bitrate="1M").options["svtav1-params"] == "pred-struct=1:rc=2"
    assert parse_bitrate("800k") == 800_000 and parse_bitrate(4000) == 4000
    with pytest.raises(SinkError, match="bitrate"):
        parse_bitrate("fast")


def test_bad_quality_and_missing_encoders_say_what_to_do(monkeypatch):
    with pytest.raises(SinkError, match="crf.*1 \\(best\\) to 63"):
        encoder_settings("libsvtav1", crf=0)
    with pytest.raises(SinkError, match="preset"):
        encoder_settings("libx265", preset="warp")
    monkeypatch.setattr(encoders.av, "codecs_available", {"libx264"})
    with pytest.raises(SinkError, match="no libx265 encoder.*--codec hevc"):
        encoder_settings("libx265")


def probe(path) -> tuple[str, int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return stream.codec_context.name, stream.width, stream.height, frames


@pytest.mark.parametrize(("codec", "name"), [("hevc", "hevc"), ("av1", "av1")])
def test_cli_writes_hevc_and_av1(tmp_path, codec, name):
    out = tmp_path / f"{codec}.mp4"
    result = run_cli("run", SOURCE, "--task", "denoise", "--out", str(out), "--device", "cpu", "--threads", "1",
                     "--codec", codec, "--quality", "30", "--size", "96x64")
    assert result.returncode == 0, result.stderr
    decoded, width, height, frames = probe(out)
    assert name in decoded and (width, height, frames) == (96, 64, 3)
    # The crash-safe recording was rewritten into a regular file (index first), tag kept.
    data = out.read_bytes()
    assert b"moof" not in data and data.find(b"moov") < data.find(b"mdat")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_tag == {"hevc": "hvc1", "av1": "av01"}[codec]


def test_cli_quality_changes_the_file_and_bitrate_is_accepted(tmp_path):
    sizes = {}
    for quality in ("5", "45"):
        out = tmp_path / f"q{quality}.mp4"
        result = run_cli("run", SOURCE, "--task", "denoise", "--out", str(out), "--device", "cpu",
                         "--threads", "1", "--quality", quality, "--preset", "ultrafast")
        assert result.returncode == 0, result.stderr
        sizes[quality] = out.stat().st_size
    assert sizes["5"] > 1.5 * sizes["45"]
    result = run_cli("run", SOURCE, "--task", "denoise", "--out", str(tmp_path / "b.mkv"), "--device", "cpu",
                     "--threads", "1", "--bitrate", "300k")
    assert result.returncode == 0, result.stderr


def test_cli_grid_keeps_full_panels_on_request(tmp_path):
    out = tmp_path / "grid.mp4"
    result = run_cli("run", SOURCE, "--task", "denoise", "--layout", "grid", "--full-panels", "--out", str(out),
                     "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert probe(out)[1:3] == (128, 96)


def test_cli_encoding_options_for_a_folder_and_bad_sizes_give_one_error_line(tmp_path):
    assert_one_line_error(run_cli("run", SOURCE, "--out", str(tmp_path / "f"), "--quality", "20"), "video file")
    assert_one_line_error(run_cli("run", SOURCE, "--out", "null", "--size", "12"), "--size '12'")
    assert_one_line_error(run_cli("run", SOURCE, "--out", str(tmp_path / "x.mp4"), "--quality", "99"), "crf")
