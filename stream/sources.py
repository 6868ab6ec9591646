"""Video sources: ``open_source(spec)`` turns a file, camera, image folder, network URL or
``synth://`` scene into an iterable of :class:`~stream.frames.Frame`.

Offline sources (video files, image folders, synth) are lossless: every frame, in order, with
the container's own timestamps. Live sources (cameras, network streams) hand over only the
newest frame and stamp frames on one strictly increasing microsecond timeline that survives
reconnects. The ``live`` option overrides the policy: an offline input made live is paced in
real time by its timestamps; a live input made offline hands over every frame. Every failure
is a :class:`~stream.errors.SourceError` whose message names the input.
"""
from __future__ import annotations

import glob
import math
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import av
import cv2
import numpy as np
from av.codec.hwaccel import HWAccel

from .errors import SourceError
from .frames import Frame, StreamInfo

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp"})
# An http(s) URL whose path ends in one of these is a finished file: read offline, losslessly.
FILE_URL_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
IMAGE_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm", ".pfm", ".exr", ".hdr", ".pic", ".sr", ".ras", ".jp2", ".avif",
})
# Probe live streams for at most 1 s (FFmpeg's 5 s default delays the first frame).
LIVE_AV_OPTIONS = {"analyzeduration": "1000000"}
MICROSECOND = Fraction(1, 1_000_000)
DEFAULT_IMAGE_FPS = 25.0


@dataclass(slots=True)
class _Picture:
    """One decoded image before it becomes a Frame: pixels, timestamp and an optional name."""

    image: np.ndarray
    pts: int | None
    captured: float = field(default_factory=time.monotonic)
    name: str | None = None


class Source(ABC):
    """Frames from one input: iterate once (from any thread), then ``close()`` or use ``with``."""

    def __init__(self, info: StreamInfo) -> None:
        self.info = info
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._released = False
        self._iterated = False
        self._paced = False

    def _use_live_policy(self, live: bool) -> None:
        """Override the input's natural policy; offline inputs made live play in real time."""
        self.info.live = live
        self._paced = live

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._iterated:
                raise SourceError(f"{self.info.name}: a source can be iterated only once; open it again")
            if self._released:
                raise SourceError(f"{self.info.name}: source is closed")
            self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        index = 0
        clock_origin: float | None = None
        try:
            while not self._stop.is_set():
                picture = self._read()
                if picture is None:
                    return
                captured = picture.captured
                if self._paced:
                    seconds = float(picture.pts * self.info.time_base)
                    if clock_origin is None:
                        clock_origin = time.monotonic() - seconds
                    if self._stop.wait(max(0.0, clock_origin + seconds - time.monotonic())):
                        return
                    captured = time.monotonic()  # a paced frame "arrives" when it is due
                yield Frame(
                    index=index,
                    pts=picture.pts,
                    time_base=self.info.time_base,
                    image=picture.image,
                    captured=captured,
                    meta={"name": picture.name or f"frame_{index:06d}"},
                )
                index += 1
        finally:
            self.close()

    @abstractmethod
    def _read(self) -> _Picture | None:
        """The next picture with its final pts, or None at the end (or once closed)."""

    @abstractmethod
    def _release(self) -> None:
        """Free the underlying resources; called once, with ``self._lock`` held."""

    def close(self) -> None:
        """Stop iteration and free resources; safe to call twice and from another thread."""
        self._stop.set()
        with self._lock:
            if not self._released:
                self._released = True
                self._release()

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run."""
        return self._released

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(error: BaseException) -> str:
    """A short, single-line reason from a PyAV/OpenCV/OS error."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _safe_name(text: str) -> str:
    """A filename-safe version of ``text`` (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "stream"


def _rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` (rounded to a quarter turn), as FFmpeg displays it."""
    quarter_turns = round(degrees / 90) % 4
    if quarter_turns:
        image = np.rot90(image, quarter_turns)
    return np.ascontiguousarray(image)


