"""Sources: video files, image folders, synth scenes, live streams, and every error path."""
from __future__ import annotations

import re
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import (
    free_port,
    make_audio_only,
    make_video,
    pattern_image,
    spawn_event,
    start_stream_server,
    start_udp_sender,
    truncate,
    write_image,
)
from stream.errors import SourceError
from stream.sources import SYNTH_SCENES, LiveSource, ReconnectPolicy, natural_key, open_source
from stream.sources.live import CameraSession, NetworkSession

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TOLERANCE = 14  # chroma subsampling and YUV rounding at flat-colour edges


def read_all(spec, **options):
    with open_source(spec, **options) as source:
        return source.info, list(source)


def assert_close(image: np.ndarray, expected: np.ndarray) -> None:
    """Colours match away from quadrant borders, where chroma subsampling blurs them."""
    h, w = expected.shape[:2]
    inner = np.zeros((h, w), bool)
    inner[2:h // 2 - 2, 2:w // 2 - 2] = inner[h // 2 + 2:-2, 2:w // 2 - 2] = True
    inner[2:h // 2 - 2, w // 2 + 2:-2] = inner[h // 2 + 2:-2, w // 2 + 2:-2] = True
    diff = np.abs(image.astype(int) - expected.astype(int))[inner]
    assert diff.max() <= TOLERANCE, f"max colour error {diff.max()}"


# ---------------------------------------------------------------------------- video files


def test_mp4_frames_timestamps_and_pixels(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=10)
    info, frames = read_all(clip.path)
    assert (info.width, info.height, info.fps, info.frame_count, info.live) == (64, 48, 25.0, 10, False)
    assert info.name == "clip" and info.audio_source is None
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts * f.time_base for f in frames] == clip.seconds
    assert all(f.time_base == info.time_base for f in frames)
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous
        assert frame.image.shape == (48, 64, 3)
        assert_close(frame.image, pattern_image(frame.index, 64, 48))
    assert frames[3].meta["name"] == "frame_000003"


def test_variable_frame_rate_keeps_the_files_own_timestamps(tmp_path):
    clip = make_video(tmp_path / "vfr.mkv", frames=10, vfr=True)
    _, frames = read_all(clip.path)
    gaps = np.diff([f.pts for f in frames])
    assert len(set(gaps)) > 1
    assert [f.seconds for f in frames] == clip.seconds


def test_frames_without_pts_continue_from_the_previous(tmp_path):
    clip = make_video(tmp_path / "raw.h264", frames=6, container_format="h264")
    with av.open(str(clip.path)) as container:
        assert next(container.decode(video=0)).pts is None
    _, frames = read_all(clip.path)
    assert [f.seconds for f in frames] == [Fraction(i, 25) for i in range(6)]


def test_ten_bit_video_converts_to_rgb8(tmp_path):
    codec, pix_fmt = ("libx265", "yuv420p10le") if "libx265" in av.codecs_available else ("prores_ks", "yuv422p10le")
    clip = make_video(tmp_path / "deep.mkv", frames=3, codec=codec, pix_fmt=pix_fmt, options={"crf": "4"})
    with av.open(str(clip.path)) as container:
        assert container.streams.video[0].format.name == pix_fmt
    _, frames = read_all(clip.path)
    assert len(frames) == 3
    for frame in frames:
        assert frame.image.dtype == np.uint8
        assert_close(frame.image, pattern_image(frame.index, 64, 48))


def test_odd_frame_size(tmp_path):
    clip = make_video(tmp_path / "odd.mkv", frames=4, size=(63, 47), codec="ffv1")
    info, frames = read_all(clip.path)
    assert (info.width, info.height) == (63, 47)
    assert all(f.image.shape == (47, 63, 3) for f in frames)
    assert_close(frames[2].image, pattern_image(2, 63, 47))


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_rotation_is_applied(tmp_path, degrees):
    clip = make_video(tmp_path / "rotated.mp4", frames=3, rotation=degrees)
    info, frames = read_all(clip.path)
    expected = np.rot90(pattern_image(1, 64, 48), degrees // 90)
    assert (info.width, info.height) == (expected.shape[1], expected.shape[0])
    assert frames[1].image.flags.c_contiguous
    assert_close(frames[1].image, expected)


def test_audio_source_is_set_only_when_the_file_has_audio(tmp_path):
    with_audio = make_video(tmp_path / "talk.mp4", frames=5, audio=True)
    silent = make_video(tmp_path / "silent.mp4", frames=5)
    assert read_all(with_audio.path)[0].audio_source == str(with_audio.path)
    assert read_all(silent.path)[0].audio_source is None


def test_truncated_file_yields_what_decodes_then_raises(tmp_path):
    clip = make_video(tmp_path / "full.mp4", frames=30, container_options={"movflags": "faststart"})
    cut = truncate(clip.path, tmp_path / "cut.mp4", keep=0.8)
    frames = []
    with pytest.raises(SourceError, match=r"cut\.mp4: .*truncated.* after (\d+) frames") as raised:
        with open_source(cut) as source:
            frames.extend(source)
    assert 0 < len(frames) < 30
    assert f"after {len(frames)} frames" in str(raised.value)


# ---------------------------------------------------------------------------- errors


def _text_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    return path


def _empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.touch()
    return path


def _moov_missing(tmp_path: Path) -> Path:
    clip = make_video(tmp_path / "whole.mp4", frames=10)
    return truncate(clip.path, tmp_path / "nomoov.mp4", keep=0.5)


def _empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    return folder


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.mp4", r"missing\.mp4: no such file"),
    (_empty_file, r"empty\.mp4: file is empty"),
    (_text_mp4, r"notes\.mp4: cannot open as video"),
    (_moov_missing, r"nomoov\.mp4: cannot open as video"),
    (lambda tmp: make_audio_only(tmp / "song.m4a"), r"song\.m4a: no video stream"),
    (_empty_folder, r"nothing: no image files"),
    (lambda tmp: str(tmp / "*.png"), r"\*\.png: no image files"),
], ids=["missing", "empty", "text", "moov-missing", "audio-only", "empty-folder", "empty-glob"])
def test_bad_inputs_raise_one_clear_line(tmp_path, make, message):
    with pytest.raises(SourceError, match=message) as raised:
        open_source(make(tmp_path))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:9/x", "http://127.0.0.1:9/x", "tcp://127.0.0.1:9"])
