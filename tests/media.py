"""Small test media made on the fly: video clips (any codec, VFR, rotation, audio), audio-only
and truncated or corrupted files, image sequences, a loopback MPEG-TS server for live-stream tests and a
real-time MPEG-TS sender (H.264 with or without audio) for UDP ones.

Import from tests as ``from tests.media import make_video``.
Every clip's frame ``i`` is :func:`pattern_image` ``(i, width, height)``, so tests can check
decoded colours: four flat quadrants, the bottom-right one's grey level steps with ``i``.
"""
from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

TOP_LEFT = (200, 40, 40)
TOP_RIGHT = (40, 200, 40)
BOTTOM_LEFT = (40, 40, 200)
# Frame-to-frame gaps (ms) that a variable-frame-rate clip cycles through.
VFR_GAPS_MS = (40, 20, 70, 33, 47)


@dataclass(frozen=True)
class Clip:
    """A written clip: where it is and the exact timestamps its frames were given."""

    path: Path
    pts: list[int]
    time_base: Fraction

    @property
    def seconds(self) -> list[Fraction]:
        return [p * self.time_base for p in self.pts]


def pattern_image(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 test frame: flat coloured quadrants, bottom-right grey = (20 * index) % 256."""
    image = np.empty((height, width, 3), np.uint8)
    half_w, half_h = width // 2, height // 2
    image[:half_h, :half_w] = TOP_LEFT
    image[:half_h, half_w:] = TOP_RIGHT
    image[half_h:, :half_w] = BOTTOM_LEFT
    image[half_h:, half_w:] = (20 * index) % 256
    return image


def make_video(path: str | Path, frames: int = 10, size: tuple[int, int] = (64, 48), fps: int = 25,
               codec: str = "libx264", pix_fmt: str = "yuv420p", audio: bool = False, vfr: bool = False,
               rotation: int | None = None, container_format: str | None = None,
               options: dict[str, str] | None = None, container_options: dict[str, str] | None = None) -> Clip:
    """Write ``frames`` pattern frames; returns the pts given to each frame and their time base.

    ``vfr`` uses a 1/1000 time base with the irregular gaps :data:`VFR_GAPS_MS`; ``rotation``
    stores a display matrix (counter-clockwise degrees, as FFmpeg reads it back); ``audio`` adds
    an AAC sine track; ``container_format`` forces a muxer (e.g. ``"h264"`` for a raw stream);
    ``options`` go to the encoder, ``container_options`` to the muxer (``{"movflags": "faststart"}``).
    """
    path = Path(path)
    width, height = size
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
    written: list[int] = []
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as container:
        video = container.add_stream(codec, rate=fps, options=_quiet_options(codec, options))
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.time_base = time_base
        video.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48000) if audio else None
        pts = 0
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern_image(index, width, height), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            written.append(pts)
            container.mux(video.encode(frame))
            pts += VFR_GAPS_MS[index % len(VFR_GAPS_MS)] if vfr else 1
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, float(pts * time_base))
    return Clip(path, written, time_base)


def _quiet_options(codec: str, options: dict[str, str] | None) -> dict[str, str]:
    quiet = {"x265-params": "log-level=error"} if codec == "libx265" else {}
    return {**quiet, **(options or {})}


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream,
                seconds: float) -> None:
    """A 440 Hz mono tone of ``seconds`` in 1024-sample frames."""
    rate, chunk = stream.rate, 1024
    total = max(chunk, int(rate * seconds))
    for start in range(0, total, chunk):
        t = (np.arange(start, start + chunk) / rate).astype(np.float32)
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_audio_only(path: str | Path, seconds: float = 0.5) -> Path:
    """An .m4a-style file with one AAC track and no video."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        _write_tone(container, container.add_stream("aac", rate=48000), seconds)
    return path


def truncate(source: str | Path, target: str | Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``source``'s bytes, as an interrupted download would."""
    data = Path(source).read_bytes()
    target = Path(target)
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def corrupt(source: str | Path, target: str | Path, start: float = 0.35, stop: float = 0.55) -> Path:
    """Copy ``source`` with every 7th byte of its media data between the ``start`` and ``stop``
    fractions flipped, as a bad disk sector or a broken transfer would leave it (an MP4's
    ``mdat`` box only: the index stays readable)."""
    data = bytearray(Path(source).read_bytes())
    begin = data.index(b"mdat") + 4
    end = data.index(b"moov") if data.index(b"moov") > begin else len(data)
    for position in range(begin + int((end - begin) * start), begin + int((end - begin) * stop), 7):
        data[position] ^= 0x5A
    target = Path(target)
    target.write_bytes(bytes(data))
    return target


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Save an RGB/RGBA/grey array (uint8 or uint16) with OpenCV, which expects BGR order."""
    path = Path(path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"OpenCV could not write {path}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_mpegts(port: int, frames: int, shade: int, linger: float, go: multiprocessing.Event | None,
                  delay: float) -> None:
    """Listen once on ``port``, send ``frames`` flat ``shade`` frames as MPEG-TS, linger, hang up."""
    if go is not None:
        go.wait(30)
    time.sleep(delay)
    url = f"tcp://127.0.0.1:{port}?listen=1&listen_timeout=15000"
    with av.open(url, "w", format="mpegts") as container:
        video = container.add_stream("mpeg2video", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.max_b_frames, video.gop_size = 0, 5
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), shade, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        time.sleep(linger)


def start_stream_server(port: int, frames: int = 12, shade: int = 128, linger: float = 0.0,
                        go: multiprocessing.Event | None = None, delay: float = 0.0) -> multiprocessing.Process:
    """Serve one MPEG-TS connection on ``tcp://127.0.0.1:port`` from a child process.

    A child process, not a thread: FFmpeg's listening socket holds the GIL while it waits.
    With ``go`` (from :func:`spawn_event`) it starts listening only once ``go`` is set, then
    after ``delay`` seconds. Call ``terminate()`` / ``join()`` on the returned process when done.
    """
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_mpegts, args=(port, frames, shade, linger, go, delay), daemon=True)
    process.start()
    return process


def spawn_event() -> multiprocessing.Event:
    """An event that :func:`start_stream_server` children can wait on."""
    return multiprocessing.get_context("spawn").Event()


def send_mpegts(url: str, seconds: float, audio_codec: str | None = "aac", fps: int = 25,
                size: tuple[int, int] = (64, 48)) -> None:
    """Send ``seconds`` of H.264 pattern frames (and a 440 Hz tone in ``audio_codec``) to
    ``url`` as MPEG-TS, paced in real time, timestamps from 0."""
    width, height = size
    rate = 48000
    with av.open(url, "w", format="mpegts", container_options={"flush_packets": "1"}) as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "tune": "zerolatency"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = fps // 2
        sound = container.add_stream(audio_codec, rate=rate, layout="mono") if audio_codec else None
        started, samples = time.monotonic(), 0
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(pattern_image(index, width, height), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
            while sound is not None and samples < (index + 1) * rate // fps:
                container.mux(sound.encode(_tone(sound, samples)))
                samples += sound.frame_size
            time.sleep(max(0.0, started + (index + 1) / fps - time.monotonic()))
        container.mux(video.encode(None))
        if sound is not None:
            container.mux(sound.encode(None))


def _tone(stream: av.audio.stream.AudioStream, start: int) -> av.AudioFrame:
    """One encoder frame of a 440 Hz tone from sample ``start``, in the encoder's sample format."""
    t = np.arange(start, start + stream.frame_size) / stream.rate
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).reshape(1, -1)
    if stream.format.name.startswith("s16"):
        samples = (samples * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples.astype(samples.dtype if samples.dtype == np.int16 else np.float32),
                                       format=stream.format.name, layout="mono")
    frame.sample_rate, frame.pts = stream.rate, start
    return frame


def start_udp_sender(port: int, seconds: float, audio_codec: str | None = "aac", delay: float = 0.0) -> threading.Thread:
    """Start :func:`send_mpegts` to ``udp://127.0.0.1:port`` in a thread after ``delay`` seconds."""
    def send() -> None:
        time.sleep(delay)
        send_mpegts(f"udp://127.0.0.1:{port}?pkt_size=1316", seconds, audio_codec)

    sender = threading.Thread(target=send, name="udp sender", daemon=True)
    sender.start()
    return sender