def _to_rgb8(image: np.ndarray, label: str) -> np.ndarray:
    """OpenCV pixels (grey/BGR/BGRA; 8-bit, 16-bit or float) to C-contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"{label}: unsupported pixel type {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 3:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB))
    raise SourceError(f"{label}: unsupported channel count {image.shape[2]}")


def _fps_time_base(fps: float, label: str) -> tuple[float, Fraction]:
    """Validate a frame rate and return it with the time base 1/fps as an exact fraction."""
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        raise SourceError(f"{label}: fps must be a number, got {fps!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise SourceError(f"{label}: fps must be positive, got {fps}")
    return fps, 1 / Fraction(fps).limit_denominator(1001)


def _video_stream(container: av.container.InputContainer, label: str) -> av.video.stream.VideoStream:
    """The first real video stream (cover art does not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise SourceError(f"{label}: no video stream (audio-only or data file)")


def _stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


# ---------------------------------------------------------------------------- video files


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
                warnings.warn(f"hardware decode (NVDEC) unavailable: {_reason(error)}; decoding in software")
        return av.open(location, options=options, timeout=timeout)
    except av.FFmpegError as error:
        raise SourceError(f"{location}: cannot open as video: {_reason(error)}") from error


class VideoFileSource(Source):
    """Any container/codec FFmpeg reads, decoded with PyAV; lossless, timestamps kept as stored."""

    def __init__(self, location: str, *, name: str, av_options: dict[str, str] | None = None,
                 timeout: float | None = None, hwaccel: HWAccel | None = None) -> None:
        self._label = location
        self._container = _open_container(location, dict(av_options or {}), timeout, hwaccel)
        try:
            stream = _video_stream(self._container, location)
            stream.thread_type = "AUTO"
            self._decoded = self._container.decode(stream)
            self._count = 0
            self._cut_short = _cut_short(location, stream)
            self._pending = self._first_frame()
            self._rotation = self._pending.rotation
            width, height = self._pending.width, self._pending.height
            if round(self._rotation / 90) % 2:
                width, height = height, width
            self._fps = _stream_fps(stream)
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
            )
        except BaseException:
            self._container.close()
            raise
        super().__init__(info)

    def _first_frame(self) -> av.VideoFrame:
        try:
            frame = next(self._decoded, None)
        except av.FFmpegError as error:
            truncated = " (file is truncated)" if self._cut_short else ""
            raise SourceError(f"{self._label}: no decodable video frame{truncated}: {_reason(error)}") from error
        if frame is None:
            raise SourceError(f"{self._label}: the video stream holds no frames")
        return frame

    def _read(self) -> _Picture | None:
        with self._lock:
            if self._released:
                return None
            frame, self._pending = self._pending, None
            try:
                if frame is None:
                    frame = next(self._decoded, None)
                if frame is None:
                    return self._end()
                image = _rotate(frame.to_ndarray(format="rgb24"), self._rotation)
            except (av.FFmpegError, ValueError) as error:
                raise SourceError(
                    f"{self._label}: decoding failed after {self._count} frames: {_reason(error)}"
                ) from error
            pts = self._timestamp(frame)
            self._count += 1
        return _Picture(image, pts)

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


