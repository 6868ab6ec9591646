"""Evaluation of trained models on held-out data, with the classical baselines run alongside."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import time

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from nets import zoo
from nets.errors import NetsError
from nets.resizing import run_at_size
from nets.train.data import CAMVID_CLASSES, CamVidSplit
from nets.train.degrade import (add_noise, blur, crop_to_multiple, downscale_bicubic, jpeg_roundtrip,
                                random_blur_kernel, upscale_bicubic)
from nets.siamese import SiamFCNet, SiamFCTracker
from nets.train.metrics import ConfusionMatrix, DepthErrors, box_iou, median_scaled, psnr, psnr_y, success_auc
from nets.train.sequences import TrackSequence
from nets.world import SKY_DEPTH
from nets.world.frames import SyntheticFrames

__all__ = ["Normaliser", "predict_at", "evaluate_segmentation", "evaluate_joint", "evaluate_restoration",
           "restore_image", "unsharp_mask", "siamfc_ious", "mil_ious", "evaluate_tracking", "tracker_fps", "ROAD",
           "spearman", "main_road", "road_band_medians", "road_depth_profile"]

ROAD = zoo.CAMVID_CLASSES.index("Road")


class Normaliser:
    """Maps 0..1 RGB batches to a model's input: (x - mean) / std, on the batch's device."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, images: Tensor) -> Tensor:
        return (images - self.mean.to(images.device)) / self.std.to(images.device)


def _image_batch(image: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0).to(device)


def predict_at(model: nn.Module, image: np.ndarray, size: tuple[int, int], normalise: Normaliser,
               device: torch.device) -> tuple[Tensor, Tensor | None]:
    """Run a segmentation (or joint) model on an RGB frame resized to ``size`` (width, height) as
    the product does (``run_at_size``); returns float logits (and depth, for joint models) at the
    frame's size."""
    output = run_at_size(model, normalise(_image_batch(image, device)), size)
    logits, depth = output if isinstance(output, tuple) else (output, None)
    return logits.float(), None if depth is None else depth.float()


@torch.inference_mode()
def evaluate_segmentation(model: nn.Module, split: CamVidSplit, size: tuple[int, int], normalise: Normaliser,
                          device: torch.device) -> dict[str, float]:
    """CamVid mIoU and pixel accuracy over the whole split (void ignored), frames run at ``size``."""
    model.eval()
    confusion = ConfusionMatrix(CAMVID_CLASSES)
    for image, labels in zip(split.images, split.labels):
        logits, _ = predict_at(model, image, size, normalise, device)
        confusion.update(logits.argmax(1)[0].cpu(), torch.from_numpy(labels))
    return {"miou": confusion.miou(), "pixel_accuracy": confusion.pixel_accuracy()}


