"""Video files (.mp4/.mkv/.mov; H.264, HEVC or AV1) that keep the source's timestamps and audio."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stream.errors import SinkError
from stream.frames import Frame, StreamInfo
from stream.hwcodecs import SOFTWARE_ENCODER

from .audio import AudioInput, AudioTrack, FileAudio
from .base import Sink, check_rgb
from .encoders import encoder_settings
from .fragments import FRAGMENTED_FORMATS, recording_options, remux_faststart, trim_to_whole_fragments
from .safety import PendingFile, claim_output

log = logging.getLogger(__name__)

VIDEO_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
"""Video file extensions and the FFmpeg muxer that writes each."""
SYNC_SECONDS = 1.0
"""How often a recording is pushed from the page cache to the disk (fsync)."""


class VideoSink(Sink):
    """yuv420p video file (.mp4/.mkv/.mov) that keeps the source's timestamps and audio.

    ``codec`` is the FFmpeg encoder (libx264 by default, see ``encoders.ENCODERS``); ``crf`` its
    constant quality (None: the encoder's default), or ``bitrate`` (e.g. '4M') an average rate
    instead; ``preset`` an x264 speed name, mapped onto the encoder's own scale.

    Each output frame gets the input frame's pts (in the input time base), so variable frame rate
    and gaps survive. The file is recorded crash-safe (see ``stream.sinks.fragments``: every
    frame is on disk once encoded, without encoder delay, and synced to the disk about once a
    second); a normal close rewrites MP4/MOV by stream copy into a regular file with its index
    at the front, so browsers play and seek it.
    The source's audio (re-read from the source file, or as a live source demuxed it, on the
    frames' timeline) is stream-copied (re-encoded to AAC only if the container cannot hold it)
    and interleaved by time; when the run stops before the source ends, audio past the last video
    frame is left out so both tracks end together. Encoding happens in the caller's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: StreamInfo,
        *,
        crf: int | None = None,
        preset: str | None = None,
        codec: str = SOFTWARE_ENCODER,
        bitrate: str | int | None = None,
        inputs: Sequence[str | os.PathLike[str]] = (),
        overwrite: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        container_format = _video_format(self.path)
        self._encoder = encoder_settings(codec, crf, preset, bitrate)
        self._codec = codec
        self._info = info
        self._time_base = Fraction(info.time_base)
        if self._time_base <= 0:
            raise SinkError(f"cannot write {self.path}: time base {info.time_base} is not positive")
        audio = (info.audio_source,) if info.audio_source else ()
        claim_output(self.path, (*info.inputs, *audio, *inputs), overwrite, folder=False)
        self._file = PendingFile(self.path)
        try:
            self._container = av.open(
                str(self._file.path),
                "w",
                format=container_format,
                container_options=recording_options(container_format),
            )
        except (av.FFmpegError, OSError) as error:
            self._file.discard()
            raise SinkError(f"cannot create video file {self.path}: {error}") from error
        self._format = container_format
        self._sync_fd = os.open(self._file.path, os.O_RDONLY)
        self._synced = time.monotonic()
        self._write_failed = False
        self._video: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._last_pts: int | None = None
        self._last_step = 0
        self._warned_pts = False
        self._held: av.Packet | None = None
        self._muxed = False  # FFmpeg opens the file at the first mux: publishing waits for it
        self._audio: AudioTrack | None = None
        if info.audio_source or info.audio_feed:
            try:
                self._audio = AudioTrack(_audio_input(info), self._container, self.path.suffix)
            except SinkError:
                self._container.close()
                self._file.discard()
                raise

    def describe(self) -> str:
        return f"video file {self.path}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = check_rgb(image, self.describe())
        size = (image.shape[1], image.shape[0])
        if self._size is None:
            self._size = size
            self._open_video(*size, start=frame.seconds)
        elif size != self._size:
            raise SinkError(
                f"{self.describe()}: overlay size changed from {self._size[0]}x{self._size[1]} "
                f"to {size[0]}x{size[1]} during the run (images of several sizes: write an image folder, "
                "or give --size WxH)"
            )
        pts = self._next_pts(frame)
        video_frame = av.VideoFrame.from_ndarray(_pad_to_even(image), format="rgb24").reformat(
            format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        video_frame.pts = pts
        video_frame.time_base = self._time_base
        try:
            packets = self._video.encode(video_frame)
            if self._audio is not None:
                self._audio.mux_until(pts * self._time_base)
            self._mux_video(packets)
        except (av.FFmpegError, OSError, ValueError) as error:
            self._write_failed = True
            raise SinkError(f"cannot write frame {frame.index} to {self.path}: {error}") from error
        if self._muxed:
            self._file.publish()
        self._sync_now_and_then()

    def _mux_video(self, packets: list[av.Packet], last: bool = False) -> None:
        """Mux each packet once the next one is known, with the gap to it as its duration: a
        fragment per frame stores durations, not timestamps, so they must be exact. ``last``
        writes the held packet with the run's last frame interval."""
        for packet in packets:
            if self._held is not None:
                self._held.duration = max(1, packet.dts - self._held.dts)
                self._container.mux(self._held)
                self._muxed = True
            self._held = packet
        if last and self._held is not None:
            frame_rate = Fraction(self._info.fps).limit_denominator(1_000_000) if self._info.fps else None
            fallback = round(1 / (frame_rate * self._time_base)) if frame_rate else 1
            self._held.duration = max(1, self._last_step or fallback)
            self._container.mux(self._held)
            self._held = None

    def _sync_now_and_then(self) -> None:
        """Push what was written to the disk itself about once a second (power cuts)."""
        now = time.monotonic()
        if now - self._synced < SYNC_SECONDS:
            return
        self._synced = now
        with contextlib.suppress(OSError):
            os.fsync(self._sync_fd)

    def _open_video(self, width: int, height: int, start: Fraction | None = None) -> None:
        """Add the video stream; its size is the first overlay's, rounded up to even numbers.
        A live stream's audio starts with the first frame at ``start`` seconds (the source may
        have dropped the frames before it); a file's is copied from its own start."""
        stream = self._container.add_stream(self._codec)
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = self._time_base
        context = stream.codec_context
        context.time_base = self._time_base
        if self._info.fps:
            context.framerate = Fraction(self._info.fps).limit_denominator(1_000_000)
        context.colorspace = 1
        context.color_primaries = 1
        context.color_trc = 1
        context.color_range = 1
        context.options = dict(self._encoder.options)
        if self._encoder.bit_rate:
            context.bit_rate = self._encoder.bit_rate
        if self._encoder.tag and self.path.suffix.lower() in (".mp4", ".mov"):
            stream.codec_tag = self._encoder.tag
        self._video = stream
        if self._audio is not None:
            self._audio.attach(start if self._info.audio_feed else None)

    def _next_pts(self, frame: Frame) -> int:
        """The frame's pts in the stream time base, forced to increase (encoders require it)."""
        pts = round(frame.pts * Fraction(frame.time_base) / self._time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            if not self._warned_pts:
                log.warning(
                    "%s: frame %d has a non-increasing timestamp; such frames are shifted to "
                    "one tick after the previous frame", self.path, frame.index,
                )
                self._warned_pts = True
            pts = self._last_pts + 1
        if self._last_pts is not None:
            self._last_step = pts - self._last_pts
        self._last_pts = pts
        return pts

    def _video_end(self) -> Fraction:
        """Time just after the last written frame (its pts plus one frame interval)."""
        if self._last_pts is None:
            return Fraction(0)
        step = self._last_step
        if not step and self._info.fps:
            frame_rate = Fraction(self._info.fps).limit_denominator(1_000_000)
            step = round(1 / (frame_rate * self._time_base))
        return (self._last_pts + step) * self._time_base

    def _ran_to_the_end(self) -> bool:
        count = self._info.frame_count
        return count is not None and self.frames_written >= count

    def _close(self) -> None:
        try:
            self._finish_streams()
        finally:
            os.close(self._sync_fd)
            if self.frames_written == 0 and self._file.replacing:
                self._file.discard()
            else:
                self._file.publish()
        if self.frames_written and self._format in FRAGMENTED_FORMATS and not self.finish_quickly:
            try:
                remux_faststart(self.path, self._format, lambda: self.finish_quickly)
            except SinkError as error:
                log.warning("%s; the recording stays fragmented (it plays, seeks more slowly)", error)

    def _finish_streams(self) -> None:
        """Flush the encoder and the rest of the audio and close the container; a file that a
        failed write or close left cut off is trimmed to its last whole fragment."""
        failure: Exception | None = None
        try:
            if self._video is None:
                self._open_video(self._info.width, self._info.height)
            self._mux_video(self._video.encode(None))
            self._mux_video([], last=True)
            if self._audio is not None:
                self._audio.mux_until(None if self._ran_to_the_end() else self._video_end(), final=True)
            self._container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as error:
            failure = error
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as error:
                failure = failure or error
        if (failure or self._write_failed) and self._format in FRAGMENTED_FORMATS:
            trim_to_whole_fragments(self._file.path)
        if failure is not None:
            raise SinkError(f"cannot finalise {self.path}: {failure}") from failure


def _audio_input(info: StreamInfo) -> AudioInput:
    """The source file's audio, re-opened, or the live source's own audio feed."""
    if info.audio_source:
        return FileAudio(info.audio_source)
    return info.audio_feed.claim()


def _video_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise SinkError(
            f"cannot write video to {path}: unknown extension {suffix or '(none)'!r}, "
            f"use one of {', '.join(VIDEO_FORMATS)}"
        )
    return VIDEO_FORMATS[suffix]


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by repeating the last row or column (yuv420p needs even sizes)."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
