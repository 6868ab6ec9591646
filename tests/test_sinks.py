"""Sinks: video files keep timestamps and audio and stay playable; raw outputs round-trip."""
from __future__ import annotations

import csv
import logging
import signal
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from stream.errors import SinkError
from stream.frames import Frame, StreamInfo
from stream.sinks import (
    ImageFolderSink,
    NullSink,
    RawSink,
    VideoSink,
    WindowSink,
    depth_to_millimetres,
    open_sink,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIP = SHARED_DATA / "video" / "solidWhiteRight.mp4"
WIDTH, HEIGHT = 32, 24


def make_source(
    path: Path, frames: int = 20, fps: int = 10, audio_codec: str | None = "aac", rate: int = 8000
) -> None:
    """A tiny H.264 file of ``frames`` frames with a sine tone of the same duration."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream(audio_codec, rate=rate, layout="mono") if audio_codec else None
        for index in range(frames):
            image = np.full((HEIGHT, WIDTH, 3), index * 10, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is None:
            return
        total = frames * rate // fps
        for start in range(0, total, 1024):
            count = min(1024, total - start)
            tone = (np.sin(np.arange(start, start + count) / 5.0) * 8000).astype(np.int16)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def info_for(time_base: Fraction, *, fps: float | None = 10.0, frame_count: int | None = None,
             audio_source: Path | None = None, size: tuple[int, int] = (WIDTH, HEIGHT)) -> StreamInfo:
    return StreamInfo(size[0], size[1], time_base, fps=fps, frame_count=frame_count,
                      audio_source=str(audio_source) if audio_source else None)


def frame_at(index: int, pts: int, time_base: Fraction, image: np.ndarray | None = None) -> Frame:
    if image is None:
        rng = np.random.default_rng(index)
        image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return Frame(index, pts, time_base, image, meta={"name": f"f{index:04d}"})


def write_frames(sink, pts: list[int], time_base: Fraction) -> list[Frame]:
    frames = [frame_at(i, p, time_base) for i, p in enumerate(pts)]
    for frame in frames:
        sink.write(frame, frame.image, {})
    return frames


def decoded_video(path: Path) -> tuple[dict, list[av.VideoFrame]]:
    """Facts about the first video stream (read while the file is open) and its decoded frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                 "profile": stream.codec_context.profile, "index": stream.index}
        return facts, list(container.decode(stream))


