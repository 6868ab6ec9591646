"""The source's audio, copied (or re-encoded to AAC) into an output video file in time order."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction

import av

from stream.errors import SinkError

log = logging.getLogger(__name__)

class AudioTrack:
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
