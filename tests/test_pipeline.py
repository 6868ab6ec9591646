"""Pipeline behaviour with model-free stand-ins: ordering, drop policy, shutdown, errors."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from stream.pipeline import Pipeline
from tests.fakes import ListSource, LumaTask, RecordingSink, plain_renderer


def make(source, sinks, task=None, **options):
    options.setdefault("hud", False)
    return Pipeline(source, task or LumaTask(), plain_renderer, sinks, device="cpu",
                    precision="fp32", **options)


@pytest.mark.parametrize("batch", [1, 4])
def test_offline_is_lossless_and_ordered(batch):
    sink = RecordingSink(delay=0.001)
    summary = make(ListSource(37), [sink], batch=batch).run()
    assert summary.exit_code == 0 and summary.error is None
    assert summary.frames_in == summary.frames_out == 37 and summary.dropped == 0
    assert [f.index for f in sink.frames] == list(range(37))
    assert [f.pts for f in sink.frames] == [3 * i for i in range(37)]
    for frame, image in zip(sink.frames, sink.images):
        np.testing.assert_array_equal(image, frame.image)
    assert sink.closed == 1


def test_raw_outputs_reach_the_host_per_frame():
    sink = RecordingSink()
    make(ListSource(5, size=(8, 6)), [sink], raw_keys=("labels", "depth"), batch=2).run()
    for frame, outputs in zip(sink.frames, sink.outputs):
        assert outputs["labels"].shape == (6, 8)
        assert np.all(outputs["labels"] == frame.index // 64)
        np.testing.assert_array_equal(outputs["depth"][:, 0], np.arange(1, 7, dtype=np.float32))


def test_iterating_yields_results_in_order():
    results = list(make(ListSource(6), [RecordingSink()]))
    assert [r.frame.index for r in results] == list(range(6))


def test_live_source_with_slow_task_drops_and_keeps_latency_bounded():
    source = ListSource(150, live=True, interval=0.002)
    sink = RecordingSink()
    summary = make(source, [sink], task=LumaTask(delay=0.03)).run()
    assert summary.dropped > 50
    assert summary.frames_out + summary.dropped == summary.frames_in == 150
    # A lossless queue would make the last frames wait ~4 s; newest-only keeps ~one task time.
    assert summary.latency_ms_p95 < 250
    indices = [f.index for f in sink.frames]
    assert indices == sorted(indices) and indices[-1] >= 140


def test_source_error_keeps_processed_frames_and_reports_one_line():
    sink = RecordingSink()
    summary = make(ListSource(20, fail_after=12), [sink]).run()
    assert summary.exit_code == 1
    assert summary.error == "RuntimeError: decoder broke at frame 12"
    assert len(sink.frames) == 12 and sink.closed == 1


def test_sink_error_stops_the_run_and_closes_every_sink():
    good, bad = RecordingSink(), RecordingSink(fail_at=3)
    summary = make(ListSource(200), [good, bad]).run()
    assert summary.exit_code == 1 and "disk full" in summary.error
    assert good.closed == 1 and bad.closed == 1
    assert len(good.frames) < 200


def test_stop_mid_run_finalises_and_reports_interrupted():
    sink = RecordingSink(delay=0.005)
    pipeline = make(ListSource(10_000), [sink])
    threading.Timer(0.3, pipeline.stop).start()
    summary = pipeline.run()
    assert summary.interrupted and summary.exit_code == 130
    assert 0 < summary.frames_out < 10_000 and len(sink.frames) == summary.frames_out
    assert sink.closed == 1


def test_window_quit_stops_without_error():
    sink = RecordingSink()
    pipeline = make(ListSource(1000), [sink])
    for result in pipeline:
        if result.frame.index == 4:
            sink.stop_requested = True
    assert pipeline.summary.exit_code == 0 and pipeline.summary.frames_out < 1000


def test_max_frames_limits_the_run():
    sink = RecordingSink()
    summary = make(ListSource(100), [sink], max_frames=7).run()
    assert summary.frames_out == 7 and len(sink.frames) == 7


def test_max_frames_on_live_input_counts_frames_written_not_frames_dropped():
    sink = RecordingSink()
    summary = make(ListSource(400, live=True, interval=0.002), [sink], task=LumaTask(delay=0.03),
                   max_frames=8).run()
    assert summary.dropped > 0
    assert summary.frames_out == len(sink.frames) == 8


def test_frame_size_change_is_an_error():
    class Resizing(ListSource):
        def __iter__(self):
            for frame in super().__iter__():
                if frame.index == 3:
                    frame.image = np.zeros((10, 10, 3), np.uint8)
                yield frame

    summary = make(Resizing(6), [RecordingSink()]).run()
    assert summary.exit_code == 1 and "sizes must not change" in summary.error
