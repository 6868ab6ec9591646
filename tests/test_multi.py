"""Several streams in one process: cross-stream batches, a stalled stream, reconnects, outputs."""
from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.errors import SourceError
from stream.multi import Hub, MultiStream, read_source_list
from tests.fakes import ListSource, LumaTask, RecordingSink


class CountingTask(LumaTask):
    """LumaTask that records every batch size it is called with."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.batches: list[int] = []

    def __call__(self, images):
        self.batches.append(images.shape[0])
        return super().__call__(images)


class StalledSource(ListSource):
    """Gives two frames, then hangs until closed (a camera whose cable was pulled)."""

    def __iter__(self):
        yield from list(super().__iter__())[:2]
        self.closed.wait()


def test_hub_batches_one_group_and_closes_on_timeout():
    from stream.frames import Frame
    hub = Hub()
    hub.open_lane("a", "g", live=True, capacity=1)
    hub.open_lane("b", "g", live=True, capacity=1)
    hub.open_lane("c", "other", live=True, capacity=1)
    hub.open_lane("stalled", "g", live=True, capacity=1)  # sends nothing
    image = np.zeros((2, 2, 3), np.uint8)
    now = time.monotonic()
    for name, offset in (("a", 0.0), ("c", 0.001), ("b", 0.002)):
        assert hub.put(name, Frame(0, 0, 1, image, captured=now + offset))
    batch = hub.take(size=4, timeout=0.05)
    assert batch.group == "g" and sorted(batch.names) == ["a", "b"]  # c stays: another size
    assert time.monotonic() - now >= 0.04  # not full: it waited for the stalled lane, then closed
    hub.close_lane("stalled")
    assert hub.take(size=4, timeout=0.0).names == ["c"]
    hub.put("a", Frame(1, 1, 1, image))
    hub.put("a", Frame(2, 2, 1, image))  # live lane: the older frame is dropped
    assert hub.dropped("a") == 1 and hub.take(size=1, timeout=0.0).frames[0].index == 2


def test_frames_of_several_streams_share_device_batches():
    task = CountingTask(delay=0.01)
    engine = MultiStream(task, device="cpu", precision="fp32", batch=3, batch_timeout=0.2, hud=False)
    sinks = [RecordingSink() for _ in range(3)]
    for i, sink in enumerate(sinks):
        engine.add(lambda: ListSource(6, size=(32, 24)), name=f"s{i}", sinks=[sink])
    summary = engine.run()
    assert summary.exit_code == 0
    assert [s.run.frames_out for s in summary.streams] == [6, 6, 6]
    assert max(task.batches) == 3 and sum(task.batches) == 18
    for sink in sinks:  # each stream's frames come back to it, in order
        assert [frame.index for frame in sink.frames] == list(range(6))
        assert sink.closed == 1


def test_a_stalled_stream_never_holds_the_others_back():
    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", batch=2, batch_timeout=0.02,
                         hud=False)
    engine.start()
    fast = RecordingSink()
    engine.add(lambda: ListSource(40, live=True, interval=0.03), name="fast", sinks=[fast])
    engine.add(lambda: StalledSource(10, live=True), name="stalled", sinks=[RecordingSink()])
    started = time.monotonic()
    while len(fast.frames) < 30 and time.monotonic() - started < 5:
        time.sleep(0.01)
    assert len(fast.frames) >= 30  # the fast stream went on while the other hung
    summary = engine.close()
    stalled = summary.stream("stalled").run
    assert stalled.frames_in == 2 and stalled.frames_out + stalled.dropped == 2


def test_different_sizes_run_in_separate_batches_and_keep_their_outputs():
    task = CountingTask()
    engine = MultiStream(task, device="cpu", precision="fp32", batch=4, batch_timeout=0.01, hud=False)
    small, large = RecordingSink(), RecordingSink()
    engine.add(lambda: ListSource(5, size=(16, 12)), name="small", sinks=[small])
    engine.add(lambda: ListSource(7, size=(40, 30)), name="large", sinks=[large])
    engine.run()
    assert {image.shape for image in small.images} == {(12, 16, 3)}
    assert {image.shape for image in large.images} == {(30, 40, 3)}
    assert len(small.frames) == 5 and len(large.frames) == 7


def test_a_stream_that_ends_is_reopened_and_keeps_one_timeline():
    sessions = []

    def opener():
        if len(sessions) == 1:
            sessions.append("refused")
            raise SourceError("connection refused")
        sessions.append("ok")
        return ListSource(3, live=False)

    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", batch=1, hud=False,
                         reopen_for=5.0)
    engine.start()
    sink = RecordingSink()
    engine.add(opener, name="cam", sinks=[sink], reopen=True)
    deadline = time.monotonic() + 5
    while len(sink.frames) < 9 and time.monotonic() < deadline:
        time.sleep(0.02)
    summary = engine.close()
    assert len(sink.frames) >= 9 and summary.stream("cam").reconnects >= 2
    assert [f.index for f in sink.frames] == list(range(len(sink.frames)))
    pts = [f.pts for f in sink.frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))


def test_a_failing_stream_fails_alone():
    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", batch=2, hud=False)
    engine.add(lambda: ListSource(20, fail_after=3), name="broken", sinks=[RecordingSink()])
    engine.add(lambda: ListSource(20), name="fine", sinks=[RecordingSink()])
    summary = engine.run()
    assert summary.exit_code == 1
    assert "decoder broke" in summary.stream("broken").run.error
    assert summary.stream("fine").run.frames_out == 20 and summary.stream("fine").run.error is None


def test_remove_finalises_the_stream_while_others_run():
    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", batch=2, hud=False)
    engine.start()
    gone, kept = RecordingSink(), RecordingSink()
    engine.add(lambda: ListSource(10_000, live=True, interval=0.01), name="gone", sinks=[gone])
    engine.add(lambda: ListSource(10_000, live=True, interval=0.01), name="kept", sinks=[kept])
    time.sleep(0.3)
    summary = engine.remove("gone")
    assert gone.closed == 1 and summary.state == "removed" and engine.names() == ["kept"]
    before = len(kept.frames)
    time.sleep(0.3)
    assert len(kept.frames) > before
    engine.close()


def test_source_list_names_and_comments(tmp_path):
    path = tmp_path / "cams.txt"
    path.write_text("# cameras\nfront: rtsp://10.0.0.1/a\n- rtsp://10.0.0.2/b offline\n\n"
                    "- rear: clip.mp4 live\n")
    assert read_source_list(path) == [("front", "rtsp://10.0.0.1/a", None),
                                      (None, "rtsp://10.0.0.2/b", False), ("rear", "clip.mp4", True)]


def test_cli_multi_writes_one_output_per_stream(tmp_path):
    result = CliRunner().invoke(main, [
        "multi", "synth://pattern?frames=4&size=64x48", "synth://pattern?frames=3&size=64x48&seed=1",
        "--task", "seg", "--infer-size", "native", "--threads", "1",
        "--out", str(tmp_path / "{name}.mp4")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth_pattern.mp4", "synth_pattern_2.mp4"]
    assert "synth_pattern_2" in result.output and "total: 7 frames" in result.output


@pytest.mark.parametrize("args, message", [
    (["a.mp4", "b.mp4", "--out", "x.mp4"], "put {name} in it"),
    ([], "at least one source"),
    (["missing.mp4", "--out", "null"], "error: missing: missing.mp4: no such file"),
])
def test_cli_multi_bad_input_is_one_error_line(args, message):
    result = CliRunner().invoke(main, ["multi", *args])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_bench_streams_puts_one_process_beside_separate_ones():
    from stream.multi.benchmark import compare, format_comparison

    result = compare(1, frames=3, size=(32, 24), task="seg", threads=1, device="cpu", precision="fp32",
                     infer_size="native")  # one subprocess: a torch import is seconds here
    assert result["one_process"]["frames"] == 3 and result["separate"]["frames"] == 3
    assert len(result["separate"]["per_process_fps"]) == 1 and result["separate"]["fps_sum"] > 0
    table = format_comparison(result)
    assert "| one process, 1 streams |" in table and "| 1 separate processes |" in table


def test_run_many_api_is_what_the_cli_uses(tmp_path):
    import stream

    summary = stream.run_many([("a", "synth://pattern?frames=3&size=32x24"),
                               ("b", "synth://pattern?frames=2&size=32x24")], "seg",
                              raw=str(tmp_path / "{name}"), infer_size="native", threads=1)
    assert [s.name for s in summary.streams] == ["a", "b"] and summary.frames_out == 5
    assert len(list((tmp_path / "a").glob("*_labels.png"))) == 3


def test_each_stream_keeps_its_own_drop_policy(tmp_path):
    listing = tmp_path / "streams.txt"
    listing.write_text("paced: synth://pattern?frames=6&size=32x24&fps=50 live\n"
                       "clip: synth://pattern?frames=6&size=32x24\n")
    from stream.multi_cli import gather_sources

    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", hud=False)
    for name, source, live in gather_sources((), str(listing)):
        engine.add(source, name=name, live=live, out="null")
    assert wait_states(engine) == {"paced": True, "clip": False}
    summary = engine.run()
    assert summary.stream("clip").run.frames_out == 6 and summary.stream("paced").run.frames_in == 6
    assert [e.live for e in gather_sources((), str(listing), live=False)] == [False, False]


def wait_states(engine) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        states = {s["name"]: s["live"] for s in engine.statuses()}
        if None not in states.values():
            return states
        time.sleep(0.01)
    raise AssertionError("streams did not open")


class BrokenTask(LumaTask):
    name = "broken"

    def __call__(self, images):
        raise RuntimeError("out of device memory")


def test_a_task_that_fails_fails_only_its_streams():
    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", hud=False)
    engine.add(lambda: ListSource(5), name="bad", task=BrokenTask(), sinks=[RecordingSink()])
    engine.add(lambda: ListSource(5), name="good", sinks=[RecordingSink()])
    summary = engine.run()
    assert "device stage failed: RuntimeError: out of device memory" in summary.stream("bad").run.error
    assert summary.stream("good").run.frames_out == 5 and summary.error is None
