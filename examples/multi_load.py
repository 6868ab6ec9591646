"""Load check of `densestream serve`: 8 live streams at 320x240 for 2 minutes on one port.

Seven streams are in-process live synthetic scenes; the eighth arrives over TCP on 127.0.0.1
from a sender process (MPEG-2 in MPEG-TS), which is killed part-way and started again, so the
stream must reconnect while the others go on. /metrics is scraped every few seconds; at the end
the script prints per-stream p95 latency, output fps and its spread, drops, reconnects, the
process's memory over time, the others' fps before and during the outage, and the last scrape
against the final summary.

    python examples/multi_load.py                       # the full 2-minute check
    python examples/multi_load.py --seconds 30 --kill-at 10 --back-at 16
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HOST = "127.0.0.1"


def send(port: int, fps: float, size: str) -> None:
    """The sender: a live synthetic scene, encoded and served to one receiver at a time."""
    import av

    from stream.sources import open_source

    width, height = (int(v) for v in size.split("x"))
    source = open_source(f"synth://pattern?size={size}&live=1&fps={fps:g}&seed=99")
    while True:
        with av.open(f"tcp://{HOST}:{port}?listen=1", "w", format="mpegts") as container:
            video = container.add_stream("mpeg2video", rate=round(fps))
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.bit_rate = 1_000_000
            try:
                for frame in source:
                    picture = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                    for packet in video.encode(picture):
                        container.mux(packet)
            except (OSError, av.FFmpegError):
                continue  # the receiver went away: listen again


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def scrape(url: str) -> dict:
    """{(metric, stream): value} of the per-stream counters and the device busy share."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, sample.labels.get("stream"))] = sample.value
    return values


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_sender(port: int, fps: float, size: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--send", str(port), "--fps", str(fps), "--size", size])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=float, default=10.0, help="each source's frame rate")
    parser.add_argument("--task", default="seg")
    parser.add_argument("--infer-size", default="160x120")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kill-at", type=float, default=50.0, help="seconds in: kill the sender")
    parser.add_argument("--back-at", type=float, default=65.0, help="seconds in: start it again")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before fps is compared")
    parser.add_argument("--scrape-every", type=float, default=5.0)
    parser.add_argument("--json", default=None, help="write every number to this file")
    parser.add_argument("--send", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send is not None:
        send(args.send, args.fps, args.size)
        return 0

    from stream.serve import start_server
    from stream.tasks import parse_infer_size

    port = free_port()
    sender = start_sender(port, args.fps, args.size)
    time.sleep(2.0)
    sources = [(f"synth{i}", f"synth://pattern?size={args.size}&live=1&fps={args.fps:g}&seed={i}")
               for i in range(args.streams - 1)]
    sources.append(("network", f"tcp://{HOST}:{port}"))
    server = start_server(sources, port=0, task=args.task, infer_size=parse_infer_size(args.infer_size),
                          threads=args.threads, batch=args.streams)
    print(f"serving on {server.url}", file=sys.stderr)
    started = time.monotonic()
    scrapes: list[tuple[float, dict, float]] = []
    killed = returned = False
    try:
        while (now := time.monotonic() - started) < args.seconds:
            if not killed and now >= args.kill_at:
                sender.kill()
                sender.wait()
                killed = True
                print(f"{now:.0f} s: sender killed", file=sys.stderr)
            if killed and not returned and now >= args.back_at:
                sender = start_sender(port, args.fps, args.size)
                returned = True
                print(f"{now:.0f} s: sender back", file=sys.stderr)
            scrapes.append((now, scrape(server.url), rss_mb()))
            time.sleep(args.scrape_every)
        last = scrape(server.url)
    finally:
        summary = server.close()
        sender.kill()
    report(args, scrapes, last, summary)
    return 0


def _rate(scrapes, name: str, start: float, end: float) -> float | None:
    inside = [(t, values) for t, values, _ in scrapes if start <= t <= end]
    if len(inside) < 2:
        return None
    (t0, a), (t1, b) = inside[0], inside[-1]
    key = ("densestream_stream_frames_out_total", name)
    return (b.get(key, 0) - a.get(key, 0)) / (t1 - t0)


def report(args, scrapes, last, summary) -> None:
    names = [s.name for s in summary.streams]
    steady = (args.warmup, args.kill_at)
    outage = (args.kill_at, args.back_at)
    rows = []
    for s in summary.streams:
        run = s.run
        rows.append({"stream": s.name, "frames_out": run.frames_out, "frames_in": run.frames_in,
                     "dropped": run.dropped, "reconnects": s.reconnects,
                     "fps": run.frames_out / run.seconds, "p95_ms": run.latency_ms_p95,
                     "fps_steady": _rate(scrapes, s.name, *steady),
                     "fps_outage": _rate(scrapes, s.name, *outage),
                     "scraped_frames_out": last.get(("densestream_stream_frames_out_total", s.name))})
    fps = [row["fps_steady"] for row in rows if row["fps_steady"] is not None]
    mean = statistics.mean(fps) if fps else float("nan")
    spread = max(abs(v - mean) / mean for v in fps) if fps else float("nan")
    others_steady = statistics.mean(r["fps_steady"] for r in rows if r["stream"] != "network")
    others_outage = statistics.mean(r["fps_outage"] for r in rows if r["stream"] != "network")
    memory = [(round(t), round(mb)) for t, _, mb in scrapes]
    print("\n".join(summary.lines()))
    print("| stream | out | in | dropped | reconnects | fps (run) | fps (steady) | p95 latency ms | "
          "last scrape out |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['stream']} | {row['frames_out']} | {row['frames_in']} | {row['dropped']} | "
              f"{row['reconnects']} | {row['fps']:.2f} | {row['fps_steady'] or 0:.2f} | "
              f"{row['p95_ms'] or 0:.0f} | {row['scraped_frames_out']:.0f} |")
    print(f"\nsteady fps mean {mean:.2f}, largest deviation from it {100 * spread:.1f} %")
    print(f"other streams' mean fps: {others_steady:.2f} before the outage, {others_outage:.2f} during it")
    print(f"device busy share at the end: {last.get(('densestream_device_busy_ratio', None), 0):.2f}")
    print(f"RSS MB over time (s, MB): {memory}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"rows": rows, "spread": spread, "memory": memory, "names": names,
                       "others_fps": [others_steady, others_outage]}, out, indent=1)


if __name__ == "__main__":
    sys.exit(main())
