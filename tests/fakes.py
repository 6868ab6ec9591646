"""Small deterministic stand-ins for pipeline tests: a source, a task, a renderer, a sink."""
from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import torch

from stream.frames import Frame, StreamInfo
from stream.tasks import Task


class ListSource:
    """Yields ``count`` frames whose pixels encode their index; optionally paced or failing."""

    def __init__(self, count: int, size=(32, 24), live: bool = False, interval: float = 0.0,
                 fail_after: int | None = None) -> None:
        self.count = count
        self.width, self.height = size
        self.interval = interval
        self.fail_after = fail_after
        self.info = StreamInfo(self.width, self.height, Fraction(1, 25), fps=25.0,
                               frame_count=None if live else count, live=live, name="list")
        self.closed = threading.Event()

    def __iter__(self):
        for index in range(self.count):
            if self.closed.is_set():
                return
            if self.fail_after is not None and index == self.fail_after:
                raise RuntimeError(f"decoder broke at frame {index}")
            if self.interval:
                time.sleep(self.interval)
            image = np.full((self.height, self.width, 3), index % 256, dtype=np.uint8)
            image[0, 0] = (index // 256) % 256
            yield Frame(index, index * 3, self.info.time_base, image, meta={"name": f"f{index}"})

    def close(self) -> None:
        self.closed.set()


class LumaTask(Task):
    """Labels = mean brightness // 64, depth = 1 + row index: exact and model-free."""

    name = "luma"
    outputs = ("labels", "depth")
    classes = ["dark", "dim", "bright", "white"]
    depth_range = (1.0, 100.0)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.device = None

    def prepare(self, device) -> None:
        self.device = device

    def __call__(self, images):
        if self.delay:
            time.sleep(self.delay * images.shape[0])
        luma = images.float().mean(1)
        rows = torch.arange(images.shape[2], device=images.device, dtype=torch.float32)
        return {"labels": (luma // 64).to(torch.uint8),
                "depth": (1.0 + rows).view(1, -1, 1).expand_as(luma).contiguous()}


def plain_renderer(images, outputs):
    """The input image itself, channels last: lets tests check pixels pass through intact."""
    return images.permute(0, 2, 3, 1).contiguous()


class RecordingSink:
    """Keeps what it was given; can be slow or fail on a chosen frame."""

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay = delay
        self.fail_at = fail_at
        self.frames: list[Frame] = []
        self.images: list[np.ndarray] = []
        self.outputs: list[dict] = []
        self.closed = 0
        self.stop_requested = False

    def write(self, frame, image, outputs) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OSError("disk full")
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame)
        self.images.append(image)
        self.outputs.append(outputs)

    def close(self) -> None:
        self.closed += 1


class ConvSegTask(Task):
    """Labels from one 3x3 convolution held as ``model``, like the zoo-backed tasks: cheap,
    compilable, and its argmax is sensitive to bf16 rounding."""

    name = "conv-seg"
    outputs = ("labels",)
    classes = [f"c{i}" for i in range(8)]

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Conv2d(3, 8, 3, padding=1).eval()

    def prepare(self, device) -> None:
        self.model.to(device)

    def __call__(self, images):
        return {"labels": self.model(images.float() / 255.0).argmax(1).to(torch.uint8)}