# ---------------------------------------------------------------------------- image folders


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _read_image(path: Path) -> np.ndarray:
    """Any image OpenCV decodes (EXIF orientation applied) as RGB uint8."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {_reason(error)}") from error
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: not an image OpenCV can decode")
    return _to_rgb8(image, str(path))


class ImageFolderSource(Source):
    """A naturally sorted list of image files, all of one size, timed at a fixed fps."""

    def __init__(self, paths: list[Path], *, label: str, name: str, fps: float = DEFAULT_IMAGE_FPS) -> None:
        if not paths:
            raise SourceError(f"{label}: no image files found")
        self._paths = sorted(paths, key=lambda path: natural_key(str(path)))
        stems = [path.stem for path in self._paths]
        if len(set(stems)) < len(stems):
            stems = [f"{i:06d}_{stem}" for i, stem in enumerate(stems)]
        self._names = [_safe_name(stem) for stem in stems]
        fps, time_base = _fps_time_base(fps, label)
        self._pending: np.ndarray | None = _read_image(self._paths[0])
        self._size = self._pending.shape[1], self._pending.shape[0]
        self._next = 0
        super().__init__(StreamInfo(
            width=self._size[0],
            height=self._size[1],
            time_base=time_base,
            fps=fps,
            frame_count=len(self._paths),
            live=False,
            name=_safe_name(name),
        ))

    def _read(self) -> _Picture | None:
        with self._lock:
            if self._released or self._next >= len(self._paths):
                return None
            index = self._next
            path = self._paths[index]
            image, self._pending = self._pending, None
            if image is None:
                image = _read_image(path)
            size = image.shape[1], image.shape[0]
            if size != self._size:
                raise SourceError(
                    f"{path}: image is {size[0]}x{size[1]} but the sequence is "
                    f"{self._size[0]}x{self._size[1]}; all images must share one size"
                )
            self._next += 1
        return _Picture(image, index, name=self._names[index])

    def _release(self) -> None:
        self._pending = None


def _image_paths_in(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir()
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES]


def _image_paths_matching(pattern: str) -> list[Path]:
    return [Path(match) for match in glob.glob(pattern)
            if os.path.isfile(match) and Path(match).suffix.lower() in IMAGE_SUFFIXES]


# ---------------------------------------------------------------------------- synthetic scenes

Renderer = Callable[[int], np.ndarray]
SceneFactory = Callable[[int, int, int, dict[str, str]], Renderer]


def _bounce(start: float, velocity: float, index: int, low: float, high: float) -> float:
    """Position after ``index`` steps moving between walls at ``low`` and ``high``."""
    span = high - low
    if span <= 0:
        return low
    offset = (start - low + velocity * index) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)


def pattern_scene(width: int, height: int, seed: int, params: dict[str, str]) -> Renderer:
    """Coloured circles and boxes bouncing over a two-colour gradient; frame i is a pure function of i."""
    if params:
        raise SourceError(f"synth://pattern: unknown parameter(s) {', '.join(sorted(params))}")
    rng = np.random.default_rng(seed)
    top_left, bottom_right = rng.integers(0, 256, size=(2, 3))
    ramp = (np.linspace(0, 1, width)[None, :] + np.linspace(0, 1, height)[:, None])[..., None] / 2
    background = (top_left + (bottom_right - top_left) * ramp).round().astype(np.uint8)
    unit = max(2, min(width, height))
    shapes = [
        {
            "round": bool(rng.integers(0, 2)),
            "radius": max(1, int(unit * rng.uniform(0.05, 0.15))),
            "colour": tuple(int(c) for c in rng.integers(0, 256, size=3)),
            "start": (rng.uniform(0, width), rng.uniform(0, height)),
            "velocity": tuple(rng.uniform(-0.02, 0.02, size=2) * unit * rng.choice([1, 2])),
        }
        for _ in range(6)
    ]

    def render(index: int) -> np.ndarray:
        image = background.copy()
        for shape in shapes:
            r = shape["radius"]
            x = int(round(_bounce(shape["start"][0], shape["velocity"][0], index, r, width - 1 - r)))
            y = int(round(_bounce(shape["start"][1], shape["velocity"][1], index, r, height - 1 - r)))
            if shape["round"]:
                cv2.circle(image, (x, y), r, shape["colour"], -1, cv2.LINE_AA)
            else:
                cv2.rectangle(image, (x - r, y - r), (x + r, y + r), shape["colour"], -1)
        return image

    return render


def drive_scene(width: int, height: int, seed: int, params: dict[str, str]) -> Renderer:
    """The procedural 3-D driving world of ``nets.world`` seen from a moving car (``fov`` in degrees)."""
    from nets.world import DrivingWorld

    fov_text = params.pop("fov", "60")
    if params:
        raise SourceError(f"synth://drive: unknown parameter(s) {', '.join(sorted(params))}")
    try:
        fov = float(fov_text)
    except ValueError:
        raise SourceError(f"synth://drive: fov must be a number of degrees, got {fov_text!r}") from None
    if not 10.0 <= fov <= 150.0:
        raise SourceError(f"synth://drive: fov must be between 10 and 150 degrees, got {fov:g}")
    world = DrivingWorld(seed, width=width, height=height, fov_deg=fov)
    return lambda index: world.render(index).rgb


# Scene name -> factory(width, height, seed, extra query parameters) -> renderer(index).
SYNTH_SCENES: dict[str, SceneFactory] = {"pattern": pattern_scene, "drive": drive_scene}


def _int_param(params: dict[str, str], key: str, default: int, label: str) -> int:
    text = params.pop(key, None)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SourceError(f"{label}: {key} must be an integer, got {text!r}") from None
    if value < 0:
        raise SourceError(f"{label}: {key} must not be negative, got {value}")
    return value


def _size_param(text: str, label: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise SourceError(f"{label}: size must look like 320x240, got {text!r}")
    return int(match[1]), int(match[2])


class SynthSource(Source):
    """A deterministic rendered scene; endless when ``frames`` is 0; ``live=1`` plays it in real time."""

    def __init__(self, spec: str) -> None:
        parts = urlsplit(spec)
        scene = parts.netloc or parts.path.strip("/")
        label = f"synth://{scene}"
        if scene not in SYNTH_SCENES:
            raise SourceError(f"{spec}: unknown synthetic scene {scene!r}; known: {', '.join(sorted(SYNTH_SCENES))}")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._frames_total = _int_param(params, "frames", 0, label) or None
        width, height = _size_param(params.pop("size", "320x240"), label)
        fps, time_base = _fps_time_base(params.pop("fps", "25"), label)
        seed = _int_param(params, "seed", 0, label)
        live = params.pop("live", "0")
        if live not in ("0", "1"):
            raise SourceError(f"{label}: live must be 0 or 1, got {live!r}")
        self._render = SYNTH_SCENES[scene](width, height, seed, params)
        self._next = 0
        super().__init__(StreamInfo(
            width=width, height=height, time_base=time_base, fps=fps,
            frame_count=self._frames_total, live=False, name=_safe_name(f"synth_{scene}"),
        ))
        self._use_live_policy(live == "1")

    def _read(self) -> _Picture | None:
        index = self._next
        if self._frames_total is not None and index >= self._frames_total:
            return None
        self._next += 1
        image = self._render(index)
        if image.shape != (self.info.height, self.info.width, 3) or image.dtype != np.uint8:
            raise SourceError(f"synth: scene rendered {image.shape} {image.dtype}, expected "
                              f"({self.info.height}, {self.info.width}, 3) uint8")
        return _Picture(np.ascontiguousarray(image), index)

    def _release(self) -> None:
        """Nothing to free: frames are rendered on demand."""


# ---------------------------------------------------------------------------- live sources


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a live source retries after an outage: doubling delays from ``retry_delay`` up to
    ``max_delay``; it gives up after ``attempts`` failed tries or ``max_outage`` seconds."""

    attempts: int = 10
    max_outage: float = 60.0
    retry_delay: float = 0.5
    max_delay: float = 8.0


