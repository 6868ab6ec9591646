"""`densestream run` with several sources: one device stage, one output and summary row per stream."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.stats import RunSummary
from tests.fault_sweep import frames_in
from tests.fakes import ListSource, LumaTask, RecordingSink

FAST = ("--infer-size", "native", "--threads", "1", "--device", "cpu")


def pattern(frames: int, seed: int = 0) -> str:
    return f"synth://pattern?frames={frames}&size=48x32&seed={seed}"


def run(*args: str):
    return CliRunner().invoke(main, ["run", *args, *FAST])


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("counts", [(3, 2), (2, 4, 3)])
def test_each_source_gets_its_own_output_with_its_frames(tmp_path, counts):
    sources = [pattern(n, seed) for seed, n in enumerate(counts)]
    result = run(*sources, "--out", str(tmp_path / "{name}.mp4"))
    assert result.exit_code == 0, result.output
    names = ["synth_pattern"] + [f"synth_pattern_{i}" for i in range(2, len(counts) + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.mp4" for name in names)
    assert [frames_in(tmp_path / f"{name}.mp4") for name in names] == list(counts)
    assert f"total: {sum(counts)} frames from {len(counts)} stream(s)" in result.output


def test_list_file_names_fill_the_templates(tmp_path):
    listing = tmp_path / "streams.txt"
    listing.write_text(f"front: {pattern(2)}\n# a comment\n- rear: {pattern(3, 1)}\n")
    result = run(f"@{listing}", "--out", str(tmp_path / "out" / "{name}.mp4"), "--raw", str(tmp_path / "maps"))
    assert result.exit_code == 0, result.output
    assert frames_in(tmp_path / "out" / "front.mp4") == 2 and frames_in(tmp_path / "out" / "rear.mp4") == 3
    assert len(list((tmp_path / "maps" / "rear").glob("*_labels.png"))) == 3
    again = run("--list", str(listing), pattern(1, 2), "--out", "null", "--json", "-")
    assert [s["name"] for s in json.loads(again.stdout)["streams"]] == ["synth_pattern", "front", "rear"]


def test_a_shared_out_is_refused_before_anything_is_written(tmp_path):
    result = run(pattern(2), pattern(2, 1), "--out", str(tmp_path / "all.mp4"), "--raw", str(tmp_path / "maps"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(error_lines(result.output)) == 1 and "put {name} in it" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_bad_source_fails_alone_and_the_others_finish(tmp_path):
    summary_path = tmp_path / "summary.json"
    result = run(pattern(3), str(tmp_path / "missing.mp4"), pattern(2, 1),
                 "--out", str(tmp_path / "{name}.mp4"), "--json", str(summary_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert error_lines(result.output) == [f"error: missing: {tmp_path / 'missing.mp4'}: no such file or folder"]
    streams = {s["name"]: s for s in json.loads(summary_path.read_text())["streams"]}
    assert streams["missing"]["state"] == "failed" and "no such file" in streams["missing"]["error"]
    assert streams["synth_pattern"]["frames_out"] == 3 and streams["synth_pattern_2"]["frames_out"] == 2
    assert frames_in(tmp_path / "synth_pattern.mp4") == 3 and frames_in(tmp_path / "synth_pattern_2.mp4") == 2


def test_json_holds_one_entry_per_stream_with_the_run_summary_keys(tmp_path):
    result = run(pattern(2), pattern(3, 1), "--out", "null", "--quiet", "--json", "-")
    assert result.exit_code == 0 and "stream" not in result.stderr
    summary = json.loads(result.stdout)
    keys = {f.name for f in dataclasses.fields(RunSummary)} | {"fps", "exit_code", "name", "task", "state",
                                                                "reconnects"}
    assert [set(s) for s in summary["streams"]] == [keys, keys]
    assert [s["frames_out"] for s in summary["streams"]] == [2, 3]
    assert summary["frames_out"] == 5 and summary["exit_code"] == 0 and summary["error"] is None


def test_max_frames_and_overwrite_apply_to_every_stream(tmp_path):
    out = str(tmp_path / "{name}.mp4")
    first = run(pattern(6), pattern(6, 1), "--out", out, "--max-frames", "2")
    assert first.exit_code == 0, first.output
    assert [frames_in(tmp_path / n) for n in ("synth_pattern.mp4", "synth_pattern_2.mp4")] == [2, 2]
    refused = run(pattern(6), pattern(6, 1), "--out", out, "--max-frames", "3")
    assert refused.exit_code == 1 and "overwrite" in refused.output
    again = run(pattern(6), pattern(6, 1), "--out", out, "--max-frames", "3", "--overwrite")
    assert again.exit_code == 0 and frames_in(tmp_path / "synth_pattern.mp4") == 3


@pytest.mark.parametrize("option", [["--show"], ["--init-box", "1,1,4,4"], ["--compile", "on"], ["--raw-probs"]])
def test_single_source_options_are_refused_with_several(tmp_path, option):
    result = run(pattern(2), pattern(2, 1), "--out", str(tmp_path / "{name}.mp4"), *option)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert error_lines(result.output) == [f"error: {option[0]} works with a single source only, not with 2 sources"]
    assert list(tmp_path.iterdir()) == []


def test_drawing_encoding_and_raw_options_reach_every_stream(tmp_path):
    import av
    import numpy as np

    result = run(pattern(2), pattern(2, 1), "--task", "depth", "--out", str(tmp_path / "{name}.mkv"),
                 "--size", "64x40", "--depth-range", "1,40", "--quality", "30", "--raw", str(tmp_path / "maps"),
                 "--raw-format", "npy")
    assert result.exit_code == 0, result.output
    for name in ("synth_pattern", "synth_pattern_2"):
        with av.open(str(tmp_path / f"{name}.mkv")) as container:
            assert (container.streams.video[0].width, container.streams.video[0].height) == (64, 40)
        depth = sorted((tmp_path / "maps" / name).glob("*_depth.npy"))
        assert len(depth) == 2 and np.load(depth[0]).dtype == np.float32
    auto = run(pattern(2), pattern(2, 1), "--task", "depth", "--out", "null", "--depth-range", "auto")
    assert auto.exit_code == 1 and "give NEAR,FAR for several streams" in auto.output
    no_video = run(pattern(2), pattern(2, 1), "--out", "null", "--quality", "30")
    assert no_video.exit_code == 1 and "apply to video file outputs" in no_video.output


def test_one_source_is_the_single_stream_run(tmp_path):
    result = run(pattern(2), "--out", str(tmp_path / "one.mp4"), "--json", "-")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {f.name for f in dataclasses.fields(RunSummary)} | {"fps", "exit_code"}
    assert "frames: 2 written of 2 read" in result.stderr and frames_in(tmp_path / "one.mp4") == 2
    refused = run(pattern(2), "--out", "null", "--batch-timeout", "0.1")
    assert refused.exit_code == 1 and "--batch-timeout applies to several sources" in refused.output


def test_run_with_a_list_is_run_many(tmp_path):
    import stream
    from stream.errors import DenseStreamError

    summary = stream.run([("a", pattern(2)), pattern(3, 1)], "seg", raw=str(tmp_path), infer_size="native",
                         threads=1, max_frames=2, show=False)
    assert [(s.name, s.run.frames_out) for s in summary.streams] == [("a", 2), ("synth_pattern", 2)]
    assert len(list((tmp_path / "a").glob("*_labels.png"))) == 2
    with pytest.raises(DenseStreamError, match="put {name} in it"):
        stream.run_many([pattern(2), pattern(2, 1)], out=str(tmp_path / "x.mp4"))
    with pytest.raises(DenseStreamError, match="--show works with a single source only"):
        stream.run([pattern(2), pattern(2, 1)], show=True)


def test_ctrl_c_stops_several_streams_gracefully():
    from stream.multi import MultiStream
    from stream.multi_cli import run_engine

    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", hud=False)
    sinks = [RecordingSink(), RecordingSink()]
    for i, sink in enumerate(sinks):
        engine.add(lambda: ListSource(100_000, live=True, interval=0.01), name=f"s{i}", sinks=[sink])
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    summary = run_engine(engine)
    assert summary.interrupted and summary.exit_code == 130 and not summary.failed
    assert all(sink.closed == 1 and sink.frames for sink in sinks)


def test_run_engine_reports_progress_while_it_runs_and_stops_reporting_after():
    from stream.multi import MultiStream
    from stream.multi_cli import run_engine, streams_progress_text

    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", hud=False)
    for i in range(2):
        engine.add(lambda: ListSource(40, interval=0.01), name=f"s{i}", sinks=[RecordingSink()])
    seen: list[list[dict]] = []
    summary = run_engine(engine, progress=seen.append, interval=0.05)
    count = len(seen)
    time.sleep(0.15)
    assert len(seen) == count  # nothing reports once the run is over
    assert seen and all({s["name"] for s in statuses} == {"s0", "s1"} for statuses in seen)
    assert [s.run.frames_out for s in summary.streams] == [40, 40]
    text = streams_progress_text([{"name": "a", "frames_out": 12, "fps": 5.0, "state": "running"},
                                  {"name": "b", "frames_out": 3, "fps": None, "state": "reconnecting"}])
    assert text == "2 streams | frames 15 | 5.0 fps | a 12, b 3 (reconnecting)"