def test_unreachable_url_fails_within_the_timeout(url):
    started = time.monotonic()
    with pytest.raises(SourceError, match=f"{url}: cannot connect"):
        open_source(url, open_timeout=2.0, read_timeout=2.0)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("spec", [99, "99", "/dev/video99"])
def test_unknown_camera(spec):
    with pytest.raises(SourceError, match="camera .*99: cannot open camera"):
        open_source(spec)


@pytest.mark.parametrize("spec, options, message", [
    ("synth://pattern", {"fps": 10}, "unknown option"),
    ("ftp://example.com/a.mp4", {}, "unsupported URL scheme 'ftp'"),
    ("synth://nebula", {}, "unknown synthetic scene 'nebula'"),
    ("synth://pattern?size=big", {}, "size must look like"),
    ("synth://pattern?fps=0", {}, "fps must be positive"),
    ("synth://pattern?frames=-2", {}, "frames must not be negative"),
    ("synth://pattern?sparkle=1", {}, "unknown parameter"),
    ("", {}, "empty source"),
], ids=["option", "scheme", "scene", "size", "fps", "frames", "param", "empty"])
def test_bad_specs_and_options(spec, options, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec, **options)


# ---------------------------------------------------------------------------- image folders


def test_natural_key_orders_numbers_by_value():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame2b.png"]
    assert sorted(names, key=natural_key) == ["Frame1.png", "frame2.png", "frame2b.png", "frame10.png"]