class _Session(ABC):
    """One connection to a live device or stream."""

    @abstractmethod
    def read(self) -> _Picture | None:
        """The next picture (pts in µs of the session's own clock, or None), or None when it ended."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect; idempotent."""

    @property
    @abstractmethod
    def fps(self) -> float | None:
        """The nominal frame rate the device or stream reports, if any."""


class _Newest:
    """Hand-off from a reader thread that keeps only the newest picture, then an end marker."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self.lossless = False
        self._picture: _Picture | None = None
        self._ended = False
        self._error: SourceError | None = None
        self._woken = False
        self.dropped = 0

    def put(self, picture: _Picture) -> None:
        """Replace the waiting picture (counted as dropped), or in lossless mode wait for it to go."""
        with self._ready:
            if self.lossless:
                self._ready.wait_for(lambda: self._picture is None or self._woken)
            if self._picture is not None:
                self.dropped += 1
            self._picture = picture
            self._ready.notify()

    def end(self, error: SourceError | None) -> None:
        with self._ready:
            self._ended, self._error = True, error
            self._ready.notify()

    def wake(self) -> None:
        """Release a waiting ``get`` (used by close)."""
        with self._ready:
            self._woken = True
            self._ready.notify_all()

    def get(self) -> _Picture | None:
        """The newest picture; None after the end or a wake; the reader's error once drained."""
        with self._ready:
            self._ready.wait_for(lambda: self._picture is not None or self._ended or self._woken)
            if self._woken:
                return None
            if self._picture is not None:
                picture, self._picture = self._picture, None
                self._ready.notify_all()
                return picture
            if self._error is not None:
                raise self._error
            return None


