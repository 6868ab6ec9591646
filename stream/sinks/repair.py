"""Recovering a recording that was cut off (power cut, kill, full disk): a copy of it trimmed to
its last whole fragment and rewritten by stream copy as a regular file with its index at the
front. The cut-off file itself is never changed."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av

from stream.errors import SinkError

from .fragments import FRAGMENTED_FORMATS, remux_faststart, whole_fragments_end
from .safety import claim_output

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class Repaired:
    """What a repair kept: video frames, their span in seconds, and the bytes cut off."""

    frames: int
    seconds: float
    trimmed_bytes: int


def default_repaired_path(recording: Path) -> Path:
    """``NAME-repaired.EXT`` beside ``NAME.EXT``."""
    return recording.with_name(f"{recording.stem}-repaired{recording.suffix}")


def repair_recording(recording: Path, target: Path, overwrite: bool = False) -> Repaired:
    """Write a playable, seekable copy of the cut-off ``recording`` to ``target``."""
    if not recording.is_file():
        raise SinkError(f"no such recording: {recording}")
    container = CONTAINERS.get(recording.suffix.lower())
    if container is None:
        raise SinkError(f"{recording}: repair reads .mp4, .mov and .mkv recordings, not '{recording.suffix}'")
    if CONTAINERS.get(target.suffix.lower()) != container:
        raise SinkError(f"the repaired copy {target} must have the recording's container ({recording.suffix})")
    claim_output(target, [recording], overwrite, folder=False)
    partial = target.with_name(f".{target.stem}.repair{target.suffix}")
    try:
        shutil.copyfile(recording, partial)
        trimmed = 0
        if container in FRAGMENTED_FORMATS:
            trimmed = partial.stat().st_size - whole_fragments_end(partial)
            os.truncate(partial, partial.stat().st_size - trimmed)
        frames, seconds = _video_span(partial, recording)
        remux_faststart(partial, container)
        os.replace(partial, target)
    except OSError as error:
        raise SinkError(f"cannot write {target}: {error.strerror or error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return Repaired(frames, seconds, trimmed)


def _video_span(path: Path, recording: Path) -> tuple[int, float]:
    """Video packets and the seconds from the first to the last one's end, by demuxing only."""
    try:
        with av.open(str(path)) as source:
            if not source.streams.video:
                raise SinkError(f"{recording} holds no video stream")
            video = source.streams.video[0]
            times = [(packet.pts, packet.duration or 0) for packet in source.demux(video) if packet.pts is not None]
    except av.FFmpegError as error:
        raise SinkError(f"{recording} cannot be recovered (no complete fragment or not a recording): "
                        f"{error.strerror or error}") from error
    if not times:
        raise SinkError(f"{recording} holds no complete video frame: nothing can be recovered")
    start = min(pts for pts, _ in times)
    end = max(pts + duration for pts, duration in times)
    return len(times), float((end - start) * video.time_base)