def test_folder_sorts_naturally_and_converts_every_depth(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 250, 120, 5
    write_image(tmp_path / "frame1.png", rgb)
    write_image(tmp_path / "frame2.png", np.full((6, 8), 65535, np.uint16))
    write_image(tmp_path / "frame10.png", np.dstack([rgb, np.full((6, 8), 30, np.uint8)]))
    write_image(tmp_path / "frame3.tif", np.full((6, 8, 3), 257 * 40, np.uint16))
    write_image(tmp_path / "frame4.png", np.full((6, 8), 77, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    info, frames = read_all(tmp_path, fps=10)
    assert (info.width, info.height, info.frame_count, info.fps, info.time_base) == (8, 6, 5, 10.0, Fraction(1, 10))
    assert [f.meta["name"] for f in frames] == ["frame1", "frame2", "frame3", "frame4", "frame10"]
    assert [f.pts for f in frames] == [0, 1, 2, 3, 4]
    assert [tuple(f.image[0, 0]) for f in frames] == [(250, 120, 5), (255, 255, 255), (40, 40, 40),
                                                      (77, 77, 77), (250, 120, 5)]
    assert all(f.image.dtype == np.uint8 and f.image.flags.c_contiguous for f in frames)


def test_glob_selects_matching_images(tmp_path):
    for name in ["b12.png", "b3.png", "a1.jpg"]:
        write_image(tmp_path / name, np.full((4, 4, 3), 9, np.uint8))
    _, frames = read_all(str(tmp_path / "b*.png"))
    assert [f.meta["name"] for f in frames] == ["b3", "b12"]


def test_folder_with_mixed_sizes_gives_each_image_at_its_own_size(tmp_path):
    write_image(tmp_path / "1.png", np.zeros((4, 4, 3), np.uint8))
    write_image(tmp_path / "2.png", np.zeros((5, 4, 3), np.uint8))
    info, frames = read_all(tmp_path)
    assert info.sizes_vary and (info.width, info.height) == (4, 4)
    assert [f.image.shape[:2] for f in frames] == [(4, 4), (5, 4)]


def test_corrupt_image_names_the_file(tmp_path):
    write_image(tmp_path / "1.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "2.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match=r"2\.png: not an image"):
        read_all(tmp_path)


# ---------------------------------------------------------------------------- synth


def test_synth_is_deterministic_and_moves():
    info, first = read_all("synth://pattern?frames=6&size=40x30&fps=10&seed=3")
    _, again = read_all("synth://pattern?frames=6&size=40x30&fps=10&seed=3")
    _, other = read_all("synth://pattern?frames=6&size=40x30&fps=10&seed=4")
    assert (info.width, info.height, info.frame_count, info.live, info.time_base) == (40, 30, 6, False, Fraction(1, 10))
    assert len(first) == 6 and first[0].image.shape == (30, 40, 3)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, again))
    assert not np.array_equal(first[0].image, other[0].image)
    assert not np.array_equal(first[0].image, first[5].image)


def test_synth_without_frames_is_endless():
    with open_source("synth://pattern?size=16x16") as source:
        assert source.info.frame_count is None
        frames = [frame for frame, _ in zip(source, range(60))]
    assert [f.index for f in frames] == list(range(60))


def test_live_synth_runs_in_real_time():
    with open_source("synth://pattern?frames=6&size=16x16&fps=50&live=1") as source:
        assert source.info.live
        started = time.monotonic()
        frames = list(source)
    assert len(frames) == 6
    assert time.monotonic() - started >= 5 / 50 - 0.01


def test_live_option_overrides_the_policy(tmp_path):
    clip = make_video(tmp_path / "paced.mp4", frames=5, fps=25)
    with open_source(clip.path, live=True) as source:
        assert source.info.live
        started = time.monotonic()
        assert len(list(source)) == 5
    assert time.monotonic() - started >= 4 / 25 - 0.01
    assert not read_all("synth://pattern?frames=2&live=1", live=False)[0].live
    with pytest.raises(SourceError, match="live must be"):
        open_source(clip.path, live="yes")


def test_a_new_synth_scene_plugs_in(monkeypatch):
    def flat(width, height, seed, params):
        level = int(params.pop("level", "7"))
        return lambda index: np.full((height, width, 3), level + index, np.uint8)

    monkeypatch.setitem(SYNTH_SCENES, "flat", flat)
    info, frames = read_all("synth://flat?frames=2&size=4x2&level=100")
    assert info.name == "synth_flat"
    assert [int(f.image[0, 0, 0]) for f in frames] == [100, 101]


# ---------------------------------------------------------------------------- lifecycle


def test_close_is_idempotent_and_iteration_is_single_pass(tmp_path):
    clip = make_video(tmp_path / "c.mp4", frames=3)
    source = open_source(clip.path)
    assert len(list(source)) == 3
    with pytest.raises(SourceError, match="only once"):
        iter(source)
    source.close()
    source.close()
    assert source.closed


def test_iteration_in_a_worker_thread_and_close_from_another(tmp_path):
    clip = make_video(tmp_path / "t.mp4", frames=10)
    source = open_source(clip.path)
    got, first = [], threading.Event()

    def consume():
        for frame in source:
            got.append(frame.index)
            first.set()
            time.sleep(0.02)

    worker = threading.Thread(target=consume)
    worker.start()
    assert first.wait(5)
    source.close()
    worker.join(2)
    assert not worker.is_alive()
    assert got == list(range(len(got))) and len(got) < 10


def test_live_camera_machinery_stamps_microseconds_and_reconnects(tmp_path):
    clip = make_video(tmp_path / "cam.avi", frames=5, codec="mjpeg", pix_fmt="yuvj420p")
    source = LiveSource(lambda: CameraSession(str(clip.path), "cam", None, None, None), label="cam", name="cam",
                        policy=ReconnectPolicy(retry_delay=0.01))
    with source:
        assert source.info.live and source.info.time_base == Fraction(1, 1_000_000)
        frames = [frame for frame, _ in zip(source, range(12))]
    assert [f.index for f in frames] == list(range(12))
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))
    assert len(frames) + source.dropped > 5  # the 5-frame "camera" was reopened after it ended