@torch.inference_mode()
def evaluate_joint(model: nn.Module, split: CamVidSplit, frames: SyntheticFrames, size: tuple[int, int],
                   max_depth: float, normalise: Normaliser, device: torch.device) -> dict[str, float]:
    """CamVid val mIoU plus, on held-out synthetic towns, depth AbsRel/RMSE/delta<1.25 over
    non-sky pixels nearer than ``max_depth`` and the synthetic mIoU."""
    results = evaluate_segmentation(model, split, size, normalise, device)
    errors, scaled = DepthErrors(), DepthErrors()
    confusion = ConfusionMatrix(CAMVID_CLASSES)
    for i in range(len(frames)):
        frame = frames.frame(i)
        logits, depth = predict_at(model, frame["rgb"], size, normalise, device)
        truth = torch.from_numpy(frame["depth"])
        prediction, valid = depth[0, 0].cpu(), (truth < SKY_DEPTH) & (truth <= max_depth)
        errors.update(prediction, truth, valid)
        scaled.update(median_scaled(prediction, truth, valid), truth, valid)
        confusion.update(logits.argmax(1)[0].cpu(), torch.from_numpy(frame["labels"]))
    results.update({f"synth_{key}": value for key, value in errors.result().items()})
    results.update({f"synth_scaled_{key}": value for key, value in scaled.result().items()})
    results["synth_miou"] = confusion.miou()
    return results


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, tied values sharing their mean rank."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    _, groups = np.unique(values, return_inverse=True)
    return (np.bincount(groups, ranks) / np.bincount(groups))[groups]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length sequences; 0 when either is constant."""
    rx, ry = _ranks(np.asarray(x)), _ranks(np.asarray(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / scale) if scale > 0 else 0.0


def main_road(road: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of an H x W road mask: stray road predictions elsewhere
    (e.g. patches of bright sky) would otherwise stretch the road's row range."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(road.astype(np.uint8), connectivity=8)
    if count < 2:
        return road.astype(bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def road_band_medians(road: np.ndarray, depth: np.ndarray, bands: int, min_pixels: int) -> np.ndarray:
    """Median ``depth`` of the ``road`` pixels (H x W masks) in ``bands`` equal horizontal bands
    spanning the rows from the lowest road pixel to the highest, bottom band first; NaN for a
    band with fewer than ``min_pixels`` road pixels."""
    medians = np.full(bands, np.nan)
    rows = np.nonzero(road)[0]
    if rows.size == 0:
        return medians
    top, bottom = rows.min(), rows.max()
    band = (bottom - rows) * bands // (bottom - top + 1)
    values = depth[road]
    for k in range(bands):
        chosen = values[band == k]
        if chosen.size >= min_pixels:
            medians[k] = np.median(chosen)
    return medians


@torch.inference_mode()
def road_depth_profile(model: nn.Module, frames: Iterable[np.ndarray], size: tuple[int, int],
                       normalise: Normaliser, device: torch.device, bands: int = 6, road_class: int = ROAD,
                       min_pixels: int = 50) -> dict[str, float]:
    """Does a joint model's depth on the road grow towards the horizon? Each RGB frame is run at
    ``size``; the largest connected region of its predicted road pixels is split into ``bands``
    equal bands between that region's lowest and highest rows (the road's own extent, so no
    horizon row has to be known, whatever the camera's pitch or the frame's size). A frame
    with at least 3 bands of ``min_pixels`` is usable; over those, ``clip_road_spearman`` is the
    mean Spearman correlation of band height with median depth (1: farther up is always deeper),
    ``clip_road_monotone`` the share whose medians strictly increase upwards, and
    ``clip_road_band_m_k`` the mean median of band k (0 = bottom) over the frames where it is
    usable. Keys without a value (no usable frame, a band never usable) are left out rather than
    NaN; ``clip_road_frames`` counts the usable frames."""
    model.eval()
    profiles, correlations, monotone = [], [], []
    for frame in frames:
        logits, depth = predict_at(model, frame, size, normalise, device)
        if depth is None:
            raise NetsError("road depth needs a joint model that returns (logits, depth)")
        road = main_road((logits.argmax(1)[0] == road_class).cpu().numpy())
        medians = road_band_medians(road, depth[0, 0].cpu().numpy(), bands, min_pixels)
        heights = np.flatnonzero(~np.isnan(medians))
        if heights.size < 3:
            continue
        correlations.append(spearman(heights, medians[heights]))
        monotone.append(bool(np.all(np.diff(medians[heights]) > 0)))
        profiles.append(medians)
    results = {"clip_road_frames": float(len(profiles))}
    if not profiles:
        return results
    results.update({"clip_road_spearman": float(np.mean(correlations)), "clip_road_monotone": float(np.mean(monotone))})
    for k, column in enumerate(np.stack(profiles, axis=1)):
        column = column[~np.isnan(column)]
        if column.size:
            results[f"clip_road_band_m_{k}"] = float(column.mean())
    return results


def restore_image(model: nn.Module, image: np.ndarray, device: torch.device) -> np.ndarray:
    """Run a restoration model on one uint8 RGB image; returns uint8 RGB."""
    output = model(_image_batch(image, device))
    return output[0].clamp(0, 1).mul(255).round().permute(1, 2, 0).to(torch.uint8).cpu().numpy()


def _denoise_baseline(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    strength = max(3.0, 0.8 * sigma)

    def run(noisy: np.ndarray) -> np.ndarray:
        return cv2.fastNlMeansDenoisingColored(noisy, None, strength, strength, 7, 21)
    return run


def unsharp_mask(image: np.ndarray, amount: float = 1.0, sigma: float = 2.0) -> np.ndarray:
    """Classical sharpening: ``(1 + amount) * image - amount * GaussianBlur(image, sigma)``, saturated
    to 8 bits. The deblurring baseline uses the defaults, fixed beforehand and never tuned on val."""
    return cv2.addWeighted(image, 1.0 + amount, cv2.GaussianBlur(image, (0, 0), sigma), -amount, 0)


def _mean_psnrs(model: nn.Module, images: Sequence[np.ndarray], degradation: str, setting: float,
                device: torch.device, seed: int) -> tuple[float, float]:
    """Mean PSNR of the model and of the classical baseline on degraded copies of ``images``.
    For ``blur`` image ``i`` gets the kernel ``random_blur_kernel(default_rng(seed + i))`` and
    noise of sigma ``setting``; the baseline is the better mean of the blurred input and of its
    unsharp mask."""
    rng = np.random.default_rng(seed)
    ours, baseline, sharpened = [], [], []
    for index, image in enumerate(images):
        if degradation == "noise":
            degraded = add_noise(image, setting, rng)
            ours.append(psnr(restore_image(model, degraded, device), image))
            baseline.append(psnr(_denoise_baseline(setting)(degraded), image))
        elif degradation == "sr":
            scale = int(setting)
            reference = crop_to_multiple(image, scale)
            low = downscale_bicubic(reference, scale)
            ours.append(psnr_y(restore_image(model, low, device), reference, scale))
            baseline.append(psnr_y(upscale_bicubic(low, scale), reference, scale))
        elif degradation == "jpeg":
            degraded = jpeg_roundtrip(image, int(setting))
            ours.append(psnr(restore_image(model, degraded, device), image))
            baseline.append(psnr(degraded, image))
        elif degradation == "blur":
            kernel = random_blur_kernel(np.random.default_rng(seed + index))
            degraded = add_noise(blur(image, kernel), setting, rng)
            ours.append(psnr(restore_image(model, degraded, device), image))
            baseline.append(psnr(degraded, image))
            sharpened.append(psnr(unsharp_mask(degraded), image))
        else:
            raise ValueError(f"degradation must be 'noise', 'sr', 'jpeg' or 'blur', got {degradation!r}")
    best = max(np.mean(baseline), np.mean(sharpened)) if sharpened else np.mean(baseline)
    return float(np.mean(ours)), float(best)


@torch.inference_mode()
def evaluate_restoration(model: nn.Module, images: Sequence[np.ndarray], degradation: str,
                         setting: float, device: torch.device, seed: int = 0,
                         extras: Mapping[str, tuple[Sequence[np.ndarray], float]] | None = None) -> dict[str, float]:
    """Mean PSNR of the model and of the classical baseline on degraded copies of ``images``:
    ``noise`` (sigma ``setting``, RGB PSNR, baseline OpenCV non-local means), ``sr`` (scale
    ``setting``, Y PSNR with a border of the scale cropped, baseline bicubic), ``jpeg``
    (quality ``setting``, RGB PSNR, baseline the decoded JPEG) or ``blur`` (a fixed kernel per
    image drawn from ``seed`` plus its index, noise sigma ``setting``, RGB PSNR). The deblurring
    baseline is whichever of the blurred frame ("do nothing") and its unsharp mask has the higher
    mean PSNR over the set, so ``gain_db`` is measured against the stronger classical answer and
    the keys stay those of the other degradations. Each ``extras`` entry, prefix to
    (images, setting), is scored the same way as ``{prefix}_psnr``, ``{prefix}_baseline_psnr``
    and ``{prefix}_gain_db``."""
    model.eval()
    sets = {"": (images, setting)} | {f"{prefix}_": pair for prefix, pair in (extras or {}).items()}
    results: dict[str, float] = {}
    for prefix, (chosen, value) in sets.items():
        ours, baseline = _mean_psnrs(model, chosen, degradation, value, device, seed)
        results.update({f"{prefix}psnr": ours, f"{prefix}baseline_psnr": baseline, f"{prefix}gain_db": ours - baseline})
    return results


def siamfc_ious(net: SiamFCNet, sequence: TrackSequence, device: torch.device, lost_threshold: float) -> list[float]:
    """One-pass evaluation of our SiamFC tracker: initialised on the first frame's true box, the
    IoU of its box with the truth on every later frame."""
    net.eval()
    tracker = SiamFCTracker(net, device=device, lost_threshold=lost_threshold)
    tracker.init(sequence.frames[0], tuple(sequence.boxes[0]))
    return [box_iou(tracker.update(frame).box, truth) for frame, truth in zip(sequence.frames[1:], sequence.boxes[1:])]


def mil_ious(sequence: TrackSequence) -> list[float]:
    """The same one-pass evaluation of OpenCV's TrackerMIL; a frame where it reports failure keeps
    its previous box, as our tracker does when lost."""
    tracker = cv2.TrackerMIL_create()
    x, y, w, h = (int(round(v)) for v in sequence.boxes[0])
    tracker.init(cv2.cvtColor(sequence.frames[0], cv2.COLOR_RGB2BGR), (x, y, w, h))
    box: tuple[float, ...] = (x, y, w, h)
    ious = []
    for frame, truth in zip(sequence.frames[1:], sequence.boxes[1:]):
        found, found_box = tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if found:
            box = tuple(float(v) for v in found_box)
        ious.append(box_iou(box, truth))
    return ious


@torch.inference_mode()
def evaluate_tracking(net: SiamFCNet, validation: Iterable[TrackSequence], test: Iterable[TrackSequence],
                      lost_thresholds: Sequence[float], device: torch.device) -> dict[str, float]:
    """Pick the tracker's ``lost_threshold`` by success AUC on the validation sequences (ties go
    to the lower threshold), then report the one-pass success AUC on the held-out test sequences
    of our tracker with it (``auc``) and of OpenCV's TrackerMIL (``mil_auc``)."""
    if not lost_thresholds:
        raise ValueError("evaluate_tracking needs at least one lost threshold to choose from")
    candidates = sorted(float(t) for t in lost_thresholds)
    val_ious: dict[float, list[float]] = {t: [] for t in candidates}
    for sequence in validation:
        for threshold in candidates:
            val_ious[threshold] += siamfc_ious(net, sequence, device, threshold)
    val_auc = {threshold: success_auc(ious) for threshold, ious in val_ious.items()}
    chosen = max(candidates, key=lambda t: (val_auc[t], -t))
    ours, mil = [], []
    for sequence in test:
        ours += siamfc_ious(net, sequence, device, chosen)
        mil += mil_ious(sequence)
    auc, mil_auc = success_auc(ours), success_auc(mil)
    return {"val_auc": val_auc[chosen], "lost_threshold": chosen, "auc": auc, "mil_auc": mil_auc,
            "auc_gain": auc - mil_auc, "test_frames": float(len(ours))}


@torch.inference_mode()
def tracker_fps(net: SiamFCNet, frames: int = 5, size: tuple[int, int] = (480, 360)) -> float:
    """Tracker updates per second of an fp32 SiamFC tracker on the CPU for a ``size`` (width,
    height) frame, after initialisation and one warm-up update."""
    if frames < 1:
        raise ValueError(f"fps needs at least one timed frame, got {frames}")
    width, height = size
    frame = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    tracker = SiamFCTracker(net.cpu().float().eval(), device="cpu")
    tracker.init(frame, (width / 2 - 20, height / 2 - 20, 40, 40))
    tracker.update(frame)
    start = time.perf_counter()
    for _ in range(frames):
        tracker.update(frame)
    return frames / (time.perf_counter() - start)
