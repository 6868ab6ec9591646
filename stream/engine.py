"""Device stage: upload uint8 frames, run the task and the overlay on the device, download.

On CUDA each batch is staged through pinned host buffers; uploads and downloads run on a copy
stream and the model on a compute stream, joined by events, so several batches are in flight
(batch k+1 uploads while k computes and k-1 downloads). On the CPU the same calls run in order
and the streams are no-ops. Per frame there is one uint8 upload and one uint8 download of the
composed overlay, plus the raw outputs a raw sink asked for.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .cpu_share import stop_following
from .errors import DenseStreamError
from .frames import Frame

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def select_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU; an explicit device must exist."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DenseStreamError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DenseStreamError(f"device '{name}' asked for, but no CUDA device is available")
    if device.type not in ("cpu", "cuda"):
        raise DenseStreamError(f"device '{name}' is not supported (use auto, cpu, cuda or cuda:N)")
    return device


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    capability = torch.backends.cpu.get_cpu_capability().lower()
    return "avx512" in capability and _cpu_flags_include(("avx512_bf16", "amx_bf16"))


def _cpu_flags_include(flags: tuple[str, ...]) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as info:
            text = info.read()
    except OSError:
        return False
    return any(flag in text for flag in flags)


def set_cpu_threads(count: int) -> None:
    """Use ``count`` CPU threads for torch. On a machine shared with other jobs 1 is often
    fastest: torch's threads otherwise spin waiting on each other for a busy core."""
    if count < 1:
        raise DenseStreamError(f"threads must be at least 1, got {count}")
    stop_following()
    torch.set_num_threads(count)


def select_precision(device: torch.device, name: str = "auto") -> torch.dtype:
    """'auto' is fp16 on CUDA, bf16 on CPUs with native bf16, fp32 otherwise."""
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in PRECISIONS:
        raise DenseStreamError(f"unknown precision '{name}' (use auto, fp32, fp16 or bf16)")
    dtype = PRECISIONS[name]
    if device.type == "cpu" and dtype is torch.float16:
        raise DenseStreamError("fp16 is not supported on the CPU; use bf16 or fp32")
    return dtype


@dataclass
class StageResult:
    """One processed frame on the host: composed overlay and the raw outputs asked for."""

    frame: Frame
    image: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Slot:
    """Host staging buffers for one batch in flight (pinned on CUDA)."""

    host_in: torch.Tensor
    host_out: torch.Tensor | None = None
    host_raw: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class _InFlight:
    frames: list[Frame]
    slot: _Slot
    done: torch.cuda.Event | None
    keep_alive: list[torch.Tensor]
    raw_views: dict[str, torch.Tensor]
    image_view: torch.Tensor