def test_live_outages_and_reconnects_are_reported(tmp_path):
    clip = make_video(tmp_path / "cam.avi", frames=5, codec="mjpeg", pix_fmt="yuvj420p")
    attempts = []

    def connect():
        attempts.append(1)
        if len(attempts) == 2:
            raise SourceError("cam: cannot open the device")
        return CameraSession(str(clip.path), "cam", None, None, None)

    source = LiveSource(connect, label="cam", name="cam", policy=ReconnectPolicy(retry_delay=0.01))
    with pytest.warns(UserWarning) as caught, source:
        [frame for frame, _ in zip(source, range(8))]
    messages = [str(warning.message) for warning in caught]
    assert re.fullmatch(r"cam: no frames since \d\d:\d\d:\d\d \(stream ended\); reconnecting", messages[0])
    assert messages[1].startswith("cam: reconnect attempt 1 of 10 failed") and "cannot open the device" in messages[1]
    assert re.fullmatch(r"cam: back after an outage of \d+\.\d s \(reconnect attempt 2\).*", messages[2])


class _Silent:
    """A session that connects but yields nothing: the stream has not started yet."""

    fps = None

    def read(self):
        return None

    def close(self):
        pass


def test_a_failed_first_read_is_retried_like_an_outage(tmp_path):
    clip = make_video(tmp_path / "cam.avi", frames=5, codec="mjpeg", pix_fmt="yuvj420p")
    sessions = iter([_Silent(), _Silent(), CameraSession(str(clip.path), "cam", None, None, None)])
    with pytest.warns(UserWarning, match=r"cam: first read failed \(connected but received no frame\); retry 2 of 5"):
        source = LiveSource(lambda: next(sessions), label="cam", name="cam",
                            policy=ReconnectPolicy(attempts=5, retry_delay=0.01))
    with source:
        assert (source.info.width, source.info.height) == (64, 48)
    with pytest.raises(SourceError, match=r"cam: connected but received no frame \(retried 2 time"), \
            pytest.warns(UserWarning):
        LiveSource(_Silent, label="cam", name="cam", policy=ReconnectPolicy(attempts=2, retry_delay=0.01))


