"""The status line: in windows by default, off in files unless asked, figures that fit the input."""
from __future__ import annotations

import cv2
import numpy as np
import torch

import stream
from stream import pipeline as pipeline_module
from stream.pipeline import Pipeline
from stream.sinks import ImageFolderSink, WindowSink
from stream.sources import open_source
from stream.tasks import build_task
from tests.fakes import ListSource, LumaTask, RecordingSink, plain_renderer


class WatchedSink(RecordingSink):
    """A sink a person watches, like the window."""

    hud_by_default = True


def make(source, sinks, task=None, **options):
    return Pipeline(source, task or LumaTask(), plain_renderer, sinks, device="cpu", precision="fp32", **options)


def carries_hud(sink: RecordingSink) -> list[bool]:
    return [not np.array_equal(image, frame.image) for frame, image in zip(sink.frames, sink.images)]


def test_the_window_is_the_sink_watched_by_default():
    assert WindowSink.hud_by_default and not getattr(ImageFolderSink, "hud_by_default", False)


def test_by_default_only_watched_sinks_get_the_status_line():
    file_sink, window_sink = RecordingSink(), WatchedSink()
    results = list(make(ListSource(4, size=(64, 48)), [file_sink, window_sink]))
    assert carries_hud(file_sink) == [False] * 4
    assert carries_hud(window_sink) == [True] * 4
    assert all(np.array_equal(r.image, r.frame.image) for r in results)


def test_hud_true_and_false_apply_to_every_sink():
    on, also_on = RecordingSink(), WatchedSink()
    make(ListSource(3, size=(64, 48)), [on, also_on], hud=True).run()
    assert carries_hud(on) == carries_hud(also_on) == [True] * 3
    off = WatchedSink()
    make(ListSource(3, size=(64, 48)), [off], hud=False).run()
    assert carries_hud(off) == [False] * 3


def record_texts(monkeypatch) -> list[str]:
    texts: list[str] = []
    monkeypatch.setattr(pipeline_module, "draw_hud", lambda image, text: texts.append(text))
    return texts


def test_offline_status_shows_rate_and_progress_not_queue_latency(monkeypatch):
    texts = record_texts(monkeypatch)
    make(ListSource(5), [RecordingSink()], task=LumaTask(delay=0.05), hud=True).run()  # frame 2 comes well after 1
    assert texts[0] == "luma | -- fps | frame 1/5 (20%)"
    assert texts[-1].endswith("frame 5/5 (100%)")
    assert all("latency" not in text for text in texts)
    assert float(texts[-1].split(" | ")[1].split()[0]) > 0


def test_live_status_shows_capture_to_display_latency(monkeypatch):
    texts = record_texts(monkeypatch)
    make(ListSource(5, live=True, interval=0.01), [RecordingSink()], hud=True).run()
    assert texts and all(" | latency " in text and " ms | " in text and "dropped" in text for text in texts)


def test_restored_image_folder_holds_the_restored_pixels_and_nothing_else(tmp_path):
    spec = "synth://pattern?frames=2&size=64x48"
    summary = stream.run(spec, "denoise", out=str(tmp_path / "restored"), device="cpu", precision="fp32")
    assert summary.exit_code == 0, summary.error
    task = build_task("denoise")
    task.prepare(torch.device("cpu"))
    with open_source(spec) as source:
        frames = list(source)
    written = sorted((tmp_path / "restored").glob("*.png"))
    assert len(written) == len(frames) == 2
    for frame, path in zip(frames, written):
        with torch.inference_mode():
            images = torch.from_numpy(frame.image).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
            expected = task(images)["restored"][0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), expected)
