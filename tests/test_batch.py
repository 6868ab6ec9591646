"""Batches over a small tree of generated clips (one corrupt): outputs and manifests against
single runs, resuming, changed settings and inputs, local worker pools and a local Ray instance."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import stream
from stream.batch.inputs import find_inputs
from stream.batch.manifest import MANIFEST_NAME
from stream.cli import main
from stream.errors import DenseStreamError
from tests.media import make_video

TASK = "depth"  # the fastest task with a raw map (16-bit depth PNGs) to compare byte for byte
CLIPS = {"a.mp4": 5, "sub/b.mp4": 4, "sub/deeper/c.mkv": 6}
BROKEN = "broken.mp4"
STEMS = {"a.mp4": "a", "sub/b.mp4": "sub/b", "sub/deeper/c.mkv": "sub/deeper/c"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """in/ with three short clips at several depths and one file that is no video."""
    root = tmp_path_factory.mktemp("batch") / "in"
    for name, frames in CLIPS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        make_video(root / name, frames=frames)
    (root / BROKEN).write_bytes(b"this is not a video" * 40)
    return root


@pytest.fixture(scope="module")
def singles(tree, tmp_path_factory) -> Path:
    """What ``stream.run`` writes for each clip on its own with the batch's settings."""
    out = tmp_path_factory.mktemp("singles")
    for name, stem in STEMS.items():
        (out / stem).parent.mkdir(parents=True, exist_ok=True)
        summary = stream.run(str(tree / name), TASK, out=str(out / f"{stem}.mp4"), raw=str(out / stem),
                             hud=False)
        assert summary.exit_code == 0
    return out


def assert_same_as_singles(out_dir: Path, singles: Path) -> None:
    for stem in STEMS.values():
        assert (out_dir / f"{stem}.mp4").read_bytes() == (singles / f"{stem}.mp4").read_bytes(), stem
        maps = sorted(p.name for p in (singles / stem).iterdir())
        assert maps and sorted(p.name for p in (out_dir / stem).iterdir()) == maps
        for name in maps:
            assert (out_dir / stem / name).read_bytes() == (singles / stem / name).read_bytes(), name


def manifest_lines(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / MANIFEST_NAME).read_text().splitlines()]


def assert_manifest(out_dir: Path, tree: Path) -> None:
    records = {record["name"]: record for record in manifest_lines(out_dir)}
    assert set(records) == {*CLIPS, BROKEN}
    assert len({record["settings"] for record in records.values()}) == 1
    for name, frames in CLIPS.items():
        record = records[name]
        assert record["status"] == "done" and record["frames"] == frames and record["error"] is None
        assert record["path"] == str(tree / name) and record["size"] == (tree / name).stat().st_size
        assert record["mtime"] == (tree / name).stat().st_mtime and record["seconds"] > 0
        assert record["outputs"] == [f"{STEMS[name]}.mp4", STEMS[name]]
    broken = records[BROKEN]
    assert broken["status"] == "failed" and broken["outputs"] == [] and "cannot open" in broken["error"]
    assert "\n" not in broken["error"]