class _LiveTimeline:
    """Maps per-session timestamps onto one strictly increasing microsecond timeline."""

    def __init__(self) -> None:
        self._offset: int | None = None
        self._last: int | None = None
        self._last_wall = 0.0

    def new_session(self) -> None:
        self._offset = None

    def stamp(self, session_us: int | None, wall: float) -> int:
        clock = session_us if session_us is not None else round(wall * 1_000_000)
        out = None if self._offset is None else self._offset + clock
        if out is None or (self._last is not None and out <= self._last):
            gap = round((wall - self._last_wall) * 1_000_000)
            out = 0 if self._last is None else self._last + max(1, gap)
            self._offset = out - clock
        self._last, self._last_wall = out, wall
        return out


class LiveSource(Source):
    """A camera or network stream read by a background thread, with reconnect after outages."""

    def __init__(self, connect: Callable[[], _Session], *, label: str, name: str,
                 policy: ReconnectPolicy = ReconnectPolicy()) -> None:
        self._connect, self._label, self._policy = connect, label, policy
        self._session = connect()
        try:
            self._first = self._session.read()
        except BaseException:
            self._session.close()
            raise
        if self._first is None:
            self._session.close()
            raise SourceError(f"{label}: connected but received no frame")
        height, width = self._first.image.shape[:2]
        self._newest = _Newest()
        self._timeline = _LiveTimeline()
        self._reader: threading.Thread | None = None
        super().__init__(StreamInfo(width=width, height=height, time_base=MICROSECOND, fps=self._session.fps,
                                    frame_count=None, live=True, name=name))

    @property
    def dropped(self) -> int:
        """Frames replaced by newer ones before the consumer took them."""
        return self._newest.dropped

    def _use_live_policy(self, live: bool) -> None:
        """Offline policy on a live input: keep every frame (the reader waits for the consumer)."""
        self.info.live = live
        self._newest.lossless = not live

    def _read(self) -> _Picture | None:
        with self._lock:
            if self._released:
                return None
            if self._reader is None:
                self._reader = threading.Thread(target=self._pump, name=f"source {self.info.name}", daemon=True)
                self._reader.start()
        return self._newest.get()

    def _deliver(self, picture: _Picture) -> None:
        height, width = picture.image.shape[:2]
        if (width, height) != (self.info.width, self.info.height):
            raise SourceError(f"{self._label}: frame size changed from {self.info.width}x{self.info.height} "
                              f"to {width}x{height}")
        picture.pts = self._timeline.stamp(picture.pts, picture.captured)
        self._newest.put(picture)

    def _pump(self) -> None:
        session: _Session | None = self._session
        try:
            self._deliver(self._first)
            while session is not None and not self._stop.is_set():
                try:
                    picture, reason = session.read(), "stream ended"
                except SourceError as error:
                    picture, reason = None, str(error)
                if picture is not None:
                    self._deliver(picture)
                    continue
                session.close()
                session = self._reconnect(reason)
                self._timeline.new_session()
            self._newest.end(None)
        except SourceError as error:
            self._newest.end(error)
        except Exception as error:  # the consumer must never wait on a dead reader
            self._newest.end(SourceError(f"{self._label}: reader failed: {type(error).__name__}: {_reason(error)}"))
        finally:
            if session is not None:
                session.close()

    def _reconnect(self, reason: str) -> _Session | None:
        """A fresh session after backing off, None if closed meanwhile; SourceError on giving up."""
        policy = self._policy
        started = time.monotonic()
        delay = policy.retry_delay
        attempt = 0
        while attempt < policy.attempts and time.monotonic() - started < policy.max_outage:
            if self._stop.wait(delay):
                return None
            attempt += 1
            try:
                return self._connect()
            except SourceError as error:
                reason = str(error)
            delay = min(delay * 2, policy.max_delay)
        raise SourceError(f"{self._label}: lost and gave up after {attempt} reconnect attempt(s) in "
                          f"{time.monotonic() - started:.1f} s; last error: {reason}")

    def _release(self) -> None:
        self._newest.wake()
        if self._reader is None:
            self._session.close()


