"""Image folders of mixed sizes: each image runs at its own size and keeps its name."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import stream
from stream.pipeline import Pipeline
from tests.fakes import ListSource, LumaTask, RecordingSink, plain_renderer

SIZES = {"beach": (64, 48), "portrait": (30, 50), "tiny": (40, 24)}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    gen = np.random.default_rng(0)
    for name, (width, height) in SIZES.items():
        image = gen.integers(0, 256, (height, width, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{name}.{'jpg' if name == 'tiny' else 'png'}"), image)
    return folder


@pytest.mark.parametrize(("task", "batch"), [("denoise", 1), ("seg", 2)])
def test_mixed_folder_keeps_each_size_and_name(tmp_path, photos, task, batch):
    out = tmp_path / "out"
    summary = stream.run(str(photos), task, out=str(out), batch=batch, device="cpu", precision="fp32")
    assert summary.exit_code == 0, summary.error
    for name, (width, height) in SIZES.items():
        written = cv2.imread(str(out / f"{name}.png"))
        assert written is not None and written.shape == (height, width, 3), name


def test_mixed_folder_into_one_video_needs_one_size(tmp_path, photos):
    failed = stream.run(str(photos), "denoise", out=str(tmp_path / "a.mp4"), device="cpu")
    assert failed.exit_code == 1 and "--size" in failed.error
    resized = stream.run(str(photos), "denoise", out=str(tmp_path / "b.mp4"), size="64x48", device="cpu")
    assert resized.exit_code == 0 and resized.frames_out == 3, resized.error


def test_video_streams_keep_the_one_size_rule():
    class Resizing(ListSource):
        def __iter__(self):
            for frame in super().__iter__():
                if frame.index == 2:
                    frame.image = np.zeros((10, 10, 3), np.uint8)
                yield frame

    summary = Pipeline(Resizing(4), LumaTask(), plain_renderer, [RecordingSink()], device="cpu",
                       precision="fp32", batch=2).run()
    assert summary.exit_code == 1 and "sizes must not change" in summary.error
