"""Sinks: where each processed frame goes (video file, window, image folder, raw outputs, nowhere).

Every sink takes ``write(frame, image, outputs)`` once per frame, where ``image`` is the composed
overlay (H' x W' x 3 uint8 RGB, constant size over a run) and ``outputs`` the raw host-side
predictions (``labels``, ``depth``, ``box``; all optional). ``close()`` finalises and may be called
any number of times, after an error, from another thread or from a signal handler.
Output locations are checked when the sink is built, so a bad path fails before any work is done.
"""
from __future__ import annotations

import inspect
import logging
import os
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from stream.errors import SinkError
from stream.frames import Frame, StreamInfo
from stream.hwcodecs import NVENC, SOFTWARE_ENCODER

log = logging.getLogger(__name__)

VIDEO_FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
"""Video file extensions and the FFmpeg muxer that writes each."""

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)
IMAGE_EXTENSIONS = ("png", "jpg")
DEPTH_FORMATS = ("png16", "npy", "both")
QUIT_KEYS = (ord("q"), ord("Q"), 27)
TRACKS_HEADER = "frame,x,y,w,h,score,lost\n"


class Sink(ABC):
    """Common behaviour: frame counting, write-after-close errors, thread- and signal-safe close.

    ``close()`` from another thread waits for a write in progress to finish; ``close()`` from a
    signal handler that interrupted this sink's own ``write()`` is deferred to the end of that
    write, so the frame being written is never half-finalised.
    """

    def __init__(self) -> None:
        self.frames_written = 0
        self.stop_requested = False
        self._closed = False
        self._lock = threading.Lock()
        self._writing_thread: int | None = None
        self._close_deferred = False

    def write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        """Consume one processed frame."""
        self._writing_thread = threading.get_ident()
        try:
            with self._lock:
                if self._closed:
                    raise SinkError(f"{self.describe()} is already closed")
                self._write(frame, image, outputs)
                self.frames_written += 1
        finally:
            self._writing_thread = None
            if self._close_deferred:
                self.close()

    def close(self) -> None:
        """Finalise the output; later calls do nothing."""
        if self._writing_thread == threading.get_ident():
            self._close_deferred = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close()

    def describe(self) -> str:
        """One short phrase naming the output, for messages."""
        return type(self).__name__

    @abstractmethod
    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        """Sink-specific handling of one frame (called under the lock)."""

    def _close(self) -> None:
        """Sink-specific finalisation (called once, under the lock)."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullSink(Sink):
    """Discards everything; counts frames (benchmarks, dry runs)."""

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        return None


class VideoSink(Sink):
    """H.264 yuv420p video file (.mp4/.mkv/.mov) that keeps the source's timestamps and audio.

    Each output frame gets the input frame's pts (in the input time base), so variable frame rate
    and gaps survive; MP4/MOV get ``+faststart`` so browsers can play them while downloading.
    The source's audio is stream-copied (re-encoded to AAC only if the container cannot hold it)
    and interleaved by time; when the run stops before the source ends, audio past the last video
    frame is left out so both tracks end together. Encoding happens in the caller's thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: StreamInfo,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        codec: str = SOFTWARE_ENCODER,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        container_format = _video_format(self.path)
        self._encoder_options = _encoder_options(codec, crf, preset)
        self._codec = codec
        self._info = info
        self._time_base = Fraction(info.time_base)
        if self._time_base <= 0:
            raise SinkError(f"cannot write {self.path}: time base {info.time_base} is not positive")
        _probe_writable_file(self.path)
        try:
            self._container = av.open(
                str(self.path),
                "w",
                format=container_format,
                container_options=_container_options(container_format),
            )
        except (av.FFmpegError, OSError) as error:
            raise SinkError(f"cannot create video file {self.path}: {error}") from error
        self._video: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._last_pts: int | None = None
        self._last_step = 0
        self._warned_pts = False
        self._audio: _AudioTrack | None = None
        if info.audio_source:
            try:
                self._audio = _AudioTrack(info.audio_source, self._container, self.path.suffix)
            except SinkError:
                self._container.close()
                raise

    def describe(self) -> str:
        return f"video file {self.path}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = _check_rgb(image, self.describe())
        size = (image.shape[1], image.shape[0])
        if self._size is None:
            self._size = size
            self._open_video(*size)
        elif size != self._size:
            raise SinkError(
                f"{self.describe()}: overlay size changed from {self._size[0]}x{self._size[1]} "
                f"to {size[0]}x{size[1]} during the run"
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
            self._container.mux(packets)
        except (av.FFmpegError, OSError, ValueError) as error:
            raise SinkError(f"cannot write frame {frame.index} to {self.path}: {error}") from error

    def _open_video(self, width: int, height: int) -> None:
        """Add the H.264 stream; its size is the first overlay's, rounded up to even numbers."""
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
        context.options = dict(self._encoder_options)
        self._video = stream
        if self._audio is not None:
            self._audio.attach()

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
            if self._video is None:
                self._open_video(self._info.width, self._info.height)
            self._container.mux(self._video.encode(None))
            if self._audio is not None:
                self._audio.mux_until(None if self._ran_to_the_end() else self._video_end())
            self._container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as error:
            raise SinkError(f"cannot finalise {self.path}: {error}") from error
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as error:
                raise SinkError(f"cannot finalise {self.path}: {error}") from error


class _AudioTrack:
    """The source's first audio stream, fed into an output container in time order.

    Stream-copied when the container accepts the codec, otherwise re-encoded to AAC, otherwise
    dropped; the last two are logged as warnings. The output stream is added by ``attach`` so
    that it follows the video stream.
    """

    def __init__(self, source: str, output: av.container.OutputContainer, extension: str) -> None:
        try:
            self._input = av.open(source)
        except (av.FFmpegError, OSError) as error:
            raise SinkError(f"cannot open the audio source {source}: {error}") from error
        self._output = output
        self._source_stream = self._input.streams.audio[0] if self._input.streams.audio else None
        self._stream = None
        self._transcoding = False
        self._pending: av.Packet | None = None
        self._packets: Iterator[av.Packet] = iter(())
        if self._source_stream is None:
            log.warning("%s has no audio stream; writing video only", source)
            return
        codec = self._source_stream.codec_context.name
        supported = output.supported_codecs
        self._transcoding = codec not in supported
        if self._transcoding and "aac" in supported:
            log.warning(
                "audio codec %s cannot go into %s files; re-encoding the audio to AAC", codec, extension
            )
        elif self._transcoding:
            log.warning("audio codec %s cannot go into %s files; dropping the audio", codec, extension)
            self._source_stream = None

    def attach(self) -> None:
        """Add the output audio stream (after the video one) and start reading the source."""
        if self._source_stream is None:
            return
        if not self._transcoding:
            try:
                self._stream = self._output.add_stream_from_template(self._source_stream)
            except ValueError as error:
                log.warning("cannot copy the audio (%s); re-encoding it to AAC", error)
                self._transcoding = True
        if self._transcoding:
            self._stream = self._output.add_stream(
                "aac", rate=self._source_stream.rate, layout=self._source_stream.layout
            )
        self._packets = self._read(self._source_stream)

    def _read(self, source_stream: av.audio.stream.AudioStream) -> Iterator[av.Packet]:
        """Output-ready packets: the source's own, or AAC ones (encoder drained at the end)."""
        for packet in self._input.demux(source_stream):
            if not self._transcoding:
                if packet.dts is not None:
                    packet.stream = self._stream
                    yield packet
                continue
            for frame in packet.decode():
                yield from self._stream.encode(frame)
        if self._transcoding:
            yield from self._stream.encode(None)

    def mux_until(self, limit: Fraction | None) -> None:
        """Write every audio packet that starts before ``limit`` seconds (all of them if None)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            start = self._pending.pts if self._pending.pts is not None else self._pending.dts
            if limit is not None and start * self._pending.time_base >= limit:
                return
            self._output.mux(self._pending)
            self._pending = None

    def close(self) -> None:
        self._input.close()


class WindowSink(Sink):
    """On-screen OpenCV window; q, Q or Esc (or closing the window) sets ``stop_requested``.

    OpenCV's GUI (Qt) must be driven from one thread, so the window is created by the first
    ``write`` (the sink's thread) and destroyed only when ``close`` runs in that same thread;
    a window left open by a close from elsewhere goes away with the process.
    """

    def __init__(self, title: str = "densestream") -> None:
        super().__init__()
        self.title = title
        _require_display()
        self._gui_thread: int | None = None

    def describe(self) -> str:
        return f"window {self.title!r}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = _check_rgb(image, self.describe())
        try:
            if self._gui_thread is None:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                self._gui_thread = threading.get_ident()
            cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            key = cv2.waitKey(1) & 0xFF
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error as error:
            raise SinkError(f"cannot show frame {frame.index}: {_one_line(str(error))}") from error
        if key in QUIT_KEYS or visible < 1:
            self.stop_requested = True

    def _close(self) -> None:
        if self._gui_thread != threading.get_ident():
            return
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            log.debug("window %r was already gone", self.title)


class ImageFolderSink(Sink):
    """One overlay image per frame, ``<dir>/<frame name>.<ext>`` (png lossless, jpg quality 95)."""

    def __init__(self, directory: str | os.PathLike[str], ext: str = "png") -> None:
        super().__init__()
        self.ext = ext.lower().lstrip(".")
        if self.ext not in IMAGE_EXTENSIONS:
            raise SinkError(f"unknown image format {ext!r}: use one of {', '.join(IMAGE_EXTENSIONS)}")
        self.directory = _prepare_directory(Path(directory))

    def describe(self) -> str:
        return f"image folder {self.directory}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        image = _check_rgb(image, self.describe())
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if self.ext == "jpg" else []
        path = self.directory / f"{_frame_name(frame)}.{self.ext}"
        _write_image(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)


class RawSink(Sink):
    """Raw predictions per frame, for evaluation and post-processing.

    - ``labels`` (H x W uint8 class ids) -> ``<name>_labels.png``, 8-bit, the ids themselves.
    - ``depth`` (H x W float metres) -> ``<name>_depth.png``: 16-bit, millimetres, rounded and
      clipped to 0..65535 (so 65.535 m saturates; NaN and negative depths become 0 = no depth),
      and/or ``<name>_depth.npy``: the exact float32 metres.
    - ``box`` (x, y, w, h, score, lost) -> one row of ``tracks.csv``, flushed at once so a
      killed run keeps every row written.
    """

    def __init__(self, directory: str | os.PathLike[str], depth_format: str = "png16") -> None:
        super().__init__()
        if depth_format not in DEPTH_FORMATS:
            choices = ", ".join(DEPTH_FORMATS)
            raise SinkError(f"unknown depth format {depth_format!r}: use one of {choices}")
        self.depth_format = depth_format
        self.directory = _prepare_directory(Path(directory))
        self._tracks = None

    def describe(self) -> str:
        return f"raw output folder {self.directory}"

    def _write(self, frame: Frame, image: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        name = _frame_name(frame)
        labels = outputs.get("labels")
        if labels is not None:
            _write_image(self.directory / f"{name}_labels.png", _check_labels(labels), [])
        depth = outputs.get("depth")
        if depth is not None:
            depth = _check_depth(depth)
            if self.depth_format in ("png16", "both"):
                _write_image(self.directory / f"{name}_depth.png", depth_to_millimetres(depth), [])
            if self.depth_format in ("npy", "both"):
                self._save_npy(self.directory / f"{name}_depth.npy", depth)
        box = outputs.get("box")
        if box is not None:
            self._append_track(frame.index, box)

    def _save_npy(self, path: Path, depth: np.ndarray) -> None:
        try:
            np.save(path, depth)
        except OSError as error:
            raise SinkError(f"cannot write {path}: {error.strerror or error}") from error

    def _append_track(self, index: int, box: tuple) -> None:
        if len(box) != 6:
            raise SinkError(
                f"tracking box of frame {index} has {len(box)} values, "
                "expected (x, y, w, h, score, lost)"
            )
        x, y, w, h, score, lost = box
        row = [str(index), *(repr(float(v)) for v in (x, y, w, h, score)), str(int(bool(lost)))]
        path = self.directory / "tracks.csv"
        try:
            if self._tracks is None:
                self._tracks = open(path, "w", encoding="utf-8", newline="")
                self._tracks.write(TRACKS_HEADER)
            self._tracks.write(",".join(row) + "\n")
            self._tracks.flush()
        except OSError as error:
            raise SinkError(f"cannot write {path}: {error.strerror or error}") from error

    def _close(self) -> None:
        if self._tracks is not None:
            self._tracks.close()


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres to uint16 millimetres: rounded, clipped to 0..65535, NaN and -inf to 0, +inf to 65535."""
    millimetres = np.nan_to_num(depth.astype(np.float64) * 1000.0, nan=0.0, posinf=65535.0, neginf=0.0)
    return np.clip(np.rint(millimetres), 0, 65535).astype(np.uint16)


def open_sink(target: str, info: StreamInfo, codec: str | None = None, **options) -> Sink:
    """Build the sink a CLI-style target names.

    ``null`` -> NullSink; ``window`` or ``show`` -> WindowSink (title defaults to the stream name);
    ``*.mp4|*.mkv|*.mov`` -> VideoSink; an existing directory, a path ending in a slash or a path
    without extension -> ImageFolderSink. ``codec`` (the H.264 encoder, see
    ``stream.hwcodecs.pick_encoder``) applies to video files and is ignored by the others;
    ``options`` go to the chosen sink's constructor.
    """
    if target == "null":
        return _build(NullSink, **options)
    if target in ("window", "show"):
        return _build(WindowSink, options.pop("title", info.name), **options)
    path = Path(target)
    suffix = path.suffix.lower()
    if target.endswith(("/", os.sep)) or path.is_dir() or not suffix:
        return _build(ImageFolderSink, path, **options)
    if suffix in VIDEO_FORMATS:
        return _build(VideoSink, path, info, **({"codec": codec} if codec else {}), **options)
    raise SinkError(
        f"unknown output extension {suffix!r} in {target!r}: use a .mp4, .mkv or .mov file, "
        "a directory, 'null' or 'window'"
    )


def _build(cls: type[Sink], *args, **options) -> Sink:
    """Construct ``cls``, turning options it does not take into a SinkError."""
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as error:
        message = f"{cls.__name__} does not accept the options {sorted(options)}: {error}"
        raise SinkError(message) from error
    return cls(*args, **options)


def _video_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise SinkError(
            f"cannot write video to {path}: unknown extension {suffix or '(none)'!r}, "
            f"use one of {', '.join(VIDEO_FORMATS)}"
        )
    return VIDEO_FORMATS[suffix]


def _container_options(container_format: str) -> dict[str, str]:
    """Muxer settings that keep the file browser-friendly and the source's timestamps unshifted.

    MP4/MOV: index (moov) at the front so playback starts while downloading; their edit lists
    already absorb B-frame and AAC-priming negative timestamps. Matroska has no edit lists, so
    FFmpeg would otherwise shift every timestamp by the first negative one.
    """
    if container_format in ("mp4", "mov"):
        return {"movflags": "+faststart"}
    return {"avoid_negative_ts": "disabled"}


def _encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """Validated H.264 settings: constant quality ``crf``, High profile; libx264 takes the speed
    ``preset``, NVENC (``h264_nvenc``) its own medium preset with ``crf`` as its quality target."""
    if codec not in (SOFTWARE_ENCODER, NVENC):
        raise SinkError(f"unsupported video encoder {codec!r}: use {SOFTWARE_ENCODER} or {NVENC}")
    if codec not in av.codecs_available:
        raise SinkError(f"this FFmpeg build has no {codec} encoder; install PyAV wheels from PyPI")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise SinkError(f"crf must be an integer from 0 (lossless) to 51 (worst), got {crf!r}")
    if codec == NVENC:
        return {"rc": "vbr", "cq": str(crf), "preset": "p4", "profile": "high"}
    if preset not in X264_PRESETS:
        raise SinkError(f"unknown x264 preset {preset!r}: use one of {', '.join(X264_PRESETS)}")
    return {"crf": str(crf), "preset": preset, "profile": "high"}


def _probe_writable_file(path: Path) -> None:
    """Create the parent directory and the (empty) file now, so a bad path fails before any work."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb"):
            pass
    except OSError as error:
        raise SinkError(f"cannot create {path}: {error.strerror or error}") from error


def _prepare_directory(directory: Path) -> Path:
    """Create ``directory`` if needed and check that files can be written into it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise SinkError(f"cannot write into directory {directory}: {error.strerror or error}") from error
    return directory


def _require_display() -> None:
    """Fail clearly without GUI support or, on Linux, without X11/Wayland (Qt would abort)."""
    if _opencv_gui_backend() == "NONE":
        raise SinkError(
            "cannot open a window: this OpenCV build has no GUI support "
            "(opencv-python-headless?); install opencv-python or write to a file"
        )
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_display:
        raise SinkError(
            "cannot open a window: no display ($DISPLAY and $WAYLAND_DISPLAY are unset); "
            "write to a file instead, e.g. out.mp4"
        )


def _opencv_gui_backend() -> str:
    """The GUI backend OpenCV was built with ("QT5", "GTK3", "WIN32UI", "NONE", ...)."""
    for line in cv2.getBuildInformation().splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "GUI":
            return value.strip().upper()
    return "UNKNOWN"


def _frame_name(frame: Frame) -> str:
    """File stem for a frame: its source name, or its zero-padded index when it has none."""
    name = str(frame.meta.get("name") or f"{frame.index:06d}")
    if "/" in name or os.sep in name or name in (".", ".."):
        raise SinkError(f"frame {frame.index} has a name unusable as a file name: {name!r}")
    return name


def _check_rgb(image: np.ndarray, where: str) -> np.ndarray:
    if not (_is_array(image, ndim=3, dtype=np.uint8) and image.shape[2] == 3):
        raise SinkError(f"{where}: expected an H x W x 3 uint8 RGB image, got {_array_summary(image)}")
    return np.ascontiguousarray(image)


def _check_labels(labels: np.ndarray) -> np.ndarray:
    if not _is_array(labels, ndim=2, dtype=np.uint8):
        raise SinkError(
            f"labels must be an H x W uint8 array of class ids, got {_array_summary(labels)}"
        )
    return np.ascontiguousarray(labels)


def _check_depth(depth: np.ndarray) -> np.ndarray:
    if not _is_array(depth, ndim=2, dtype=np.floating):
        raise SinkError(f"depth must be an H x W float array in metres, got {_array_summary(depth)}")
    return np.ascontiguousarray(depth, dtype=np.float32)


def _is_array(value: object, *, ndim: int, dtype: type) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == ndim and np.issubdtype(value.dtype, dtype)


def _array_summary(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} of {value.dtype}"
    return type(value).__name__


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by repeating the last row or column (yuv420p needs even sizes)."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _write_image(path: Path, image: np.ndarray, params: list[int]) -> None:
    try:
        written = cv2.imwrite(str(path), image, params)
    except cv2.error as error:
        raise SinkError(f"cannot write {path}: {_one_line(str(error))}") from error
    if not written:
        raise SinkError(f"cannot write {path}")


def _one_line(text: str) -> str:
    """OpenCV error texts span several lines; messages here are one line."""
    return " ".join(text.split())
