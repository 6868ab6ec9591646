"""torch.compile of a task's networks: when it is chosen, padding of short batches, the eager
fallback, and one real compile through the pipeline (a tiny network, so it takes seconds)."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch

import stream
from stream import compiling
from stream.compiling import CompiledModel, compile_task, should_compile
from stream.errors import DenseStreamError
from tests.fakes import ConvSegTask, LumaTask

CPU = torch.device("cpu")


def test_auto_compiles_only_long_offline_runs():
    long = compiling.AUTO_COMPILE_MIN_FRAMES
    assert should_compile("auto", live=False, frames=long)
    assert not should_compile("auto", live=False, frames=long - 1)
    assert not should_compile("auto", live=False, frames=None)
    assert not should_compile("auto", live=True, frames=10 * long)
    assert should_compile("on", live=True, frames=None)
    assert not should_compile("off", live=False, frames=10 * long)
    with pytest.raises(DenseStreamError, match="unknown compile choice 'fast'"):
        should_compile("fast", live=False, frames=None)


def test_missing_compiler_leaves_the_task_eager_with_a_warning(monkeypatch):
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    assert "C++ compiler" in compiling.compiler_missing(CPU)
    task = ConvSegTask()
    eager = task.model
    with pytest.warns(UserWarning, match="torch.compile unavailable.*C\\+\\+ compiler"):
        assert compile_task(task, CPU) == 0
    assert task.model is eager


def test_compile_task_wraps_each_network_once(monkeypatch):
    monkeypatch.setattr(compiling, "compiler_missing", lambda device: None)
    task = ConvSegTask()
    assert compile_task(task, CPU) == 1 and isinstance(task.model, CompiledModel)
    assert compile_task(task, CPU) == 0
    assert compile_task(LumaTask(), CPU) == 0


def test_short_batches_are_padded_to_the_first_batch_size():
    net = torch.nn.Conv2d(3, 2, 1).eval()
    wrapper = CompiledModel(net)
    shapes = []

    def recording(images):
        shapes.append(tuple(images.shape))
        return net(images), net(images) * 2

    wrapper._compiled = recording
    with torch.no_grad():
        first = torch.rand(4, 3, 5, 6)
        wrapper(first)
        short = torch.rand(2, 3, 5, 6)
        logits, doubled = wrapper(short)
        torch.testing.assert_close(logits, net(short))
        torch.testing.assert_close(doubled, 2 * net(short))
    assert shapes == [(4, 3, 5, 6), (4, 3, 5, 6)] and logits.shape[0] == 2


def test_a_failing_compiler_warns_once_then_runs_eagerly():
    net = torch.nn.Conv2d(3, 2, 1).eval()
    wrapper = CompiledModel(net)

    def broken(images):
        raise RuntimeError("C++ compile error\nlong log")

    wrapper._compiled = broken
    images = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        with pytest.warns(UserWarning, match="torch.compile failed \\(RuntimeError: C\\+\\+ compile error\\)"):
            torch.testing.assert_close(wrapper(images), net(images))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            torch.testing.assert_close(wrapper(images), net(images))


@pytest.mark.skipif(compiling.compiler_missing(CPU) is not None, reason="no C++ compiler for torch.compile")
def test_compiled_pipeline_gives_the_eager_labels(tmp_path, one_torch_thread):
    source = "synth://pattern?frames=3&size=32x24"
    eager_raw, compiled_raw = tmp_path / "eager", tmp_path / "compiled"
    stream.run(source, ConvSegTask(), raw=str(eager_raw), device="cpu", precision="fp32", compile="off")
    pipeline = stream.build_pipeline(source, ConvSegTask(), raw=str(compiled_raw), device="cpu",
                                     precision="fp32", batch=2, compile="on")
    assert pipeline.compiled
    summary = pipeline.run()
    assert summary.exit_code == 0 and summary.frames_out == 3
    for name in sorted(p.name for p in eager_raw.glob("*_labels.png")):
        assert np.array_equal(cv2.imread(str(eager_raw / name), cv2.IMREAD_UNCHANGED),
                              cv2.imread(str(compiled_raw / name), cv2.IMREAD_UNCHANGED)), name
