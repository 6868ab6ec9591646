"""The source's audio, copied (or re-encoded to AAC) into an output video file in time order:
from the source file itself (``FileAudio``) or from what a live source demuxed as it went
(``stream.sources.live_audio.AudioFeed``)."""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from typing import Protocol

import av
from av.bitstream import BitStreamFilterContext

from stream.errors import SinkError

log = logging.getLogger(__name__)


class AudioInput(Protocol):
    """Where a track's packets come from: ``stream`` describes them (None: there is no audio);
    ``next_packet`` gives the next one in time order, or None when none is ready."""

    stream: av.audio.stream.AudioStream | None

    def describe(self) -> str: ...

    def next_packet(self) -> av.Packet | None: ...

    def close(self) -> None: ...


class FileAudio:
    """The first audio stream of a file, re-opened and read from its start."""

    def __init__(self, source: str) -> None:
        self._source = source
        try:
            self._input = av.open(source)
        except (av.FFmpegError, OSError) as error:
            raise SinkError(f"cannot open the audio source {source}: {error}") from error
        self.stream = self._input.streams.audio[0] if self._input.streams.audio else None
        self._packets: Iterator[av.Packet] = self._input.demux(self.stream) if self.stream else iter(())

    def describe(self) -> str:
        return self._source

    def next_packet(self) -> av.Packet | None:
        return next(self._packets, None)

    def close(self) -> None:
        self._input.close()


class AudioTrack:
    """An input's audio, fed into an output container in time order.

    Stream-copied when the container accepts the codec (ADTS AAC, as MPEG-TS carries it, gets
    its headers moved into the track's configuration), otherwise re-encoded to AAC, otherwise
    dropped; the last two are logged as warnings. The output stream is added by ``attach`` so
    that it follows the video stream.
    """

    def __init__(self, source: AudioInput, output: av.container.OutputContainer, extension: str) -> None:
        self._input = source
        self._output = output
        self._source_stream = source.stream
        self._stream = None
        self._transcoding = False
        self._adts: BitStreamFilterContext | None = None
        self._ready: deque[av.Packet] = deque()
        self._pending: av.Packet | None = None
        self._flushed = False
        self._start: Fraction | None = None
        if self._source_stream is None:
            log.warning("%s has no audio stream; writing video only", source.describe())
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

    def attach(self, start: Fraction | None = None) -> None:
        """Add the output audio stream (after the video one); audio that ends by ``start``
        seconds is left out."""
        self._start = start
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
        elif self._source_stream.codec_context.name == "aac":
            self._adts = BitStreamFilterContext("aac_adtstoasc", self._source_stream)

    def _next(self, final: bool) -> av.Packet | None:
        """The next output-ready packet, or None when none is ready; ``final`` drains the AAC
        encoder once the input has no more."""
        while not self._ready:
            packet = self._input.next_packet()
            if packet is None:
                if final and self._transcoding and not self._flushed:
                    self._flushed = True
                    self._ready.extend(self._stream.encode(None))
                    continue
                return None
            if self._transcoding:
                for frame in self._source_stream.codec_context.decode(packet):
                    self._ready.extend(self._stream.encode(frame))
            elif packet.dts is not None:
                self._ready.extend(self._adts.filter(packet) if self._adts else [packet])
        packet = self._ready.popleft()
        packet.stream = self._stream
        return packet

    def mux_until(self, limit: Fraction | None, final: bool = False) -> None:
        """Write every audio packet ready that starts before ``limit`` seconds (all if None);
        ``final`` once no video follows."""
        if self._stream is None:
            return
        while True:
            if self._pending is None:
                self._pending = self._next(final)
                if self._pending is None:
                    return
            start = self._pending.pts if self._pending.pts is not None else self._pending.dts
            end = start + (self._pending.duration or 0)
            if self._start is not None and end * self._pending.time_base <= self._start:
                self._pending = None
                continue
            if limit is not None and start * self._pending.time_base >= limit:
                return
            self._output.mux(self._pending)
            self._pending = None

    def close(self) -> None:
        self._input.close()
