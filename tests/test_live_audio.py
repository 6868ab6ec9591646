"""Recordings of live network streams keep the stream's audio, in step with the video: while
live mode drops frames, across an outage and reconnect, and in the crash-safe fragmented MP4."""
from __future__ import annotations

import logging
import threading
import warnings
from fractions import Fraction
from pathlib import Path

import av
import pytest

import stream
from stream.frames import StreamInfo
from stream.pipeline import Pipeline
from stream.sinks import VideoSink, open_sink
from stream.sources import open_source
from stream.sources.base import MICROSECOND
from stream.sources import live_audio
from stream.sources.live_audio import AudioFeed, to_microseconds
from tests.fakes import LumaTask, plain_renderer
from tests.media import free_port, start_udp_sender
from tests.test_sinks import HEIGHT, WIDTH, audio_packets, audio_seconds, make_source, write_frames


def stop_when_done(pipeline: Pipeline, senders: list[threading.Thread], abort: bool = False) -> threading.Thread:
    """Stop (or abort) ``pipeline`` once every sender has sent its last frame."""
    def watch() -> None:
        for sender in senders:
            sender.join(30)
        pipeline.abort() if abort else pipeline.stop(interrupted=False)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def tracks(path: Path) -> tuple[list[Fraction], list[tuple[Fraction, Fraction]]]:
    """Start times of the video packets and (start, end) seconds of the audio packets."""
    with av.open(str(path)) as container:
        video, audio = [], []
        for packet in container.demux():
            if packet.pts is None:
                continue
            start = packet.pts * packet.time_base
            if packet.stream.type == "video":
                video.append(start)
            elif packet.stream.type == "audio":
                audio.append((start, start + packet.duration * packet.time_base))
    return sorted(video), audio


def record(tmp_path: Path, audio_codec: str | None, *, abort: bool = False, delay: float = 0.0,
           extension: str = ".mp4"):
    """Send 2 s of a stream over UDP and record it through ``stream.build_pipeline``; returns
    the output and the run's summary."""
    port, out = free_port(), tmp_path / f"rec{extension}"
    sender = start_udp_sender(port, 2.0, audio_codec, delay=0.3)
    pipeline = stream.build_pipeline(f"udp://127.0.0.1:{port}", LumaTask(delay=delay), out=str(out),
                                     device="cpu", precision="fp32")
    stop_when_done(pipeline, [sender], abort)
    summary = pipeline.run()
    return out, summary


@pytest.mark.parametrize("audio_codec, extension", [("aac", ".mp4"), ("mp2", ".mp4"), ("aac", ".mkv")])
def test_live_recording_keeps_the_audio_in_step_while_frames_drop(tmp_path, audio_codec, extension):
    out, summary = record(tmp_path, audio_codec, delay=0.08, extension=extension)
    assert summary.exit_code == 0 and summary.dropped > 0, "live mode dropped frames"
    video, audio = tracks(out)
    assert len(video) >= 5 and audio
    video_span = video[-1] + Fraction(1, 25) - video[0]
    audio_span = audio[-1][1] - audio[0][0]
    assert abs(audio_span - video_span) < 0.5
    assert abs(audio[0][0] - video[0]) < 0.1
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name in ("aac", "mp2", "mp3float")


def test_the_crash_safe_fragmented_recording_holds_the_audio(tmp_path):
    out, _ = record(tmp_path, "aac", abort=True)
    with open(out, "rb") as handle:
        assert b"moof" in handle.read(), "an aborted run leaves the file fragmented"
    video, audio = tracks(out)
    assert video and audio
    assert abs(audio[0][0] - video[0]) < 0.1
    assert abs((audio[-1][1] - audio[0][0]) - (video[-1] - video[0])) < 0.5