class _CameraSession(_Session):
    """One OpenCV capture with a one-frame driver buffer (always the freshest image)."""

    def __init__(self, device: int | str, label: str, width: int | None, height: int | None,
                 fps: float | None) -> None:
        self._label = label
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"{label}: cannot open camera (no such device, or it is busy)")
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                self._capture.set(prop, value)

    @property
    def fps(self) -> float | None:
        value = self._capture.get(cv2.CAP_PROP_FPS)
        return float(value) if value and value > 0 else None

    def read(self) -> _Picture | None:
        ok, image = self._capture.read()
        captured = time.monotonic()
        if not ok or image is None:
            return None
        return _Picture(_to_rgb8(image, self._label), None, captured)

    def close(self) -> None:
        self._capture.release()


class _NetworkSession(_Session):
    """One PyAV connection to a stream URL with open/read timeouts."""

    def __init__(self, url: str, label: str, av_options: dict[str, str], open_timeout: float,
                 read_timeout: float) -> None:
        self._label = label
        try:
            self._container = av.open(url, options=av_options, timeout=(open_timeout, read_timeout))
        except av.FFmpegError as error:
            raise SourceError(f"{label}: cannot connect: {_reason(error)}") from error
        try:
            self._stream = _video_stream(self._container, label)
        except SourceError:
            self._container.close()
            raise
        self._stream.thread_type = "SLICE"
        self._decoded = self._container.decode(self._stream)

    @property
    def fps(self) -> float | None:
        return _stream_fps(self._stream)

    def read(self) -> _Picture | None:
        try:
            frame = next(self._decoded, None)
        except av.FFmpegError as error:
            raise SourceError(f"{self._label}: read failed: {_reason(error)}") from error
        captured = time.monotonic()
        if frame is None:
            return None
        session_us = None if frame.pts is None or frame.time_base is None else round(
            frame.pts * frame.time_base / MICROSECOND)
        image = _rotate(frame.to_ndarray(format="rgb24"), frame.rotation)
        return _Picture(image, session_us, captured)

    def close(self) -> None:
        self._container.close()


# ---------------------------------------------------------------------------- open_source


