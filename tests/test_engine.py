"""Device stage: device/precision choice, batching, raw downloads; CUDA path against the CPU."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from stream.engine import DeviceStage, select_device, select_precision
from stream.errors import DenseStreamError
from stream.frames import Frame
from stream.overlay import OverlayRenderer
from tests.fakes import LumaTask

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def make_frames(count, h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    return [Frame(i, i, Fraction(1, 25), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            for i in range(count)]


def run_stage(stage, frames, batch):
    results, pending = [], []
    for start in range(0, len(frames), batch):
        pending.append(stage.submit(frames[start:start + batch]))
        while len(pending) >= stage.depth:
            results.extend(stage.fetch(pending.pop(0)))
    for handle in pending:
        results.extend(stage.fetch(handle))
    return results


def test_auto_device_and_precision_on_this_machine():
    device = select_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_precision(torch.device("cpu"), "fp32") is torch.float32
    assert select_precision(torch.device("cpu"), "auto") in (torch.float32, torch.bfloat16)


def test_bad_device_and_precision_are_clear_errors():
    with pytest.raises(DenseStreamError, match="unknown device"):
        select_device("gpu7")
    with pytest.raises(DenseStreamError, match="fp16 is not supported on the CPU"):
        select_precision(torch.device("cpu"), "fp16")
    with pytest.raises(DenseStreamError, match="unknown precision"):
        select_precision(torch.device("cpu"), "int8")
    if not torch.cuda.is_available():
        with pytest.raises(DenseStreamError, match="no CUDA device"):
            select_device("cuda")


@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_stage_returns_overlay_and_raw_outputs_per_frame(batch):
    task = LumaTask()
    task.prepare(torch.device("cpu"))
    renderer = OverlayRenderer(classes=task.classes, expect=("labels", "depth"), legend="off")
    stage = DeviceStage(task, renderer, torch.device("cpu"), torch.float32, batch=batch,
                        raw_keys=("labels", "depth"))
    frames = make_frames(7)
    results = run_stage(stage, frames, batch)
    assert [r.frame.index for r in results] == list(range(7))
    for result in results:
        luma = result.frame.image.astype(np.float32).mean(2)
        np.testing.assert_array_equal(result.outputs["labels"], (luma // 64).astype(np.uint8))
        assert result.image.shape == (30, 40, 3) and result.image.dtype == np.uint8
    # Results are kept by sinks after the staging buffers are reused: they must be copies.
    assert not any(np.shares_memory(a.image, b.image) for a, b in zip(results, results[1:]))


@needs_cuda
@pytest.mark.parametrize("batch", [1, 4])
def test_cuda_streams_match_the_cpu_path(batch):
    frames = make_frames(13, h=64, w=96, seed=3)
    outputs = {}
    for device in (torch.device("cpu"), torch.device("cuda")):
        task = LumaTask()
        task.prepare(device)
        renderer = OverlayRenderer(classes=task.classes, expect=("labels", "depth"),
                                   device=device)
        stage = DeviceStage(task, renderer, device, torch.float32, batch=batch,
                            raw_keys=("labels", "depth"))
        outputs[device.type] = run_stage(stage, frames, batch)
    for cpu, gpu in zip(outputs["cpu"], outputs["cuda"]):
        assert cpu.frame.index == gpu.frame.index
        np.testing.assert_array_equal(cpu.outputs["labels"], gpu.outputs["labels"])
        np.testing.assert_allclose(cpu.outputs["depth"], gpu.outputs["depth"])
        assert np.mean(cpu.image != gpu.image) < 0.002