def audio_packets(path: Path) -> tuple[str, list[tuple[Fraction, bytes]]]:
    """Codec name and (start seconds, payload) of each audio packet."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [(p.pts * p.time_base, bytes(p)) for p in container.demux(stream) if p.dts is not None]
        return stream.codec_context.name, packets


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


@pytest.mark.parametrize("extension", [".mp4", ".mkv", ".mov"])
def test_video_keeps_constant_rate_timestamps(tmp_path, extension):
    time_base = Fraction(1, 25)
    path = tmp_path / f"out{extension}"
    with VideoSink(path, info_for(time_base, fps=25.0)) as sink:
        frames = write_frames(sink, list(range(8)), time_base)
    assert sink.frames_written == 8
    facts, decoded = decoded_video(path)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert len(decoded) == 8
    assert [f.pts * f.time_base for f in decoded] == [f.seconds for f in frames]
    assert (decoded[0].width, decoded[0].height) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
def test_video_keeps_variable_frame_rate_timestamps(tmp_path, extension):
    time_base = Fraction(1, 1000)
    pts = [0, 40, 80, 150, 160, 300, 301, 500, 520, 900]
    path = tmp_path / f"vfr{extension}"
    with VideoSink(path, info_for(time_base, fps=None)) as sink:
        frames = write_frames(sink, pts, time_base)
    _, decoded = decoded_video(path)
    assert [f.pts * f.time_base for f in decoded] == [f.seconds for f in frames]


def test_mp4_is_browser_friendly(tmp_path):
    path = tmp_path / "web.mp4"
    with VideoSink(path, info_for(Fraction(1, 10))) as sink:
        write_frames(sink, list(range(3)), Fraction(1, 10))
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    assert decoded_video(path)[0]["profile"] == "High"


def test_non_increasing_timestamps_are_made_increasing(tmp_path, caplog):
    time_base = Fraction(1, 10)
    path = tmp_path / "dup.mp4"
    with caplog.at_level(logging.WARNING, logger="stream.sinks"):
        with VideoSink(path, info_for(time_base)) as sink:
            write_frames(sink, [0, 1, 1, 0, 5], time_base)
    _, decoded = decoded_video(path)
    pts = [f.pts * f.time_base for f in decoded]
    assert len(pts) == 5 and pts == sorted(set(pts))
    assert pts[-1] == Fraction(1, 2)
    assert "non-increasing timestamp" in caplog.text


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path):
    time_base = Fraction(1, 10)
    image = np.full((HEIGHT - 1, WIDTH - 1, 3), 200, np.uint8)
    path = tmp_path / "odd.mp4"
    with VideoSink(path, info_for(time_base, size=(WIDTH - 1, HEIGHT - 1))) as sink:
        for index in range(3):
            sink.write(frame_at(index, index, time_base, image), image, {})
    _, decoded = decoded_video(path)
    assert len(decoded) == 3
    rgb = decoded[0].to_ndarray(format="rgb24")
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert abs(int(rgb[-1].mean()) - 200) <= 6 and abs(int(rgb[:, -1].mean()) - 200) <= 6


def test_early_close_gives_a_playable_file_and_close_is_idempotent(tmp_path):
    time_base = Fraction(1, 10)
    path = tmp_path / "early.mp4"
    sink = VideoSink(path, info_for(time_base, frame_count=20))
    frames = write_frames(sink, list(range(3)), time_base)
    sink.close()
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.write(frames[0], frames[0].image, {})
    _, decoded = decoded_video(path)
    assert len(decoded) == 3


def test_close_without_frames_writes_a_valid_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    VideoSink(path, info_for(Fraction(1, 10))).close()
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert list(container.decode(video=0)) == [] if container.streams.video else True


def test_close_from_another_thread_keeps_every_frame(tmp_path):
    time_base = Fraction(1, 10)
    path = tmp_path / "threaded.mp4"
    sink = VideoSink(path, info_for(time_base))
    closer = threading.Timer(0.05, sink.close)
    closer.start()
    with pytest.raises(SinkError, match="closed"):
        for index in range(5000):
            sink.write(frame_at(index, index, time_base), frame_at(index, index, time_base).image, {})
    closer.join()
    _, decoded = decoded_video(path)
    assert len(decoded) == sink.frames_written > 0


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_close_from_a_signal_handler_keeps_every_frame(tmp_path):
    time_base = Fraction(1, 10)
    path = tmp_path / "signalled.mp4"
    sink = VideoSink(path, info_for(time_base))
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    previous = signal.signal(signal.SIGALRM, lambda *_: sink.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(SinkError, match="closed"):
            for index in range(5000):
                sink.write(frame_at(index, index, time_base, image), image, {})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    _, decoded = decoded_video(path)
    assert len(decoded) == sink.frames_written > 0


@pytest.mark.parametrize("extension", [".mp4", ".mkv"])
def test_audio_is_stream_copied_without_shifting_the_video(tmp_path, extension):
    source = tmp_path / "source.mp4"
    make_source(source)
    path = tmp_path / f"with_audio{extension}"
    with VideoSink(path, info_for(Fraction(1, 10), frame_count=20, audio_source=source)) as sink:
        frames = write_frames(sink, list(range(20)), Fraction(1, 10))
    codec, copied = audio_packets(path)
    _, original = audio_packets(source)
    assert codec == "aac"
    assert [payload for _, payload in copied] == [payload for _, payload in original]
    facts, decoded = decoded_video(path)
    assert facts["index"] == 0
    assert [f.pts * f.time_base for f in decoded] == [f.seconds for f in frames]


def test_source_without_audio_gives_video_only(tmp_path, caplog):
    source = tmp_path / "silent.mp4"
    make_source(source, audio_codec=None)
    path = tmp_path / "video_only.mp4"
    with caplog.at_level(logging.WARNING, logger="stream.sinks"):
        with VideoSink(path, info_for(Fraction(1, 10), audio_source=source)) as sink:
            write_frames(sink, list(range(3)), Fraction(1, 10))
    assert "no audio stream" in caplog.text
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1


def test_audio_is_trimmed_when_stopping_early(tmp_path):
    source = tmp_path / "source.mp4"
    make_source(source)
    path = tmp_path / "early_audio.mp4"
    with VideoSink(path, info_for(Fraction(1, 10), frame_count=20, audio_source=source)) as sink:
        write_frames(sink, list(range(5)), Fraction(1, 10))
    assert len(decoded_video(path)[1]) == 5
    assert 0.5 <= audio_seconds(path) <= 0.5 + 1024 / 8000
    assert audio_seconds(source) >= 2.0


def test_audio_the_container_rejects_is_reencoded_to_aac(tmp_path, caplog):
    source = tmp_path / "source.mov"
    make_source(source, audio_codec="pcm_mulaw")
    path = tmp_path / "reencoded.mp4"
    with caplog.at_level(logging.WARNING, logger="stream.sinks"):
        with VideoSink(path, info_for(Fraction(1, 10), frame_count=20, audio_source=source)) as sink:
            write_frames(sink, list(range(20)), Fraction(1, 10))
    assert "re-encoding the audio to AAC" in caplog.text
    codec, _ = audio_packets(path)
    assert codec == "aac"
    assert abs(audio_seconds(path) - 2.0) <= 1024 / 8000


def test_overlay_size_change_and_bad_images_raise(tmp_path):
    time_base = Fraction(1, 10)
    with VideoSink(tmp_path / "sizes.mp4", info_for(time_base)) as sink:
        write_frames(sink, [0], time_base)
        smaller = np.zeros((HEIGHT // 2, WIDTH // 2, 3), np.uint8)
        with pytest.raises(SinkError, match="size changed"):
            sink.write(frame_at(1, 1, time_base, smaller), smaller, {})
        grey = np.zeros((HEIGHT, WIDTH), np.uint8)
        with pytest.raises(SinkError, match="H x W x 3 uint8"):
            sink.write(frame_at(1, 1, time_base, grey), grey, {})


def test_unwritable_or_unknown_outputs_raise_at_construction(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    info = info_for(Fraction(1, 10))
    with pytest.raises(SinkError, match="cannot create .*: its parent .*a_file is a file, not a folder"):
        VideoSink(blocker / "sub" / "out.mp4", info)
    with pytest.raises(SinkError, match="its parent .*a_file is a file, not a folder"):
        ImageFolderSink(blocker / "frames")
    with pytest.raises(SinkError, match="output folder .*a_file is a file"):
        RawSink(blocker)
    with pytest.raises(SinkError, match="unknown extension"):
        VideoSink(tmp_path / "out.avi", info)
    with pytest.raises(SinkError, match="unknown output extension"):
        open_sink(str(tmp_path / "out.xyz"), info)
    with pytest.raises(SinkError, match="crf"):
        VideoSink(tmp_path / "out.mp4", info, crf=60)
    with pytest.raises(SinkError, match="preset"):
        VideoSink(tmp_path / "out.mp4", info, preset="warp")
    with pytest.raises(SinkError, match="audio source"):
        VideoSink(tmp_path / "out.mp4", info_for(Fraction(1, 10), audio_source=tmp_path / "missing.mp4"))
    with pytest.raises(SinkError, match="depth format"):
        RawSink(tmp_path / "raw", depth_format="exr")
    with pytest.raises(SinkError, match="image format"):
        ImageFolderSink(tmp_path / "frames", ext="gif")


def test_video_sink_creates_a_missing_parent_directory(tmp_path):
    path = tmp_path / "new" / "deeper" / "out.mkv"
    with VideoSink(path, info_for(Fraction(1, 10))) as sink:
        write_frames(sink, [0, 1], Fraction(1, 10))
    assert len(decoded_video(path)[1]) == 2


def test_raw_outputs_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, (HEIGHT, WIDTH), dtype=np.uint8)
    depth = rng.uniform(0.5, 80.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, -3.0, 70.0
    boxes = [(10.5, 4.25, 8.0, 6.0, 0.875, False), (11.0, 4.5, 8.0, 6.0, 0.25, True)]
    sink = RawSink(tmp_path / "raw", depth_format="both")
    for index, box in enumerate(boxes):
        sink.write(frame_at(index, index, Fraction(1, 10)), np.zeros((2, 2, 3), np.uint8),
                   {"labels": labels, "depth": depth, "box": box})
    with open(tmp_path / "raw" / "tracks.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    sink.close()
    assert rows == [["frame", "x", "y", "w", "h", "score", "lost"],
                    ["0", "10.5", "4.25", "8.0", "6.0", "0.875", "0"],
                    ["1", "11.0", "4.5", "8.0", "6.0", "0.25", "1"]]
    read_labels = cv2.imread(str(tmp_path / "raw" / "f0000_labels.png"), cv2.IMREAD_UNCHANGED)
    assert read_labels.dtype == np.uint8 and np.array_equal(read_labels, labels)
    millimetres = cv2.imread(str(tmp_path / "raw" / "f0001_depth.png"), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16
    assert millimetres[0, 0] == 0 and millimetres[0, 1] == 0 and millimetres[0, 2] == 65535
    valid = np.isfinite(depth) & (depth > 0) & (depth < 65.0)
    assert np.abs(millimetres[valid] / 1000.0 - depth[valid]).max() <= 0.001
    assert np.array_equal(np.load(tmp_path / "raw" / "f0001_depth.npy"), depth, equal_nan=True)


def test_raw_sink_writes_only_the_chosen_depth_format_and_rejects_bad_outputs(tmp_path):
    sink = RawSink(tmp_path / "raw", depth_format="npy")
    depth = np.ones((4, 4), np.float32)
    sink.write(frame_at(0, 0, Fraction(1, 10)), np.zeros((2, 2, 3), np.uint8), {"depth": depth})
    with pytest.raises(SinkError, match="labels must be"):
        sink.write(frame_at(1, 1, Fraction(1, 10)), np.zeros((2, 2, 3), np.uint8),
                   {"labels": np.zeros((4, 4), np.int64)})
    with pytest.raises(SinkError, match="tracking box"):
        sink.write(frame_at(2, 2, Fraction(1, 10)), np.zeros((2, 2, 3), np.uint8), {"box": (1, 2, 3)})
    sink.close()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["f0000_depth.npy"]


def test_depth_to_millimetres_rounds_and_clips():
    depth = np.array([[0.0, 0.0014, 0.0016, 1.2344, 1.2346, 65.535, 100.0, -1.0, np.inf]], np.float32)
    assert depth_to_millimetres(depth).tolist() == [[0, 1, 2, 1234, 1235, 65535, 65535, 0, 65535]]


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_image_folder_sink_names_files_after_frames(tmp_path, ext):
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = 255
    with ImageFolderSink(tmp_path / "frames", ext=ext) as sink:
        for index in range(2):
            sink.write(frame_at(index, index, Fraction(1, 10)), image, {})
    files = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert files == [f"f0000.{ext}", f"f0001.{ext}"]
    read = cv2.cvtColor(cv2.imread(str(tmp_path / "frames" / files[0])), cv2.COLOR_BGR2RGB)
    assert np.abs(read.astype(int) - image).max() <= (0 if ext == "png" else 8)


def test_frames_without_a_name_use_their_index_and_unsafe_names_are_refused(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    with ImageFolderSink(tmp_path / "frames") as sink:
        sink.write(Frame(7, 7, Fraction(1, 10), image), image, {})
        with pytest.raises(SinkError, match="unusable as a file name"):
            sink.write(Frame(8, 8, Fraction(1, 10), image, meta={"name": "../escape"}), image, {})
    assert [p.name for p in (tmp_path / "frames").iterdir()] == ["000007.png"]


def test_null_sink_counts_frames():
    sink = NullSink()
    for index in range(3):
        sink.write(frame_at(index, index, Fraction(1, 10)), np.zeros((2, 2, 3), np.uint8), {})
    sink.close()
    assert sink.frames_written == 3 and not sink.stop_requested


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux")
def test_window_sink_without_display_raises(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="no display"):
        WindowSink("densestream")


def test_window_sink_without_gui_support_raises(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n  GUI:    NONE\n")
    with pytest.raises(SinkError, match="no GUI support"):
        WindowSink("densestream")


class FakeHighGui:
    """Stands in for OpenCV's window functions: records what is shown, returns scripted keys."""

    def __init__(self, keys: list[int]) -> None:
        self.keys = keys
        self.shown: list[np.ndarray] = []
        self.windows: set[str] = set()
        self.visible = 1.0

    def install(self, monkeypatch) -> None:
        monkeypatch.setenv("DISPLAY", ":99")
        monkeypatch.setattr(cv2, "namedWindow", lambda title, flags: self.windows.add(title))
        monkeypatch.setattr(cv2, "imshow", self.imshow)
        monkeypatch.setattr(cv2, "waitKey", lambda delay: self.keys.pop(0) if self.keys else -1)
        monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: self.visible)
        monkeypatch.setattr(cv2, "destroyWindow", self.windows.remove)

    def imshow(self, title: str, image: np.ndarray) -> None:
        assert title in self.windows, "imshow before namedWindow"
        self.shown.append(image.copy())