def _take_options(options: dict[str, Any], defaults: dict[str, Any], kind: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise SourceError(f"unknown option(s) for {kind}: {', '.join(unknown)} "
                          f"(expected: {', '.join(sorted(defaults)) or 'none'})")
    return {**defaults, **options}


def _policy(chosen: dict[str, Any]) -> ReconnectPolicy:
    return ReconnectPolicy(attempts=int(chosen["reconnect_attempts"]), max_outage=float(chosen["max_outage"]),
                           retry_delay=float(chosen["retry_delay"]), max_delay=float(chosen["retry_max_delay"]))


_RECONNECT_DEFAULTS = {"reconnect_attempts": 10, "max_outage": 60.0, "retry_delay": 0.5, "retry_max_delay": 8.0}


def _open_camera(device: int | str, options: dict[str, Any]) -> LiveSource:
    chosen = _take_options(options, {"width": None, "height": None, "fps": None, **_RECONNECT_DEFAULTS},
                           "a camera")
    label = f"camera {device}"

    def connect() -> _CameraSession:
        return _CameraSession(device, label, chosen["width"], chosen["height"], chosen["fps"])

    number = device if isinstance(device, int) else re.sub(r"\D", "", device)
    return LiveSource(connect, label=label, name=f"camera{number}", policy=_policy(chosen))


def _open_network(url: str, options: dict[str, Any]) -> Source:
    scheme = urlsplit(url).scheme.lower()
    name = _safe_name(Path(urlsplit(url).path).stem or urlsplit(url).hostname or scheme)
    if scheme in ("http", "https") and Path(urlsplit(url).path).suffix.lower() in FILE_URL_SUFFIXES:
        chosen = _take_options(options, {"av_options": None, "timeout": 10.0}, "a video file URL")
        return VideoFileSource(url, name=name, av_options=chosen["av_options"], timeout=chosen["timeout"])
    chosen = _take_options(options, {"av_options": None, "open_timeout": 5.0, "read_timeout": 5.0,
                                     "rtsp_transport": "tcp", **_RECONNECT_DEFAULTS}, "a network stream")
    av_options = {**LIVE_AV_OPTIONS, **(chosen["av_options"] or {})}
    if scheme in ("rtsp", "rtsps"):
        av_options.setdefault("rtsp_transport", chosen["rtsp_transport"])

    def connect() -> _NetworkSession:
        return _NetworkSession(url, url, av_options, float(chosen["open_timeout"]), float(chosen["read_timeout"]))

    return LiveSource(connect, label=url, name=name, policy=_policy(chosen))


def _open_path(path: Path, text: str, options: dict[str, Any], hwaccel: HWAccel | None) -> Source:
    if path.is_dir():
        chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image folder")
        return ImageFolderSource(_image_paths_in(path), label=text, name=path.resolve().name, fps=chosen["fps"])
    if not path.exists():
        if any(char in text for char in "*?["):
            chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image glob")
            return ImageFolderSource(_image_paths_matching(text), label=text,
                                     name=Path(text).parent.resolve().name, fps=chosen["fps"])
        raise SourceError(f"{text}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        chosen = _take_options(options, {"fps": DEFAULT_IMAGE_FPS}, "an image")
        return ImageFolderSource([path], label=text, name=path.stem, fps=chosen["fps"])
    if path.stat().st_size == 0:
        raise SourceError(f"{text}: file is empty")
    chosen = _take_options(options, {"av_options": None}, "a video file")
    return VideoFileSource(str(path), name=_safe_name(path.stem), av_options=chosen["av_options"],
                           hwaccel=hwaccel)


def open_source(spec: str | int | os.PathLike, **options: Any) -> Source:
    """Open a video file, camera, image folder/glob, network URL or synth:// scene.

    Spec forms: ``clip.mp4`` (any FFmpeg input), ``0`` / ``"0"`` / ``/dev/video0`` (camera),
    ``frames/`` or ``frames/*.png`` or ``one.png`` (images), ``rtsp://…`` ``rtmp://…``
    ``http(s)://…`` ``udp://…`` ``tcp://…`` ``srt://…`` (live stream; an http(s) URL ending in
    .mp4/.mkv/.mov/… is a file read offline), ``synth://pattern?frames=120&size=320x240&fps=25&seed=0&live=0``.

    Options by kind: files ``av_options`` (FFmpeg demuxer options); images ``fps`` (default 25);
    cameras ``width``, ``height``, ``fps``; network ``open_timeout``, ``read_timeout`` (seconds),
    ``rtsp_transport`` (default tcp), ``av_options``; cameras and network ``reconnect_attempts``,
    ``max_outage``, ``retry_delay`` (first backoff), ``retry_max_delay`` (backoff cap), all seconds.
    Every kind: ``live`` (True/False) overrides the drop policy, see the module docstring;
    ``hwaccel`` (a PyAV ``HWAccel``, see ``stream.hwcodecs.pick_decoder_accel``) decodes video
    files in hardware and is ignored by the other kinds.
    """
    live = options.pop("live", None)
    if live is not None and not isinstance(live, bool):
        raise SourceError(f"live must be True, False or None, got {live!r}")
    source = _open(spec, options, options.pop("hwaccel", None))
    if live is not None:
        source._use_live_policy(live)
    return source


def _open(spec: str | int | os.PathLike, options: dict[str, Any], hwaccel: HWAccel | None) -> Source:
    """Pick the kind of source from the spec's form."""
    if isinstance(spec, bool) or not isinstance(spec, (str, int, os.PathLike)):
        raise SourceError(f"cannot open {spec!r}: expected a path, URL, camera index or synth:// spec")
    if isinstance(spec, int):
        if spec < 0:
            raise SourceError(f"camera {spec}: camera index must not be negative")
        return _open_camera(spec, options)
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise SourceError("empty source: give a file, folder, camera index, URL or synth:// spec")
    if text.isdigit():
        return _open_camera(int(text), options)
    if re.fullmatch(r"/dev/video\d+", text):
        return _open_camera(text, options)
    scheme = urlsplit(text).scheme.lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text) else ""
    if scheme == "synth":
        _take_options(options, {}, "a synth:// source (put settings in the query string)")
        return SynthSource(text)
    if scheme in NETWORK_SCHEMES:
        return _open_network(text, options)
    if scheme == "file":
        return _open_path(Path(urlsplit(text).path), urlsplit(text).path, options, hwaccel)
    if scheme:
        raise SourceError(f"{text}: unsupported URL scheme {scheme!r}")
    return _open_path(Path(text), text, options, hwaccel)
