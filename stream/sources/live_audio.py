"""A live stream's audio for its recording: packets demuxed next to the video, put on the
source's microsecond timeline and handed to one video sink through a bounded queue.

A live stream cannot be re-opened to read its audio a second time (a UDP port has one reader, a
stream does not rewind), so the live source passes on the audio it demuxes itself. The queue
never drops audio to keep video latency low; it drops the oldest packets only when the sink falls
``QUEUE_PACKETS`` behind (one warning), and nothing is queued while no sink reads it. A source
opened later for the same recording (the multi-stream engine's reopen) sends its feed's packets
on through a ``Relay`` into the recording's feed, shifted onto the recording's timeline.
"""
from __future__ import annotations

import io
import threading
import warnings
from collections import deque

import av

from .base import MICROSECOND

QUEUE_PACKETS = 3000
"""Audio packets the queue holds for its sink (about a minute of AAC at 48 kHz)."""
MAX_SKEW_US = 5_000_000
"""Audio placed farther than this from the video frame it was demuxed with is dropped: it came
from before a timestamp jump that moved the video onto a new offset."""


def audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    """The first audio stream whose codec, sample rate and channels are known (a stream announced
    in a program table but never probed has none and cannot be recorded)."""
    for stream in container.streams.audio:
        if stream.codec_context.name and stream.rate and stream.channels:
            return stream
    return None


def open_feed(stream: av.audio.stream.AudioStream | None, label: str) -> AudioFeed | None:
    """A feed for the first session's audio stream; None without one, or (said once) when its
    parameters cannot be kept."""
    if stream is None:
        return None
    try:
        return AudioFeed(stream, label)
    except (av.FFmpegError, ValueError) as error:
        warnings.warn(f"{label}: cannot record the audio ({error}); recording video only")
        return None


def to_microseconds(packet: av.Packet) -> av.Packet | None:
    """``packet`` with pts, dts and duration in microseconds, or None without a timestamp."""
    time_base = packet.time_base
    if packet.pts is None or time_base is None or not packet.size:
        return None
    dts = packet.dts if packet.dts is not None else packet.pts
    packet.pts, packet.dts = (round(value * time_base / MICROSECOND) for value in (packet.pts, dts))
    packet.duration = round((packet.duration or 0) * time_base / MICROSECOND)
    packet.time_base = MICROSECOND
    return packet


class AudioFeed:
    """The recording's audio: the first session's stream parameters (``stream``, a template that
    outlives the connection) and a thread-safe queue of packets on the source's timeline."""

    def __init__(self, first: av.audio.stream.AudioStream, label: str) -> None:
        self._label = label
        # An output container that is never written holds a copy of the stream's parameters
        # (FFmpeg's null muxer takes streams of any codec).
        self._holder = av.open(io.BytesIO(), "w", format="null")
        self.stream = self._holder.add_stream_from_template(first)
        self._signature = _signature(first)
        self._packets: deque[av.Packet] = deque()
        self._lock = threading.Lock()
        self._claimed = False
        self._last_dts: int | None = None
        self._overflowed = False
        self._mismatch_warned = False
        self._relay: Relay | None = None

    def describe(self) -> str:
        return f"the audio of {self._label}"

    def claim(self) -> AudioFeed:
        """Start queueing for the one sink that records this audio."""
        with self._lock:
            if self._claimed:
                raise RuntimeError(f"{self.describe()} already goes to another sink")
            self._claimed = True
        return self

    def accepts(self, stream: av.audio.stream.AudioStream | None) -> bool:
        """Whether a new session's audio can continue the recording's track (same codec, rate and
        channels); says once when it cannot."""
        if stream is None or _signature(stream) == self._signature:
            return stream is not None
        if not self._mismatch_warned:
            self._mismatch_warned = True
            warnings.warn(f"{self._label}: the audio changed to {_describe(_signature(stream))} after a "
                          f"reconnect (the recording holds {_describe(self._signature)}); recording it silent")
        return False

    def send_to(self, relay: Relay) -> None:
        """Pass every packet added from now on to ``relay`` instead of queueing it here (set
        before the source starts reading)."""
        self._relay = relay

    def add(self, packets: list[av.Packet], offset: int, anchor: int, floor: int = 0) -> None:
        """Queue packets (µs of their session's clock) at ``offset`` on the timeline; ``anchor``
        is where the video frame demuxed with them landed. Packets before ``floor`` (the
        timeline's start), not after the last one queued, or far from the anchor are dropped."""
        if self._relay is not None:
            self._relay.add(packets, offset, anchor)
            return
        with self._lock:
            if not self._claimed:
                return
            for packet in packets:
                pts, dts = packet.pts + offset, packet.dts + offset
                if dts < floor or abs(pts - anchor) > MAX_SKEW_US or (
                        self._last_dts is not None and dts <= self._last_dts):
                    continue
                packet.pts, packet.dts = pts, dts
                self._last_dts = dts
                if len(self._packets) >= QUEUE_PACKETS:
                    self._packets.popleft()
                    self._warn_overflow()
                self._packets.append(packet)

    def next_packet(self) -> av.Packet | None:
        """The oldest queued packet, or None when none is waiting (more may come later)."""
        with self._lock:
            return self._packets.popleft() if self._packets else None

    def close(self) -> None:
        """The sink is done: stop queueing and free what waits."""
        with self._lock:
            self._claimed = False
            self._packets.clear()

    def _warn_overflow(self) -> None:
        if not self._overflowed:
            self._overflowed = True
            warnings.warn(f"{self._label}: the recording fell {QUEUE_PACKETS} audio packets behind; "
                          "dropping the oldest audio")


class Relay:
    """A later source's audio on its way into the recording's feed (an earlier source's). The
    engine shifts that source's frames onto the recording's timeline by an offset it knows only
    once the first frame arrives, so packets wait until ``place`` gives it, then go on shifted."""

    def __init__(self, recording: AudioFeed) -> None:
        self._recording = recording
        self._lock = threading.Lock()
        self._waiting: list[tuple[list[av.Packet], int, int]] = []
        self._shift: int | None = None
        self._start = 0

    def add(self, packets: list[av.Packet], offset: int, anchor: int) -> None:
        """As ``AudioFeed.add``, on the source's own timeline."""
        with self._lock:
            if self._shift is None:
                self._waiting.append((packets, offset, anchor))
            else:
                self._recording.add(packets, offset + self._shift, anchor + self._shift, self._start)

    def place(self, shift: int, start: int) -> None:
        """The source's timeline lands ``shift`` µs later on the recording's, where its first frame
        is at ``start``: what waits goes on, audio from before that frame is left out."""
        with self._lock:
            self._shift, self._start = shift, start
            for packets, offset, anchor in self._waiting:
                self._recording.add(packets, offset + shift, anchor + shift, start)
            self._waiting.clear()


def _signature(stream: av.audio.stream.AudioStream) -> tuple[str, int, int]:
    return stream.codec_context.name, stream.rate, stream.channels


def _describe(signature: tuple[str, int, int]) -> str:
    codec, rate, channels = signature
    return f"{codec} {rate} Hz {channels} ch"
