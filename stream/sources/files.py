"""Video files (any container and codec FFmpeg reads), decoded losslessly with PyAV."""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from fractions import Fraction

import av
from av.codec.hwaccel import HWAccel

from ..errors import SourceError
from ..frames import StreamInfo
from .base import MICROSECOND, Picture, Source, error_reason, rotate, stream_fps, video_stream


def damage_message(label: str, skipped: int, concealed: int) -> str | None:
    """The one warning for a damaged file: packets skipped, frames shown patched up; None for none."""
    parts = []
    if skipped:
        parts.append(f"{skipped} packet{'s' if skipped != 1 else ''} of {label} could not be decoded and "
                     f"{'were' if skipped != 1 else 'was'} skipped")
    if concealed:
        whose = "" if skipped else f" of {label}"
        parts.append(f"{concealed} frame{'s' if concealed != 1 else ''}{whose} had decoding errors, "
                     "patched up by the decoder's error concealment")
    return "; ".join(parts) or None


def _cut_short(location: str, stream: av.video.stream.VideoStream) -> bool:
    """True when the container's sample index points past the end of the local file."""
    if not os.path.isfile(location):
        return False
    ends = [entry.pos + entry.size for entry in stream.index_entries if entry.pos >= 0]
    return bool(ends) and max(ends) > os.path.getsize(location)


def _open_container(location: str, options: dict[str, str], timeout: float | None,
                    hwaccel: HWAccel | None) -> av.container.InputContainer:
    """Open ``location`` for decoding, with ``hwaccel`` when given; a hardware device that cannot
    be opened falls back to software decoding with a warning."""
    try:
        if hwaccel is not None:
            try:
                return av.open(location, options=options, timeout=timeout, hwaccel=hwaccel)
            except (av.FFmpegError, OSError) as error:
                warnings.warn(f"hardware decode (NVDEC) unavailable: {error_reason(error)}; decoding in software")
        return av.open(location, options=options, timeout=timeout)
    except av.FFmpegError as error:
        raise SourceError(f"{location}: cannot open as video: {error_reason(error)}") from error


class VideoFileSource(Source):
    """Any container/codec FFmpeg reads, decoded with PyAV; lossless, timestamps kept as stored."""

    def __init__(self, location: str, *, name: str, av_options: dict[str, str] | None = None,
                 timeout: float | None = None, hwaccel: HWAccel | None = None) -> None:
        self._label = location
        self._container = _open_container(location, dict(av_options or {}), timeout, hwaccel)
        try:
            stream = video_stream(self._container, location)
            stream.thread_type = "AUTO"
            self._skipped = self._concealed = 0
            self._decoded = self._decode_packets(stream)
            self._count = 0
            self._cut_short = _cut_short(location, stream)
            self._pending = self._first_frame()
            self._rotation = self._pending.rotation
            width, height = self._pending.width, self._pending.height
            if round(self._rotation / 90) % 2:
                width, height = height, width
            self._fps = stream_fps(stream)
            self._time_base = stream.time_base or self._pending.time_base or MICROSECOND
            self._last_pts: int | None = None
            info = StreamInfo(
                width=width,
                height=height,
                time_base=self._time_base,
                fps=self._fps,
                frame_count=stream.frames or None,
                live=False,
                audio_source=location if self._container.streams.audio else None,
                name=name,
                inputs=(location,) if os.path.exists(location) else (),
            )
        except BaseException:
            self._container.close()
            raise
        super().__init__(info)

    def _decode_packets(self, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        """Decoded frames, packet by packet: a packet the decoder rejects as invalid data is
        skipped and counted (a corrupted stretch costs its frames, not the rest of the file);
        frames the decoder patched up by error concealment are counted too."""
        for packet in self._container.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                self._skipped += 1
                continue
            for frame in frames:
                self._concealed += frame.is_corrupt
                yield frame

    def _first_frame(self) -> av.VideoFrame:
        try:
            frame = next(self._decoded, None)
        except av.FFmpegError as error:
            truncated = " (file is truncated)" if self._cut_short else ""
            raise SourceError(f"{self._label}: no decodable video frame{truncated}: {error_reason(error)}") from error
        if frame is None:
            damage = f" ({self._skipped} packets could not be decoded)" if self._skipped else ""
            raise SourceError(f"{self._label}: the video stream holds no frames{damage}")
        return frame

    def _read(self) -> Picture | None:
        with self._lock:
            if self._released:
                return None
            frame, self._pending = self._pending, None
            try:
                if frame is None:
                    frame = next(self._decoded, None)
                if frame is None:
                    return self._end()
                image = rotate(frame.to_ndarray(format="rgb24"), self._rotation)
            except (av.FFmpegError, ValueError) as error:
                raise SourceError(
                    f"{self._label}: decoding failed after {self._count} frames: {error_reason(error)}"
                ) from error
            pts = self._timestamp(frame)
            self._count += 1
        return Picture(image, pts)

    def _end(self) -> None:
        """End of stream; a file cut short of its own index is an error, after its frames."""
        if self._cut_short:
            raise SourceError(f"{self._label}: file is cut short (truncated); stopped after {self._count} frames")
        return None

    def _timestamp(self, frame: av.VideoFrame) -> int:
        """The frame's own pts; a missing one continues from the previous frame."""
        if frame.pts is not None:
            pts = frame.pts
        elif self._last_pts is None:
            pts = 0
        else:
            step = frame.duration
            if not step and self._fps:
                step = round(1 / (Fraction(self._fps) * self._time_base))
            pts = self._last_pts + max(1, step or 1)
        self._last_pts = pts
        return pts

    def _release(self) -> None:
        self._container.close()
        report = damage_message(self._label, self._skipped, self._concealed)
        if report:
            warnings.warn(report)
