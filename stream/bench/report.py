"""The bench result as a text table or JSON file."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DenseStreamError

ROW_TITLES = {
    "decode": "decode only (open_source)",
    "model": "model only (device tensors)",
    "pipeline_null": "pipeline -> null sink",
    "pipeline_mp4": "pipeline -> MP4 (H.264)",
    "naive": "naive loop (OpenCV, fp32 NCHW)",
    "live": "live (paced at input fps)",
    "supervision": "supervision process_video",
}


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row_notes(row: dict) -> list[str]:
    """Extra facts of a pipeline or live row for the table's notes column."""
    notes = []
    if row.get("device_stage_share_median") is not None:
        notes.append(f"device stage busy {100 * row['device_stage_share_median']:.0f}% of the wall time")
    if row.get("latency_ms_p50_median") is not None:
        notes.append(f"latency p50 {row['latency_ms_p50_median']:.0f} ms, p95 "
                     f"{row['latency_ms_p95_median']:.0f} ms, dropped {100 * row['drop_rate_median']:.0f}%")
    return notes


def format_table(result: dict) -> str:
    """The bench result as a Markdown table of medians, ratios and settings."""
    meta = result["meta"]
    lines = [
        f"device: {meta['device']} ({meta['device_name']}), torch {meta['torch']} "
        f"({meta['torch_threads']} threads), date {meta['date']}",
        f"task {meta['task']} (model {meta['model']}), precision {meta['precision']}"
        f"{', torch.compile' if meta.get('compiled') else ''}, batch "
        f"{meta['batch']}, {meta['resolution'][0]}x{meta['resolution'][1]}, {meta['frames']} frames "
        f"x {meta['repeat']} repeats, source {meta['source']}",
        "",
        "| row | frames/s | ms/frame | peak RSS MiB | peak device MiB | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in result["rows"].items():
        title = ROW_TITLES[name]
        if "skipped" in row:
            lines.append(f"| {title} | - | - | - | - | skipped: {row['skipped']} |")
            continue
        notes = "; ".join(_row_notes(row))
        lines.append(f"| {title} | {_number(row['fps_median'], 2)} | {_number(row['ms_per_frame_median'])} "
                     f"| {_number(row['peak_rss_mb'], 0)} | {_number(row['peak_device_mb'], 0)} | {notes} |")
    ratios = result["ratios"]
    lines += ["", "ratios of median frame rates: "
              f"pipeline->null / model-only {_number(ratios['pipeline_null_over_model'], 2)}, "
              f"pipeline->MP4 / naive {_number(ratios['pipeline_mp4_over_naive'], 2)}, "
              f"pipeline->null / naive {_number(ratios['pipeline_null_over_naive'], 2)}"]
    check = result.get("precision_check") or {}
    if "argmax_disagreement" in check:
        lines.append(f"{check['precision']} vs fp32: {100 * check['argmax_disagreement']:.3f}% of pixels "
                     f"change class on {check['frames']} frames")
    elif "skipped" in check:
        lines.append(f"precision check skipped: {check['skipped']}")
    return "\n".join(lines)


def format_soak(result: dict) -> str:
    """One line on the soak run's memory."""
    growth = result["rss_growth"]
    return (f"soak: {result['frames']} frames of {result['task']} at {result['resolution'][0]}x"
            f"{result['resolution'][1]} in {result['seconds']:.0f} s ({result['fps']:.1f} frames/s); "
            f"RSS {_number(result['rss_mb_at_checkpoint'])} MiB at frame {result['checkpoint']}, "
            f"{_number(result['rss_mb_at_end'])} MiB at the end "
            f"({'-' if growth is None else f'{100 * growth:+.1f}%'})")


def write_json(result: dict, path: str | os.PathLike) -> None:
    """All raw numbers as JSON."""
    try:
        Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise DenseStreamError(f"cannot write {path}: {exc.strerror or exc}") from exc