@pytest.mark.parametrize(("target", "key"), [("window", ord("q")), ("show", 27)])
def test_window_sink_shows_bgr_and_stops_on_quit_keys(monkeypatch, target, key):
    gui = FakeHighGui([-1, key])
    gui.install(monkeypatch)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[..., 0] = 255
    sink = open_sink(target, info_for(Fraction(1, 10)))
    assert isinstance(sink, WindowSink)
    sink.write(frame_at(0, 0, Fraction(1, 10)), image, {})
    assert not sink.stop_requested
    sink.write(frame_at(1, 1, Fraction(1, 10)), image, {})
    assert sink.stop_requested
    assert gui.shown[0][0, 0].tolist() == [0, 0, 255]
    sink.close()
    assert gui.windows == set()


def test_window_sink_stops_when_the_user_closes_the_window(monkeypatch):
    gui = FakeHighGui([])
    gui.install(monkeypatch)
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    with WindowSink("demo") as sink:
        sink.write(frame_at(0, 0, Fraction(1, 10)), image, {})
        assert not sink.stop_requested
        gui.visible = 0.0
        sink.write(frame_at(1, 1, Fraction(1, 10)), image, {})
        assert sink.stop_requested


def test_open_sink_picks_the_sink_from_the_target(tmp_path):
    info = info_for(Fraction(1, 10))
    existing = tmp_path / "existing.dir"
    existing.mkdir()
    cases = {
        "null": NullSink,
        str(tmp_path / "a.mp4"): VideoSink,
        str(tmp_path / "b.MKV"): VideoSink,
        str(tmp_path / "c.mov"): VideoSink,
        str(tmp_path / "frames"): ImageFolderSink,
        str(tmp_path / "slashed.d") + "/": ImageFolderSink,
        str(existing): ImageFolderSink,
    }
    for target, kind in cases.items():
        sink = open_sink(target, info)
        sink.close()
        assert type(sink) is kind, target
    with pytest.raises(SinkError, match="preset"):
        open_sink(str(tmp_path / "q.mp4"), info, crf=30, preset="warp")
    with pytest.raises(SinkError, match="does not accept"):
        open_sink(str(tmp_path / "frames"), info, crf=30)


@pytest.mark.shared
@pytest.mark.skipif(not CLIP.exists(), reason=f"shared test clip not found at {CLIP}")
def test_real_clip_reencodes_with_timestamps_and_audio(tmp_path):
    with av.open(str(CLIP)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [Frame(i, f.pts, f.time_base, f.to_ndarray(format="rgb24"), meta={"name": f"{i:06d}"})
                  for i, f in enumerate(container.decode(stream))]
        info = StreamInfo(stream.width, stream.height, stream.time_base, fps=float(stream.average_rate),
                          frame_count=len(frames), audio_source=str(CLIP))
    path = tmp_path / "clip.mp4"
    with VideoSink(path, info, preset="ultrafast") as sink:
        for frame in frames:
            sink.write(frame, frame.image, {})
    _, decoded = decoded_video(path)
    assert len(frames) == len(decoded) == 221
    assert [f.pts * f.time_base for f in decoded] == [f.seconds for f in frames]
    assert abs(audio_seconds(path) - audio_seconds(CLIP)) <= 0.05
    assert abs(audio_seconds(path) - 221 / 25) <= 0.05