# ---------------------------------------------------------------------------- network


def _open_when_listening(url: str, **options):
    deadline = time.monotonic() + 20
    while True:
        try:
            return open_source(url, **options)
        except SourceError as error:
            if "refused" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_network_stream_reconnects_with_monotonic_frames():
    port = free_port()
    go = spawn_event()
    first = start_stream_server(port, frames=12, shade=60)
    second = start_stream_server(port, frames=12, shade=190, go=go, delay=0.3)
    try:
        source = _open_when_listening(f"tcp://127.0.0.1:{port}", reconnect_attempts=100, max_outage=1.5,
                                      retry_delay=0.05, retry_max_delay=0.2, live=False)
        go.set()
        frames = []
        with pytest.raises(SourceError, match="gave up after .* reconnect attempt"):
            with source:
                frames.extend(source)
    finally:
        for server in (first, second):
            server.join(10)
            server.kill()
    assert not source.info.live and (source.info.width, source.info.height) == (64, 48)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))
    shades = [int(round(f.image.mean())) for f in frames]
    assert min(shades) < 100 < max(shades), "frames from both connections"
    assert shades == sorted(shades)
    assert len(frames) == 24 and source.dropped == 0  # offline policy: nothing dropped


def test_the_last_frame_before_a_silence_is_stamped_when_it_arrived():
    """MPEG-TS releases a stream's last video packets only when the read time-out ended the
    wait: they arrived a frame after the ones before them, not a time-out later."""
    port = free_port()
    sender = start_udp_sender(port, 1.0, None, delay=0.3)
    session = NetworkSession(f"udp://127.0.0.1:{port}", "cam", {"analyzeduration": "500000"}, 5.0, 1.0)
    captured = []
    try:
        with pytest.raises(SourceError, match="no data from"):
            while (picture := session.read()) is not None:
                captured.append(picture.captured)
    finally:
        session.close()
        sender.join(5)
    assert len(captured) > 10
    assert max(later - earlier for earlier, later in zip(captured, captured[1:])) < 0.5, "not a time-out late"


def test_close_from_another_thread_ends_a_blocked_read():
    port = free_port()
    server = start_stream_server(port, frames=10, linger=30)
    try:
        source = _open_when_listening(f"tcp://127.0.0.1:{port}", read_timeout=30,
                                      av_options={"analyzeduration": "100000"})
        got, idle = [], threading.Event()

        def consume():
            for frame in source:
                got.append(frame)
            idle.set()

        worker = threading.Thread(target=consume)
        worker.start()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        started = time.monotonic()
        source.close()
        assert idle.wait(2)
        assert time.monotonic() - started < 1.0
        assert got
    finally:
        server.kill()
        server.join(5)


# ---------------------------------------------------------------------------- the real clip


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data (absent in a fresh clone)")
def test_real_dashcam_clip():
    path = SHARED_DATA / "video" / "solidWhiteRight.mp4"
    with open_source(path) as source:
        info = source.info
        pts = [frame.pts for frame in source]
    assert (info.width, info.height, info.frame_count) == (960, 540, 221)
    assert info.audio_source == str(path)
    assert len(pts) == 221
    assert all(b > a for a, b in zip(pts, pts[1:]))
