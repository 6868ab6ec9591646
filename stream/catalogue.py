"""The ``densestream models`` table: every zoo model with the ``--task`` names it serves (its
defaults marked), whether trained weights ship, its headline held-out result and its CPU speed,
all read from the zoo and the weights manifest."""
from __future__ import annotations

from nets import zoo
from nets.zoo import ModelSpec

from .tasks import DEFAULT_MODELS, served_tasks

_RESTORATION_BASELINES = {
    "denoise": "OpenCV non-local means at sigma 25",
    "sr": "bicubic",
    "jpeg": "the JPEG at quality 20",
    "deblur": "the blurred frame or its unsharp mask",
}


def headline(spec: ModelSpec) -> str:
    """The shipped weights' main held-out figure, in words; '' for an untrained model."""
    metrics = spec.metrics
    if not spec.weights or not metrics:
        return ""
    if spec.task in ("segment", "segment+depth"):
        text = f"{100 * metrics['miou']:.1f} mIoU CamVid val"
        if "idd_group_miou" in metrics:
            text += (f"; IDD-lite held-out {100 * metrics['idd_group_miou']:.1f} group mIoU, "
                     f"sky IoU {100 * metrics['idd_sky_iou']:.0f}")
        if "clip_sky_share" in metrics:
            text += f"; dash-cam sky {100 * metrics['clip_sky_share']:.0f}% Sky"
        if "clip_cars_found" in metrics:
            text += f", {100 * metrics['clip_cars_found']:.0f}% of its cars Car"
        if "synth_abs_rel" in metrics:
            text += f"; depth AbsRel {metrics['synth_abs_rel']:.3f} on synthetic towns"
        if "car_contact_within_25" in metrics:
            text += f"; {100 * metrics['car_contact_within_25']:.0f}% of CamVid val cars as far as the road below"
        if "clip_lane_car_ratio" in metrics:
            text += f"; dash-cam cars at {metrics['clip_lane_car_ratio']:.2f}x the distance its lane marks give"
        return text
    if spec.task == "track":
        return f"success AUC {metrics['auc']:.3f} (OpenCV MIL {metrics['mil_auc']:.3f})"
    mode = str(spec.kwargs["mode"])
    text = f"{metrics['gain_db']:+.2f} dB over {_RESTORATION_BASELINES[mode]}"
    for key, label in (("photos_gain_db", "photographs"), ("q10_gain_db", "quality 10")):
        if key in metrics:
            text += f"; {label} {metrics[key]:+.2f} dB"
    return text


def model_table() -> list[str]:
    """One header line, one line per registered model, and two footnote lines."""
    rows = [("model", "--task", "weights", "CPU fps", "held-out result (nets/weights/manifest.json)")]
    for name in zoo.available():
        spec = zoo.spec(name)
        tasks = " ".join(task + ("*" if DEFAULT_MODELS.get(task) == name else "") for task in served_tasks(spec))
        fps = f"{spec.cpu_fps:.2f}" if spec.cpu_fps else "-"
        rows.append((name, tasks, "trained" if spec.weights else "untrained", fps, headline(spec)))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]).rstrip()
             for row in rows]
    notes = ["* the default model of that --task; choose another with --model NAME. CPU fps: 480x360, fp32.",
             "Restoration figures: first 10 CamVid val frames (docs/training.md adds all 101 for JPEG and x2)."]
    if any("IDD-lite" in (zoo.spec(name).data or "") for name in zoo.available()):
        notes.append("Weights trained on IDD-lite (India Driving Dataset) carry its terms: research use only.")
    return lines + notes
