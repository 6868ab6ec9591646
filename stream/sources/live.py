"""Live sources (cameras, network streams): a reader thread hands over the newest frame,
reconnects after outages and keeps one strictly increasing microsecond timeline; a network
stream's audio goes to its recording on the same timeline (see ``live_audio``)."""
from __future__ import annotations

import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
import cv2

from ..errors import SourceError
from ..frames import StreamInfo
from .base import MICROSECOND, Picture, Source, error_reason, rotate, stream_fps, to_rgb8, video_stream
from .live_audio import audio_stream, open_feed, to_microseconds
from .cameras import open_capture


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a live source retries after an outage: doubling delays from ``retry_delay`` up to
    ``max_delay``; it gives up after ``attempts`` failed tries or ``max_outage`` seconds."""

    attempts: int = 10
    max_outage: float = 60.0
    retry_delay: float = 0.5
    max_delay: float = 8.0


class _Session(ABC):
    """One connection to a live device or stream; ``audio_stream`` is its audio, if any."""

    audio_stream: av.audio.stream.AudioStream | None = None

    @abstractmethod
    def read(self) -> Picture | None:
        """The next picture (pts in µs of the session's own clock, or None), or None when it ended."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect; idempotent."""

    @property
    @abstractmethod
    def fps(self) -> float | None:
        """The nominal frame rate the device or stream reports, if any."""

    def take_audio(self) -> list[av.Packet]:
        """The audio packets read since the last call (µs of the session's clock)."""
        return []


class _Newest:
    """Hand-off from a reader thread that keeps only the newest picture, then an end marker."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self.lossless = False
        self._picture: Picture | None = None
        self._ended = False
        self._error: SourceError | None = None
        self._woken = False
        self.dropped = 0

    def put(self, picture: Picture) -> None:
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

    def get(self) -> Picture | None:
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

    @property
    def offset(self) -> int | None:
        """What the session's clock is shifted by onto the timeline (None before its first frame)."""
        return self._offset

    def stamp(self, session_us: int | None, wall: float) -> int:
        clock = session_us if session_us is not None else round(wall * 1_000_000)
        out = None if self._offset is None else self._offset + clock
        if out is None or (self._last is not None and out <= self._last):
            gap = round((wall - self._last_wall) * 1_000_000)
            out = 0 if self._last is None else self._last + max(1, gap)
            self._offset = out - clock
        self._last, self._last_wall = out, wall
        return out


def _first_picture(connect: Callable[[], _Session], label: str, policy: ReconnectPolicy) -> tuple[_Session, Picture]:
    """Connect and read the first picture. A first connection that fails is an error at once
    (the address may simply be wrong); a first read that fails or ends is retried like a later
    outage, with the same back-off and limits, one line per retry."""
    session: _Session | None = connect()
    started, delay, attempt = time.monotonic(), policy.retry_delay, 0
    while True:
        if session is not None:
            try:
                picture, reason = session.read(), "connected but received no frame"
            except SourceError as error:
                picture, reason = None, str(error).removeprefix(f"{label}: ")
            except BaseException:
                session.close()
                raise
            if picture is not None:
                return session, picture
            session.close()
        if attempt >= policy.attempts or time.monotonic() - started + delay > policy.max_outage:
            retried = f" (retried {attempt} time(s) in {time.monotonic() - started:.1f} s)" if attempt else ""
            raise SourceError(f"{label}: {reason}{retried}")
        attempt += 1
        warnings.warn(f"{label}: first read failed ({reason}); retry {attempt} of {policy.attempts} in {delay:g} s")
        time.sleep(delay)
        delay = min(delay * 2, policy.max_delay)
        try:
            session = connect()
        except SourceError as error:
            session, reason = None, str(error).removeprefix(f"{label}: ")


class LiveSource(Source):
    """A camera or network stream read by a background thread, with reconnect after outages."""

    def __init__(self, connect: Callable[[], _Session], *, label: str, name: str,
                 policy: ReconnectPolicy = ReconnectPolicy()) -> None:
        self._connect, self._label, self._policy = connect, label, policy
        self._session, self._first = _first_picture(connect, label, policy)
        height, width = self._first.image.shape[:2]
        self._newest = _Newest()
        self._timeline = _LiveTimeline()
        self._audio = open_feed(self._session.audio_stream, label)
        self._audio_accepted = self._audio is not None  # this session's audio continues the track
        self._reader: threading.Thread | None = None
        self.reconnecting = False  # True while an outage lasts
        self.reconnects = 0  # sessions re-established after an outage
        self._last_frame_at = self._first.captured
        super().__init__(StreamInfo(width=width, height=height, time_base=MICROSECOND, fps=self._session.fps,
                                    frame_count=None, live=True, audio_feed=self._audio, name=name))

    @property
    def dropped(self) -> int:
        """Frames replaced by newer ones before the consumer took them."""
        return self._newest.dropped

    def _use_live_policy(self, live: bool) -> None:
        """Offline policy on a live input: keep every frame (the reader waits for the consumer)."""
        self.info.live = live
        self._newest.lossless = not live

    def _read(self) -> Picture | None:
        with self._lock:
            if self._released:
                return None
            if self._reader is None:
                self._reader = threading.Thread(target=self._pump, name=f"source {self.info.name}", daemon=True)
                self._reader.start()
        return self._newest.get()

    def _deliver(self, picture: Picture, session: _Session) -> None:
        height, width = picture.image.shape[:2]
        if (width, height) != (self.info.width, self.info.height):
            raise SourceError(f"{self._label}: frame size changed from {self.info.width}x{self.info.height} "
                              f"to {width}x{height}")
        picture.pts = self._timeline.stamp(picture.pts, picture.captured)
        self._last_frame_at = picture.captured
        audio = session.take_audio()
        if audio and self._audio_accepted:
            self._audio.add(audio, self._timeline.offset, picture.pts)
        self._newest.put(picture)

    def _pump(self) -> None:
        session: _Session | None = self._session
        try:
            self._deliver(self._first, session)
            while session is not None and not self._stop.is_set():
                try:
                    picture, reason = session.read(), "stream ended"
                except SourceError as error:
                    picture, reason = None, str(error)
                if picture is not None:
                    self._deliver(picture, session)
                    continue
                session.close()
                self.reconnecting = True
                session = self._reconnect(reason)
                self.reconnecting = False
                self.reconnects += session is not None
                self._timeline.new_session()
                self._audio_accepted = self._audio is not None and session is not None and self._audio.accepts(
                    session.audio_stream)
            self._newest.end(None)
        except SourceError as error:
            self._newest.end(error)
        except Exception as error:  # the consumer must never wait on a dead reader
            failure = f"{type(error).__name__}: {error_reason(error)}"
            self._newest.end(SourceError(f"{self._label}: reader failed: {failure}"))
        finally:
            if session is not None:
                session.close()

    def _reconnect(self, reason: str) -> _Session | None:
        """A fresh session after backing off, None if closed meanwhile; SourceError on giving up.
        Says when the stream went quiet and why, each failed attempt, and the outage once back."""
        policy = self._policy
        started = time.monotonic()
        silent = started - self._last_frame_at
        since = time.strftime("%H:%M:%S", time.localtime(time.time() - silent))
        warnings.warn(f"{self._label}: no frames since {since} ({self._short(reason)}); reconnecting")
        delay = policy.retry_delay
        attempt = 0
        while attempt < policy.attempts and time.monotonic() - started < policy.max_outage:
            if self._stop.wait(delay):
                return None
            attempt += 1
            try:
                session = self._connect()
            except SourceError as error:
                reason = str(error)
                warnings.warn(f"{self._label}: reconnect attempt {attempt} of {policy.attempts} failed "
                              f"{time.monotonic() - started + silent:.1f} s into the outage: {self._short(reason)}")
            else:
                outage = time.monotonic() - started + silent
                lost = f", about {round(outage * self.info.fps)} frames missed" if self.info.fps else ""
                warnings.warn(f"{self._label}: back after an outage of {outage:.1f} s "
                              f"(reconnect attempt {attempt}){lost}")
                return session
            delay = min(delay * 2, policy.max_delay)
        raise SourceError(f"{self._label}: lost and gave up after {attempt} reconnect attempt(s) in "
                          f"{time.monotonic() - started:.1f} s; last error: {reason}")

    def _short(self, reason: str) -> str:
        """An error message without this source's own label in front."""
        return reason.removeprefix(f"{self._label}: ")

    def _release(self) -> None:
        self._newest.wake()
        if self._reader is None:
            self._session.close()


class CameraSession(_Session):
    """One OpenCV capture with a one-frame driver buffer (always the freshest image)."""

    def __init__(self, device: int | str, label: str, width: int | None, height: int | None,
                 fps: float | None) -> None:
        self._label = label
        self._capture = open_capture(device)
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

    def read(self) -> Picture | None:
        ok, image = self._capture.read()
        captured = time.monotonic()
        if not ok or image is None:
            return None
        return Picture(to_rgb8(image, self._label), None, captured)

    def close(self) -> None:
        self._capture.release()


def silence_message(url: str, seconds: float) -> str:
    """Why a network stream failed when FFmpeg's wait ran out (PyAV's time-out ends it with an
    'Immediate exit requested' error, which says nothing to a user)."""
    return f"no data from {url} for {seconds:g} s"


class NetworkSession(_Session):
    """One PyAV connection to a stream URL with open/read timeouts; its audio packets are kept
    for ``take_audio``, from the same demuxer as the video."""

    def __init__(self, url: str, label: str, av_options: dict[str, str], open_timeout: float,
                 read_timeout: float) -> None:
        self._label, self._url, self._read_timeout = label, url, read_timeout
        try:
            self._container = av.open(url, options=av_options, timeout=(open_timeout, read_timeout))
        except av.ExitError as error:
            raise SourceError(silence_message(url, open_timeout)) from error
        except av.FFmpegError as error:
            raise SourceError(f"{label}: cannot connect: {error_reason(error)}") from error
        try:
            self._stream = video_stream(self._container, label)
        except SourceError:
            self._container.close()
            raise
        self._stream.thread_type = "SLICE"
        self.audio_stream = audio_stream(self._container)
        read = [self._stream] if self.audio_stream is None else [self._stream, self.audio_stream]
        self._packets = self._container.demux(read)
        self._frames: deque[tuple[av.VideoFrame, float]] = deque()  # with when each arrived
        self._timed_out_at: float | None = None  # when the wait began that the read time-out ended
        self._audio_packets: list[av.Packet] = []

    @property
    def fps(self) -> float | None:
        return stream_fps(self._stream)

    def read(self) -> Picture | None:
        try:
            while not self._frames:
                asked = time.monotonic()
                packet = next(self._packets, None)
                if packet is None:
                    return None
                if packet.stream.type == "audio":
                    self._keep_audio(packet)
                else:
                    arrived = self._arrival(asked)
                    self._frames.extend((frame, arrived) for frame in packet.decode())
        except av.ExitError as error:
            raise SourceError(silence_message(self._url, self._read_timeout)) from error
        except av.FFmpegError as error:
            raise SourceError(f"{self._label}: read failed: {error_reason(error)}") from error
        frame, captured = self._frames.popleft()
        session_us = None if frame.pts is None or frame.time_base is None else round(
            frame.pts * frame.time_base / MICROSECOND)
        image = rotate(frame.to_ndarray(format="rgb24"), frame.rotation)
        return Picture(image, session_us, captured)

    def _arrival(self, asked: float) -> float:
        """When a packet asked for at ``asked`` arrived. MPEG-TS holds each video packet until
        the next one starts, so the last ones before a silence come out only once the read
        time-out ended the wait; they arrived before it began (stamped on their release, the
        silence, and the pause in the recording, would look a time-out shorter)."""
        now = time.monotonic()
        if self._timed_out_at is None and now - asked >= self._read_timeout:
            self._timed_out_at = asked
        return now if self._timed_out_at is None else self._timed_out_at

    def _keep_audio(self, packet: av.Packet) -> None:
        timed = to_microseconds(packet)
        if timed is not None:
            self._audio_packets.append(timed)

    def take_audio(self) -> list[av.Packet]:
        taken, self._audio_packets = self._audio_packets, []
        return taken

    def close(self) -> None:
        self._container.close()
