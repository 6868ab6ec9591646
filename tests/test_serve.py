"""``densestream serve`` over HTTP on 127.0.0.1: REST, metrics, MJPEG tiles, health."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("aiohttp", reason="needs the serve extra (aiohttp)")
pytest.importorskip("prometheus_client", reason="needs the serve extra (prometheus-client)")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from stream.serve import start_server  # noqa: E402
from tests.fakes import LumaTask  # noqa: E402

LIVE = "synth://pattern?size=48x32&live=1&fps=20&seed={seed}"


def request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def metrics(url: str) -> dict[tuple[str, tuple], float]:
    status, body = request(url + "/metrics")
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


@pytest.fixture
def server():
    srv = start_server([("cam", LIVE.format(seed=1))], port=0, task=LumaTask(), device="cpu",
                       precision="fp32", batch=2, hud=False)
    yield srv
    srv.close()


def test_listens_on_loopback_only(server):
    assert server.url.startswith("http://127.0.0.1:")
    status, body = request(server.url + "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_add_list_and_remove_streams(server):
    url = server.url
    status, body = request(url + "/streams", "POST", {"source": LIVE.format(seed=2), "name": "yard"})
    assert status == 201 and json.loads(body)["name"] == "yard"
    assert request(url + "/streams", "POST", {"source": LIVE.format(seed=3), "name": "yard"})[0] == 409
    assert request(url + "/streams", "POST", {"name": "x"})[0] == 400
    assert request(url + "/streams", "POST", {"source": "x", "colour": 1})[0] == 400
    def streaming() -> set[str]:
        return {s["name"] for s in json.loads(request(url + "/streams")[1]) if s["frames_out"] > 0}

    assert wait_for(lambda: streaming() == {"cam", "yard"})  # both streams deliver frames
    status, body = request(url + "/streams/yard", "DELETE")
    assert status == 200 and json.loads(body)["frames_out"] > 0
    assert request(url + "/streams/yard", "DELETE")[0] == 404
    assert [s["name"] for s in json.loads(request(url + "/streams")[1])] == ["cam"]


def test_a_stream_that_cannot_open_shows_failed(server):
    assert request(server.url + "/streams", "POST", {"source": "synth://nope", "name": "bad"})[0] == 201
    bad = wait_for(lambda: next(s for s in json.loads(request(server.url + "/streams")[1])
                                if s["name"] == "bad" and s["state"] == "failed"))
    assert "unknown synthetic scene" in bad["error"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_network_stream_with_no_sender_is_reconnecting(server):
    source = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    assert request(server.url + "/streams", "POST", {"source": source, "name": "gone"})[0] == 201
    wait_for(lambda: next(s for s in json.loads(request(server.url + "/streams")[1])
                          if s["name"] == "gone")["state"] == "reconnecting")
    scraped = metrics(server.url)
    assert scraped[("densestream_stream_state", (("state", "reconnecting"), ("stream", "gone")))] == 1


def test_metrics_agree_with_the_summary(server):
    url = server.url
    request(url + "/streams", "POST", {"source": "synth://pattern?size=48x32&frames=5", "name": "clip"})
    wait_for(lambda: json.loads(request(url + "/streams")[1])[-1]["frames_out"] == 5)
    scraped = metrics(url)
    label = (("stream", "clip"),)
    assert scraped[("densestream_stream_frames_in_total", label)] == 5
    assert scraped[("densestream_stream_frames_out_total", label)] == 5
    assert scraped[("densestream_stream_latency_seconds_count", label)] == 5
    assert scraped[("densestream_device_busy_seconds_total", ())] > 0
    assert ("densestream_stream_queue_depth", (("queue", "device"), ("stream", "cam"))) in scraped
    summary = json.loads(request(url + "/streams/clip", "DELETE")[1])
    assert summary["frames_in"] == summary["frames_out"] == 5 and summary["dropped"] == 0
    cam_out = metrics(url)[("densestream_stream_frames_out_total", (("stream", "cam"),))]
    assert cam_out > 0 and server.close().stream("cam").run.frames_out >= cam_out


def test_mjpeg_tile_sends_changing_frames(server):
    wait_for(lambda: request(server.url + "/streams/cam/frame.jpg")[0] == 200)
    with urllib.request.urlopen(server.url + "/streams/cam/mjpeg", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        data = b""
        while data.count(b"\xff\xd8") < 3:
            data += response.read1(65536)
    frames = [part for part in data.split(b"--densestreamframe") if b"\xff\xd8" in part]
    assert len(set(frames[:3])) >= 2  # the moving pattern: frames differ
    assert request(server.url + "/streams/nobody/mjpeg")[0] == 404


def test_hls_output_is_written_and_served(tmp_path):
    import av

    srv = start_server([("cam", "synth://pattern?size=64x48&live=1&fps=20")], port=0, task=LumaTask(),
                       device="cpu", precision="fp32", hud=False, hls=str(tmp_path), hls_segment=0.5)
    try:
        playlist = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and b".ts" in r[1] else None)(
            request(srv.url + "/hls/cam/index.m3u8")))
        assert playlist.startswith(b"#EXTM3U")
        assert json.loads(request(srv.url + "/streams")[1])[0]["hls"] == "/hls/cam/index.m3u8"
        segment = next(line for line in playlist.decode().splitlines() if line.endswith(".ts"))
        status, data = request(f"{srv.url}/hls/cam/{segment}")
        assert status == 200 and len(data) > 0
        assert request(srv.url + "/hls/cam/../../etc/passwd")[0] == 404
        assert request(srv.url + "/hls/cam/other.txt")[0] == 404
    finally:
        srv.close()
    with av.open(str(tmp_path / "cam" / "index.m3u8")) as container:  # what was kept still plays
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
