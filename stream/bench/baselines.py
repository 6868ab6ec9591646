"""What users would otherwise run: a one-thread OpenCV + eager fp32 loop, and supervision's
``process_video`` when it is installed."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import DenseStreamError
from ..overlay import OverlayRenderer
from ..tasks import Task


class NaiveForward:
    """The model call a user would write by hand: numpy normalisation on the host,
    ``torch.from_numpy``, the same weights in fp32 eager NCHW, argmax, ``.cpu()``.

    Tasks without a ``nets`` model (test stand-ins) get the uint8 NCHW tensor directly.
    """

    def __init__(self, task: Task, device: torch.device) -> None:
        self.task = task
        self.device = device
        self.wanted = set(task.outputs)
        model = getattr(task, "model", None)
        spec = getattr(task, "spec", None)
        self.model = None
        if model is not None and spec is not None:
            self.model = copy.deepcopy(model).to(device=device, dtype=torch.float32,
                                                 memory_format=torch.contiguous_format).eval()
            self.mean = np.asarray(spec.mean, dtype=np.float32)
            self.std = np.asarray(spec.std, dtype=np.float32)

    def __call__(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of one H x W x 3 uint8 RGB frame as host arrays."""
        with torch.no_grad():
            if self.model is None:
                tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
                outputs = self.task(tensor.to(self.device))
                return {key: value[0].cpu().numpy() for key, value in outputs.items()}
            normalised = (rgb.astype(np.float32) / 255.0 - self.mean) / self.std
            tensor = torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]
            result = self.model(tensor.to(self.device))
            logits, depth = result if isinstance(result, tuple) else (result, None)
            outputs = {}
            if "labels" in self.wanted:
                outputs["labels"] = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
            if depth is not None and "depth" in self.wanted:
                outputs["depth"] = depth[0, 0].abs().cpu().numpy()
            return outputs


def task_palette(task: Task) -> np.ndarray:
    """The task's class colours (C x 3 uint8 RGB), the same the device overlay uses."""
    return OverlayRenderer(classes=task.classes, expect=("labels",)).palette.numpy()


def naive_overlay(bgr: np.ndarray, outputs: dict[str, np.ndarray], palette_bgr: np.ndarray,
                  depth_range: tuple[float, float]) -> np.ndarray:
    """Host-side overlay with OpenCV: palette lookup + addWeighted (labels), else a colour-mapped depth."""
    if "labels" in outputs:
        colours = np.take(palette_bgr, outputs["labels"], axis=0, mode="clip")
        return cv2.addWeighted(bgr, 0.5, colours, 0.5, 0.0)
    if "depth" in outputs:
        near, far = depth_range
        depth = np.clip(np.nan_to_num(outputs["depth"], nan=far), near, far)
        fraction = (np.log(depth) - np.log(near)) / (np.log(far) - np.log(near))
        colours = cv2.applyColorMap(((1.0 - fraction) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
        return cv2.addWeighted(bgr, 0.5, colours, 0.5, 0.0)
    return bgr


def time_naive(clip: Path, task: Task, frames: int, device: torch.device, out: Path,
               forward: NaiveForward | None = None) -> tuple[int, float]:
    """(frames, seconds) of the one-thread loop: cv2.VideoCapture -> model -> OpenCV overlay ->
    cv2.VideoWriter (mp4v)."""
    forward = forward or NaiveForward(task, device)
    palette_bgr = np.ascontiguousarray(task_palette(task)[:, ::-1]) if task.classes else None
    depth_range = task.depth_range or (1.0, 80.0)
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise DenseStreamError(f"{clip}: OpenCV cannot open the clip for the naive loop")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    count = 0
    try:
        while count < frames:
            ok, bgr = capture.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (bgr.shape[1], bgr.shape[0]))
                if not writer.isOpened():
                    raise DenseStreamError(f"{out}: OpenCV cannot write mp4v video")
            outputs = forward(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            writer.write(naive_overlay(bgr, outputs, palette_bgr, depth_range))
            count += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return count, time.perf_counter() - started


def supervision_missing() -> str | None:
    """Why the supervision row cannot run, or None when it can."""
    try:
        import supervision  # noqa: F401 - only probing whether it is installed
    except ImportError as exc:
        return f"supervision is not installed ({exc}); pip install supervision to add this row"
    return None


def time_supervision(clip: Path, task: Task, frames: int, device: torch.device, out: Path,
                     forward: NaiveForward | None = None) -> tuple[int, float]:
    """(frames, seconds) of ``sv.process_video`` driving the same model, labels drawn by its
    MaskAnnotator (one mask per class present)."""
    import supervision as sv

    forward = forward or NaiveForward(task, device)
    colours = sv.ColorPalette([sv.Color(int(r), int(g), int(b)) for r, g, b in task_palette(task)])
    annotator = sv.MaskAnnotator(color=colours, opacity=0.5)
    count = 0

    def annotate(bgr: np.ndarray, index: int) -> np.ndarray:
        nonlocal count
        labels = forward(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))["labels"]
        present = np.unique(labels)
        present = present[present < len(colours.colors)]
        masks = labels[None] == present[:, None, None]
        detections = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks,
                                   class_id=present.astype(int))
        count += 1
        return annotator.annotate(bgr.copy(), detections)

    started = time.perf_counter()
    sv.process_video(str(clip), str(out), annotate, max_frames=frames)
    return count, time.perf_counter() - started