@pytest.fixture(scope="module")
def first_batch(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-worker")
    summary = stream.batch(tree, TASK, out, raw=True, workers=1)
    return out, summary


def test_one_worker_matches_single_runs_and_isolates_the_broken_file(first_batch, tree, singles):
    out, summary = first_batch
    assert_same_as_singles(out, singles)
    assert_manifest(out, tree)
    assert summary.exit_code == 1 and [r.name for r in summary.failed] == [BROKEN]
    assert summary.lines()[-2:] == ["failed (1):", f"  {BROKEN}: {summary.failed[0].error}"]
    assert not (out / ".partial").exists()


def test_two_workers_match_single_runs(tree, singles, tmp_path):
    seen = []
    summary = stream.batch([str(tree)], TASK, tmp_path, raw=True, workers=2,
                           progress=lambda board: seen.append(board.line()))
    assert_same_as_singles(tmp_path, singles)
    assert_manifest(tmp_path, tree)
    assert len(summary.done) == 3 and summary.frames == sum(CLIPS.values())
    assert any(line.startswith("videos 4/4 (1 failed) | ") for line in seen)
    assert any(" a.mp4 " in line for line in seen)  # the worker on a.mp4 was shown


def test_resumed_batch_skips_what_is_done_and_redoes_what_changed(first_batch, tree, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_batch[0], out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    summary = stream.batch(tree, TASK, out, raw=True)
    assert summary.skipped == 3 and summary.done == [] and [r.name for r in summary.failed] == [BROKEN]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    clip = tree / "sub" / "b.mp4"
    times = clip.stat().st_atime_ns, clip.stat().st_mtime_ns
    os.utime(clip, ns=(times[0], times[1] + 5_000_000_000))
    try:
        summary = stream.batch(tree, TASK, out, raw=True)
        assert summary.skipped == 2 and [r.name for r in summary.done] == ["sub/b.mp4"]
        records = {}
        for record in manifest_lines(out):
            records[record["name"]] = record  # the last line of a path wins
        assert records["sub/b.mp4"]["mtime"] == clip.stat().st_mtime
    finally:
        os.utime(clip, ns=times)  # the tree is shared by the other tests


def test_manifest_cut_short_by_a_crash_is_read_up_to_the_cut(first_batch, tree, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_batch[0], out)
    with open(out / MANIFEST_NAME, "a") as manifest:
        manifest.write('{"path": "/elsewhere/x.mp4", "na')
    assert stream.batch(tree, TASK, out, raw=True).skipped == 3
    assert all(line.endswith("}") for line in (out / MANIFEST_NAME).read_text().splitlines())


def test_changed_setting_redoes_every_video(first_batch, tree, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_batch[0], out)
    summary = stream.batch(tree, TASK, out, raw=True, max_frames=2)
    assert summary.skipped == 0 and len(summary.done) == 3
    assert all(record.frames == 2 for record in summary.done)
    assert sorted(p.name for p in (out / "sub" / "deeper" / "c").iterdir()) == [
        "frame_000000_depth.png", "frame_000001_depth.png"]  # the six-frame maps were replaced whole
    hashes = {record["settings"] for record in manifest_lines(out)}
    assert len(hashes) == 2


def test_inputs_from_globs_and_list_files_without_the_output_folder(tree, tmp_path):
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# the clips\n{tree / 'a.mp4'}\n\n{tree / 'sub'}\n")
    names = [item.name for item in find_inputs([str(listing)])]
    assert names == ["a.mp4", "b.mp4", "deeper/c.mkv"]
    names = [item.name for item in find_inputs([str(tree / "**" / "*.mp4")])]
    assert names == ["a.mp4", BROKEN, "sub/b.mp4"]
    assert [i.name for i in find_inputs([str(tree)], exclude=tree / "sub")] == ["a.mp4", BROKEN]
    twin = tmp_path / "twin"
    twin.mkdir()
    make_video(twin / "a.mkv", frames=1)
    with pytest.raises(DenseStreamError, match="would both write outputs named a"):
        find_inputs([str(tree / "a.mp4"), str(twin / "a.mkv")])


def test_an_output_that_would_replace_an_input_is_refused_before_anything_runs(tree, tmp_path):
    before = (tree / "a.mp4").read_bytes()
    with pytest.raises(DenseStreamError, match="is the input"):
        stream.batch(str(tree / "a.mp4"), TASK, tree)
    assert (tree / "a.mp4").read_bytes() == before and not (tree / MANIFEST_NAME).exists()
    (tmp_path / "x").mkdir()
    make_video(tmp_path / "x" / "y.mp4", frames=1)
    make_video(tmp_path / "x.mp4", frames=1)
    with pytest.raises(DenseStreamError, match="would replace the input"):
        stream.batch([str(tmp_path / "x.mp4"), str(tmp_path / "x" / "y.mp4")], TASK, tmp_path,
                     video=False, raw=True)
    assert (tmp_path / "x" / "y.mp4").exists()


def test_command_lists_failures_and_exits_1(tree, tmp_path):
    result = CliRunner().invoke(main, ["batch", str(tree / "a.mp4"), str(tree / BROKEN), "--task", TASK,
                                       "--out-dir", str(tmp_path), "--max-frames", "2"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-2:] == ["failed (1):", f"  {BROKEN}: {json.loads((tmp_path / MANIFEST_NAME).read_text().splitlines()[1])['error']}"]
    assert "batch: 1 done, 1 failed, 0 already done, of 2 videos" in lines
    assert (tmp_path / "a.mp4").exists() and not (tmp_path / "a").exists()


@pytest.mark.parametrize("args, message", [
    (["missing-folder"], "error: input missing-folder does not exist"),
    (["--task", "track"], "error: --task track needs a start box per video"),
    (["--workers", "0"], "error: --workers must be at least 1"),
    (["--workers", "2", "--ray", "auto"], "error: give --workers or --ray, not both"),
])
def test_command_refuses_bad_requests_in_one_line(tree, tmp_path, args, message):
    inputs = [] if args[0] == "missing-folder" else [str(tree)]
    result = CliRunner().invoke(main, ["batch", *inputs, *args, "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip().splitlines()[0]]
    assert result.output.startswith(message)
    assert not (tmp_path / "out").exists() and "Traceback" not in result.output


def test_ray_without_the_package_says_how_to_install_it(tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when it is absent
    with pytest.raises(DenseStreamError, match=r"pip install 'densestream\[ray\]'"):
        stream.batch(tree / "a.mp4", TASK, tmp_path, ray="auto")


@pytest.fixture(scope="module")
def ray_session():
    """A local two-CPU Ray instance whose workers import this checkout's code."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'densestream[ray]')")
    root = str(Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_batch_matches_single_runs(ray_session, tree, singles, tmp_path):
    summary = stream.batch(tree, TASK, tmp_path, raw=True, ray="auto")
    assert_same_as_singles(tmp_path, singles)
    assert_manifest(tmp_path, tree)
    assert summary.exit_code == 1 and len(summary.done) == 3
    assert stream.batch(tree, TASK, tmp_path, raw=True, ray="auto").skipped == 3


class KillMidVideo:
    """A progress callback that SIGKILLs the worker on ``name`` once, part-way through it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.killed_at: int | None = None
        self.board = None

    def __call__(self, board) -> None:
        self.board = board
        for state in board.workers.values():
            if self.killed_at is None and state.name == self.name and state.total and 0 < state.frames < state.total:
                os.kill(state.pid, signal.SIGKILL)
                self.killed_at = state.frames


@pytest.fixture
def long_clip(tmp_path) -> tuple[Path, Path]:
    """in/long.mp4 (150 frames, so it is still running when killed) beside a short clip, and
    the folder that one ordinary run of long.mp4 wrote."""
    source = tmp_path / "in" / "long.mp4"
    source.parent.mkdir()
    make_video(source, frames=150)
    make_video(source.parent / "short.mp4", frames=3)
    reference = tmp_path / "single"
    reference.mkdir()
    stream.run(str(source), TASK, out=str(reference / "long.mp4"), raw=str(reference / "long"), hud=False)
    return source.parent, reference


def assert_whole_after_kill(killer: KillMidVideo, summary, out: Path, reference: Path) -> None:
    assert killer.killed_at is not None, "the video finished before its worker could be killed"
    assert killer.board.starts["long.mp4"] == 2
    assert summary.exit_code == 0 and {r.name: r.frames for r in summary.done} == {"long.mp4": 150, "short.mp4": 3}
    assert (out / "long.mp4").read_bytes() == (reference / "long.mp4").read_bytes()
    maps = sorted(p.name for p in (reference / "long").iterdir())
    assert len(maps) == 150 and sorted(p.name for p in (out / "long").iterdir()) == maps
    assert all((out / "long" / m).read_bytes() == (reference / "long" / m).read_bytes() for m in maps)
    assert not (out / ".partial").exists()


def test_local_pool_retries_a_video_whose_worker_was_killed(long_clip, tmp_path):
    inputs, reference = long_clip
    killer = KillMidVideo("long.mp4")
    summary = stream.batch(inputs, TASK, tmp_path / "out", raw=True, workers=2, progress=killer)
    assert_whole_after_kill(killer, summary, tmp_path / "out", reference)


def test_ray_retries_a_video_whose_worker_was_killed(ray_session, long_clip, tmp_path):
    inputs, reference = long_clip
    killer = KillMidVideo("long.mp4")
    summary = stream.batch(inputs, TASK, tmp_path / "out", raw=True, ray="auto", progress=killer)
    assert_whole_after_kill(killer, summary, tmp_path / "out", reference)