class DeviceStage:
    """Runs ``task`` then ``renderer`` over batches of frames on one device.

    ``task(images)`` takes N x 3 x H x W uint8 on the device (channels_last memory) and
    returns a dict of device tensors; ``renderer(images, outputs)`` composes the N x H' x W' x 3
    uint8 overlay, drawn on ``outputs["display"]`` instead of the input when the task gives
    one. ``raw_keys`` names the outputs to bring back to the host as well. Frames keep one
    size unless ``sizes_vary``; then each batch must be of one size, and the staging buffers
    follow each change.
    """

    def __init__(self, task, renderer, device: torch.device, dtype: torch.dtype,
                 batch: int = 1, raw_keys: tuple[str, ...] = (), in_flight: int = 3,
                 sizes_vary: bool = False) -> None:
        self.task = task
        self.renderer = renderer
        self.device = device
        self.dtype = dtype
        self.batch = batch
        self.raw_keys = raw_keys
        self.sizes_vary = sizes_vary
        self.cuda = device.type == "cuda"
        self._frame_shape: tuple[int, int] | None = None
        self._slots: list[_Slot] = []
        self._next_slot = 0
        self._in_flight = max(1, in_flight)
        if self.cuda:
            self.copy_stream = torch.cuda.Stream(device)
            self.compute_stream = torch.cuda.Stream(device)

    def _autocast(self):
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _next_free_slot(self, height: int, width: int) -> _Slot:
        """The staging slot for the next batch; the caller has fetched its previous batch."""
        if not self._slots:
            shape = (self.batch, height, width, 3)
            self._slots = [_Slot(torch.empty(shape, dtype=torch.uint8, pin_memory=self.cuda))
                           for _ in range(self.depth)]
        slot = self._slots[self._next_slot]
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        return slot

    def _host_buffer(self, slot: _Slot, key: str | None, like: torch.Tensor) -> torch.Tensor:
        current = slot.host_out if key is None else slot.host_raw.get(key)
        if current is None or current.shape != like.shape or current.dtype != like.dtype:
            current = torch.empty(like.shape, dtype=like.dtype, pin_memory=self.cuda)
            if key is None:
                slot.host_out = current
            else:
                slot.host_raw[key] = current
        return current

    def submit(self, frames: list[Frame]) -> _InFlight:
        """Start one batch; on CUDA this returns before the work is done."""
        first = frames[0].image.shape[:2]
        if self._frame_shape is None or (self.sizes_vary and first != self._frame_shape):
            self._frame_shape = first
            self._slots, self._next_slot = [], 0  # batches in flight keep their own slots
        height, width = self._frame_shape
        for frame in frames:
            if frame.image.shape[:2] != (height, width):
                if self.sizes_vary:
                    raise ValueError("a batch must hold frames of one size")
                raise DenseStreamError(
                    f"frame {frame.index} is {frame.image.shape[1]}x{frame.image.shape[0]}, "
                    f"but the stream started at {width}x{height}; sizes must not change mid-stream")
        if len(frames) > self.batch:
            raise ValueError(f"{len(frames)} frames submitted to a stage built for {self.batch}")
        slot = self._next_free_slot(height, width)
        staged = slot.host_in[: len(frames)]
        np.stack([frame.image for frame in frames], out=staged.numpy())
        if self.cuda:
            return self._submit_cuda(frames, slot, staged)
        with torch.inference_mode():
            images = staged.permute(0, 3, 1, 2)
            with self._autocast():
                outputs = self.task(images)
            composed = self.renderer(outputs.pop("display", images), outputs).contiguous()
        raw = {key: outputs[key].detach().to("cpu") for key in self.raw_keys if key in outputs}
        return _InFlight(frames, slot, None, [], raw, composed)

    def _submit_cuda(self, frames: list[Frame], slot: _Slot, staged: torch.Tensor) -> _InFlight:
        with torch.inference_mode():
            with torch.cuda.stream(self.copy_stream):
                device_in = staged.to(self.device, non_blocking=True)
                uploaded = self.copy_stream.record_event()
            with torch.cuda.stream(self.compute_stream):
                self.compute_stream.wait_event(uploaded)
                images = device_in.permute(0, 3, 1, 2)
                with self._autocast():
                    outputs = self.task(images)
                composed = self.renderer(outputs.pop("display", images), outputs).contiguous()
                computed = self.compute_stream.record_event()
            with torch.cuda.stream(self.copy_stream):
                self.copy_stream.wait_event(computed)
                image_view = self._host_buffer(slot, None, composed)
                image_view.copy_(composed, non_blocking=True)
                raw_views = {}
                for key in self.raw_keys:
                    if key in outputs:
                        host = self._host_buffer(slot, key, outputs[key])
                        host.copy_(outputs[key], non_blocking=True)
                        raw_views[key] = host
                done = self.copy_stream.record_event()
        keep = [device_in, composed, *outputs.values()]
        return _InFlight(frames, slot, done, keep, raw_views, image_view)

    def fetch(self, batch: _InFlight) -> list[StageResult]:
        """Wait for a submitted batch and return its frames' results (copies, safe to keep)."""
        if batch.done is not None:
            batch.done.synchronize()
        images = batch.image_view.numpy()
        raws = {key: value.numpy() for key, value in batch.raw_views.items()}
        results = []
        for i, frame in enumerate(batch.frames):
            outputs = {key: np.array(value[i]) for key, value in raws.items()}
            results.append(StageResult(frame, np.array(images[i]), outputs))
        batch.keep_alive.clear()
        return results

    @property
    def depth(self) -> int:
        """How many batches may be in flight before the oldest must be fetched."""
        return self._in_flight if self.cuda else 1