def test_a_stream_without_audio_records_video_only_and_says_nothing_about_it(tmp_path, caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        out, summary = record(tmp_path, None)
    assert summary.exit_code == 0
    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1 and not container.streams.audio
    said = caplog.text + " ".join(str(warning.message) for warning in caught)
    assert "audio" not in said


def test_audio_resumes_with_the_video_after_an_outage_and_reconnect(tmp_path):
    """Two senders 1 s apart, each with its own clock from 0: the source times out, reconnects,
    and the audio has the same gap as the video instead of sliding against it."""
    port, out = free_port(), tmp_path / "rec.mp4"
    first = start_udp_sender(port, 1.2, "aac", delay=0.3)
    second = start_udp_sender(port, 1.2, "aac", delay=0.3 + 1.2 + 1.0)
    source = open_source(f"udp://127.0.0.1:{port}", read_timeout=0.3, retry_delay=0.05, retry_max_delay=0.1,
                         reconnect_attempts=50)
    sink = open_sink(str(out), source.info)
    pipeline = Pipeline(source, LumaTask(), plain_renderer, [sink], device="cpu", precision="fp32")
    stop_when_done(pipeline, [first, second])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = pipeline.run()
    assert summary.exit_code == 0 and source.reconnects == 1
    video, audio = tracks(out)
    video_gap = max(range(1, len(video)), key=lambda i: video[i] - video[i - 1])
    audio_gap = max(range(1, len(audio)), key=lambda i: audio[i][0] - audio[i - 1][0])
    assert video[video_gap] - video[video_gap - 1] > 0.8, "the outage is a gap in the video"
    assert audio[audio_gap][0] - audio[audio_gap - 1][0] > 0.8, "and in the audio"
    assert abs(audio[audio_gap][0] - video[video_gap]) < 0.15, "audio resumes with the video"
    assert abs(audio[audio_gap - 1][0] - video[video_gap - 1]) < 0.15, "and paused with it"
    assert abs(audio[0][0] - video[0]) < 0.1


def test_live_audio_the_container_cannot_hold_is_reencoded_to_aac(tmp_path, caplog):
    """G.711 (pcm_mulaw, as IP cameras send it) cannot go into MP4: the feed's packets are decoded
    with the parameters the feed kept and re-encoded, on the frames' timeline."""
    source = tmp_path / "camera.mov"
    make_source(source, audio_codec="pcm_mulaw")
    with av.open(str(source)) as container:
        feed = AudioFeed(container.streams.audio[0], "rtsp://camera")
        packets = [to_microseconds(packet) for packet in container.demux(audio=0) if packet.size]
    info = StreamInfo(WIDTH, HEIGHT, MICROSECOND, fps=10.0, live=True, audio_feed=feed)
    path = tmp_path / "recording.mp4"
    with caplog.at_level(logging.WARNING, logger="stream.sinks"):
        with VideoSink(path, info) as sink:
            feed.add(packets, offset=0, anchor=0)
            write_frames(sink, [index * 100_000 for index in range(20)], MICROSECOND)
    assert "re-encoding the audio to AAC" in caplog.text
    codec, written = audio_packets(path)
    assert codec == "aac" and written[0][0] < 0.05
    assert abs(audio_seconds(path) - 2.0) <= 1024 / 8000


def _packets(*pts: int) -> list[av.Packet]:
    packets = []
    for value in pts:
        packet = av.Packet(b"\0" * 8)
        packet.pts = packet.dts = value
        packet.time_base = MICROSECOND
        packets.append(packet)
    return packets


def test_the_feed_places_packets_on_the_timeline_and_keeps_them_in_order(tmp_path, monkeypatch):
    source = tmp_path / "tone.mkv"
    make_source(source, audio_codec="aac", rate=8000)
    other = tmp_path / "other.mkv"
    make_source(other, audio_codec="aac", rate=16000)
    with av.open(str(source)) as first, av.open(str(other)) as changed:
        feed = AudioFeed(first.streams.audio[0], "udp://x")
        assert feed.accepts(first.streams.audio[0]) and not feed.accepts(None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert not feed.accepts(changed.streams.audio[0]) and not feed.accepts(changed.streams.audio[0])
        assert len(caught) == 1 and "16000 Hz" in str(caught[0].message)

    feed.add(_packets(0), offset=0, anchor=0)
    assert feed.next_packet() is None, "nothing is queued before a sink claims the feed"
    feed.claim()
    # before the start, a repeat, one far from its video frame: dropped
    feed.add(_packets(-20_000, 0, 0, 21_000, 9_000_000), offset=0, anchor=0)
    feed.add(_packets(10_000), offset=1_000_000, anchor=1_000_000)
    taken = []
    while (packet := feed.next_packet()) is not None:
        taken.append(packet.pts)
    assert taken == [0, 21_000, 1_010_000]

    monkeypatch.setattr(live_audio, "QUEUE_PACKETS", 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feed.add(_packets(*range(2_000_000, 2_100_000, 20_000)), offset=0, anchor=2_000_000)
    assert len(caught) == 1 and "dropping the oldest audio" in str(caught[0].message)
    assert [feed.next_packet().pts for _ in range(3)] == [2_040_000, 2_060_000, 2_080_000]
    feed.close()
    feed.add(_packets(3_000_000), offset=0, anchor=3_000_000)
    assert feed.next_packet() is None


def test_live_audio_starts_with_the_first_recorded_frame(tmp_path):
    """The frames before the first one recorded were dropped (or never decoded): their audio is
    left out too, so both tracks start together."""
    source = tmp_path / "tone.mkv"
    make_source(source, audio_codec="aac", rate=8000)
    with av.open(str(source)) as container:
        feed = AudioFeed(container.streams.audio[0], "udp://x")
        packets = [to_microseconds(packet) for packet in container.demux(audio=0) if packet.size]
    path = tmp_path / "recording.mp4"
    with VideoSink(path, StreamInfo(WIDTH, HEIGHT, MICROSECOND, fps=10.0, live=True, audio_feed=feed)) as sink:
        feed.add(packets, offset=0, anchor=0)
        write_frames(sink, [index * 100_000 for index in range(5, 20)], MICROSECOND)
    video, audio = tracks(path)
    assert video[0] == Fraction(1, 2)
    assert Fraction(1, 2) - Fraction(1024, 8000) < audio[0][0] <= Fraction(1, 2)
    assert abs(audio[-1][1] - 2) <= Fraction(1024, 8000)
