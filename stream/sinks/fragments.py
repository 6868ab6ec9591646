"""Crash-safe recording: the muxer settings that put every frame on disk as it is encoded,
trimming a cut-off fragmented MP4 to its last whole fragment, and the remux into a regular
faststart MP4 once a run finishes normally.

While recording, MP4/MOV files are fragmented with a fragment cut at every packet
(``frag_duration`` of 1 microsecond; the ``moov`` is written with the first fragment, so that
its edit list can hold the audio's priming offset; ``frag_every_frame`` would be shorter to say
but gets the audio's fragment times wrong) and Matroska files get one cluster per frame;
FFmpeg's I/O buffer is flushed after every packet. Whatever stops the process, the file then holds every packet muxed
so far, and a file cut inside a fragment header (a full disk, a power cut) plays again once
``trim_to_whole_fragments`` has dropped the cut-off tail.
"""
from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

import av

from stream.errors import SinkError

log = logging.getLogger(__name__)

FRAGMENTED_FORMATS = ("mp4", "mov")
MAX_INTERLEAVE_MICROSECONDS = "500000"
"""How far FFmpeg may hold one stream's packets back while it waits for the other's."""


def recording_options(container_format: str) -> dict[str, str]:
    """Muxer settings for recording (see the module docstring).

    Matroska has no edit lists, so FFmpeg would otherwise shift every timestamp by the first
    negative one (B-frames, AAC priming); ``avoid_negative_ts=disabled`` keeps them as given.
    """
    common = {"flush_packets": "1", "max_interleave_delta": MAX_INTERLEAVE_MICROSECONDS}
    if container_format in FRAGMENTED_FORMATS:
        return {**common, "movflags": "delay_moov+default_base_moof", "frag_duration": "1"}
    return {**common, "cluster_time_limit": "0", "avoid_negative_ts": "disabled"}


def remux_faststart(path: Path, container_format: str, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Rewrite a finished fragmented recording as a regular MP4/MOV with its index (moov) at the
    front, by stream copy, replacing ``path`` atomically; on failure, or once ``cancelled()``
    turns true, ``path`` is left as it was."""
    partial = path.with_name(f".{path.stem}.remux{path.suffix}")
    try:
        with av.open(str(path)) as source, av.open(
            str(partial), "w", format=container_format, container_options={"movflags": "+faststart"}
        ) as target:
            kept = [stream for stream in source.streams if stream.type in ("video", "audio")]
            copies = {stream.index: _copy_of(target, stream) for stream in kept}
            for packet in source.demux(kept):
                if cancelled():
                    break
                if packet.dts is None:
                    continue
                packet.stream = copies[packet.stream.index]
                target.mux(packet)
        if cancelled():
            partial.unlink()
            return
        os.replace(partial, path)
    except (av.FFmpegError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        raise SinkError(f"cannot rewrite {path} with its index at the front: {error}") from error


def _copy_of(target: av.container.OutputContainer, stream: av.stream.Stream) -> av.stream.Stream:
    """A stream-copy twin of ``stream`` in ``target``: opaque, so codecs that FFmpeg decodes
    with another library's name (AV1 through libdav1d) need no encoder of that name, and with
    the codec tag kept (HEVC stays ``hvc1``, which Apple players require)."""
    copy = target.add_stream_from_template(stream, opaque=True)
    if stream.codec_tag:
        copy.codec_tag = stream.codec_tag
    return copy


def whole_fragments_end(path: Path) -> int:
    """The byte offset just after the last complete box of a fragmented MP4/MOV (a ``moof``
    counts only with the ``mdat`` after it): where a file cut short mid-write opens again."""
    size = path.stat().st_size
    keep = position = 0
    with open(path, "rb") as handle:
        while position + 8 <= size:
            handle.seek(position)
            length, kind = struct.unpack(">I4s", handle.read(8))
            if length == 1 and position + 16 <= size:
                length = struct.unpack(">Q", handle.read(8))[0]
            if length < 8 or position + length > size:
                break
            position += length
            if kind != b"moof":
                keep = position
    return keep


def trim_to_whole_fragments(path: Path) -> int:
    """Cut a fragmented MP4/MOV after its last complete box, with a warning; returns the bytes
    removed."""
    size, keep = path.stat().st_size, whole_fragments_end(path)
    if keep < size:
        os.truncate(path, keep)
        log.warning("%s was cut off mid-write; trimmed %d bytes to its last whole fragment", path, size - keep)
    return size - keep
