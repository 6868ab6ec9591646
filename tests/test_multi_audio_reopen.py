"""A multi-stream recording keeps a network stream's audio after the engine opened the stream
again from scratch (its own reconnects gave up): the new source's audio joins the recording's
track on the shifted timeline the video is restamped onto."""
from __future__ import annotations

import threading
import warnings
from fractions import Fraction

import av

from stream.multi import MultiStream
from stream.sources import open_source
from stream.sources.live_audio import AudioFeed, Relay, to_microseconds
from tests.fakes import LumaTask
from tests.media import free_port, start_udp_sender
from tests.test_live_audio import tracks
from tests.test_sinks import make_source

AAC_FRAME = Fraction(1024, 48000)
"""Seconds in one packet of the senders' AAC."""


def record_two_sources(tmp_path, second_codec: str) -> tuple[list, list, list[str]]:
    """Two senders on one port, 0.6 s apart; every source the engine opens gives up at the
    first outage, so the second sender is read by a fresh source. The first sender waits a
    second, so that a loaded machine has the engine listening before its first keyframe.
    Returns the recording's video starts, audio (start, end) pairs and the warnings said."""
    port, out = free_port(), tmp_path / "rec.mp4"
    first = start_udp_sender(port, 1.2, "aac", delay=1.0)
    second = start_udp_sender(port, 1.2, second_codec, delay=1.0 + 1.2 + 0.6)
    opened = []

    def opener():
        opened.append(open_source(f"udp://127.0.0.1:{port}", read_timeout=0.3, open_timeout=4.0,
                                  reconnect_attempts=0))
        return opened[-1]

    engine = MultiStream(LumaTask(), device="cpu", precision="fp32", batch=1, hud=False, reopen_for=5.0)

    def stop_after_the_senders() -> None:
        first.join(30)
        second.join(30)
        engine.stop(interrupted=False)

    threading.Thread(target=stop_after_the_senders, daemon=True).start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.add(opener, name="cam", out=str(out), reopen=True)
        summary = engine.run()
    assert len(opened) == 2 and summary.stream("cam").state != "failed", "a fresh source read the second sender"
    video, audio = tracks(out)
    return video, audio, [str(warning.message) for warning in caught]


def test_a_reopened_stream_keeps_recording_its_audio_in_step(tmp_path):
    video, audio, _ = record_two_sources(tmp_path, "aac")
    assert len(video) >= 20 and audio
    video_end = video[-1] + Fraction(1, 25)
    assert video_end - video[0] > 1.8, "both senders are in the video"
    assert abs(len(audio) * AAC_FRAME - (video_end - video[0])) < 0.2, "and in the audio"
    assert max(later[0] - earlier[0] for earlier, later in zip(audio, audio[1:])) < 0.1, \
        "the second source's audio goes on where the first one's stopped, as the video does"
    assert abs(audio[0][0] - video[0]) < 0.1 and abs(audio[-1][1] - video_end) < 0.2


def test_a_reopened_stream_with_other_audio_records_it_silent_and_says_so_once(tmp_path):
    video, audio, said = record_two_sources(tmp_path, "mp2")
    assert video[-1] - video[0] > 1.8 and audio
    assert audio[-1][1] < video[0] + Fraction(3, 2), "only the first sender's audio is recorded"
    changed = [message for message in said if "the audio changed" in message]
    assert len(changed) == 1 and "mp2" in changed[0]


def test_the_relay_holds_packets_until_placed_then_shifts_them(tmp_path):
    """What a later source demuxes before its first frame is restamped waits, then lands on the
    recording's timeline; audio from before that frame is left out."""
    source = tmp_path / "tone.mkv"
    make_source(source, audio_codec="aac", rate=8000)
    with av.open(str(source)) as container:
        feed = AudioFeed(container.streams.audio[0], "udp://x")
        packets = [to_microseconds(packet) for packet in container.demux(audio=0) if packet.size][:4]
    assert packets[0].pts < 0 <= packets[1].pts, "the encoder's priming packet comes before the start"
    expected = [5_000_000 + packet.pts for packet in packets[1:]]
    feed.claim()
    relay = Relay(feed)
    relay.add(packets[:2], offset=0, anchor=0)
    assert feed.next_packet() is None, "nothing reaches the recording before the shift is known"
    relay.place(shift=5_000_000, start=5_000_000)
    relay.add(packets[2:], offset=0, anchor=packets[2].pts)
    taken = []
    while (packet := feed.next_packet()) is not None:
        taken.append(packet.pts)
    assert taken == expected
