"""Hardware decode/encode choice and its software fallbacks (the fallbacks run on any machine;
the NVDEC/NVENC paths themselves only where the GPU and driver allow them)."""
from __future__ import annotations

import warnings

import av
import numpy as np
import pytest
import torch

import stream
from stream import hwcodecs
from stream.errors import DenseStreamError
from stream.sources import open_source
from tests.fakes import LumaTask
from tests.media import make_video

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def frames_of(path, **options) -> list[np.ndarray]:
    with open_source(str(path), **options) as source:
        return [frame.image for frame in source]


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_auto_means_hardware_only_on_cuda_runs():
    assert not hwcodecs.wants_hardware("auto", CPU)
    assert hwcodecs.wants_hardware("auto", CUDA)
    assert hwcodecs.wants_hardware("on", CPU)
    assert not hwcodecs.wants_hardware("off", CUDA)
    with pytest.raises(DenseStreamError, match="unknown hardware codec choice 'gpu'"):
        hwcodecs.wants_hardware("gpu", CPU)


def test_encoder_falls_back_to_libx264_with_a_warning(monkeypatch):
    monkeypatch.setattr(hwcodecs, "nvenc_unavailable", lambda encoder="h264_nvenc": "no NVENC capable device")
    with pytest.warns(UserWarning, match="NVENC.*no NVENC capable device.*libx264"):
        assert hwcodecs.pick_encoder("on", CPU) == "libx264"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hwcodecs.pick_encoder("auto", CPU) == "libx264"
        assert hwcodecs.pick_encoder("off", CUDA) == "libx264"
    monkeypatch.setattr(hwcodecs, "nvenc_unavailable", lambda encoder="h264_nvenc": None)
    assert hwcodecs.pick_encoder("auto", CUDA) == hwcodecs.NVENC


def test_nvenc_probe_gives_a_reason_or_none():
    reason = hwcodecs.nvenc_unavailable()
    assert reason is None or ("h264_nvenc" in reason and "\n" not in reason)
    if not torch.cuda.is_available():
        assert reason is not None


def test_decoder_accel_needs_cuda_in_the_ffmpeg_build(monkeypatch):
    assert hwcodecs.pick_decoder_accel("off", CUDA) is None
    monkeypatch.setattr(hwcodecs, "hwdevices_available", lambda: ["qsv"])
    with pytest.warns(UserWarning, match="NVDEC.*no CUDA device type"):
        assert hwcodecs.pick_decoder_accel("on", CPU) is None
    monkeypatch.setattr(hwcodecs, "hwdevices_available", lambda: ["cuda"])
    assert hwcodecs.pick_decoder_accel("on", CPU) is not None


def test_a_hardware_device_that_will_not_open_decodes_in_software(tmp_path, monkeypatch):
    clip = make_video(tmp_path / "in.mp4", frames=6)
    software = frames_of(clip.path)
    real_open = av.open

    def no_device(*args, **kwargs):
        if kwargs.get("hwaccel") is not None:
            raise PermissionError(1, "Operation not permitted")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", no_device)
    accel = av.codec.hwaccel.HWAccel(device_type="cuda", allow_software_fallback=True)
    with pytest.warns(UserWarning, match="NVDEC.*Operation not permitted.*software"):
        fallback = frames_of(clip.path, hwaccel=accel)
    assert len(fallback) == len(software) == 6
    assert all(np.array_equal(a, b) for a, b in zip(fallback, software))


def test_pipeline_asked_for_hardware_on_this_machine_still_writes_every_frame(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=5)
    out = tmp_path / "out.mp4"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = stream.run(str(clip.path), LumaTask(), out=str(out), device="cpu", hw_codecs="on")
    assert summary.exit_code == 0 and decoded_frames(out) == 5


@pytest.mark.skipif(not torch.cuda.is_available() or "cuda" not in av.codec.hwaccel.hwdevices_available(),
                    reason="needs a CUDA device and an FFmpeg build with CUDA decode")
def test_nvdec_frames_match_software_decoding(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=6, size=(256, 144))
    software = frames_of(clip.path)
    hardware = frames_of(clip.path, hwaccel=hwcodecs.pick_decoder_accel("on", CUDA))
    assert len(hardware) == len(software)
    assert max(float(np.abs(a.astype(int) - b).mean()) for a, b in zip(hardware, software)) < 1.0


@pytest.mark.skipif(hwcodecs.nvenc_unavailable() is not None, reason="NVENC does not open on this machine")
def test_nvenc_writes_a_playable_file(tmp_path):
    clip = make_video(tmp_path / "in.mp4", frames=8, size=(256, 144))
    out = tmp_path / "out.mp4"
    summary = stream.run(str(clip.path), LumaTask(), out=str(out), device="cuda", hw_codecs="on")
    assert summary.exit_code == 0 and decoded_frames(out) == 8
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
