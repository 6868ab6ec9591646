"""Slow fault-injection sweep of the ``densestream`` command, for reviewers (not collected by pytest).

    python tests/fault_sweep.py [--kills 10] [--steps 30] [--task seg]

1. ``kill -9`` at random moments of a recording: the file must decode and hold every frame
   the run reported except at most the last 2 s.
2. A full disk (a 2 MiB tmpfs; needs root): exit 1, one ``error:`` line, a playable file.
3. SIGINT and SIGTERM at 0.1 s steps from the first instant: exit 130, no traceback, one
   ``interrupted`` line, and any file left behind plays.
4. A UDP MPEG-TS camera (H.264 320x240 at 25 fps with AAC) that sends 4 s, is silent 6.5 s
   (then, a second row, 12 s) and comes back as a new sender for 4 s, then SIGINT: one line
   says since when the stream was quiet, each failed reconnect attempt has a line, one line says
   it is back with the outage's length; exit 130, no traceback; the file holds both bursts,
   video and audio, with the pause between them.
Each case prints one row; the exit status is the number of failed rows.
"""
from __future__ import annotations

import argparse
import os
import pty
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's tests package is importable
from tests.media import free_port, send_mpegts  # noqa: E402

SOURCE = "synth://drive?frames=100000&size=320x240&fps=25"
BOUND_SECONDS = 2.0
BURST_SECONDS = 4.0
# Both longer than a network stream's 5 s read time-out (a shorter silence is not an outage:
# the connection goes on with the new sender's packets). After 6.5 s the first reconnect
# attempt finds the new sender; after 12 s it waits its 5 s open time-out in vain and fails.
SILENCES = (6.5, 12.0)
CAMERA_FPS = 25


def command(task: str, out: Path, *extra: str, source: str = SOURCE) -> list[str]:
    return [sys.executable, "-m", "stream", "run", source, "--task", task, "--device", "cpu",
            "--no-hud", "--compile", "off", "--out", str(out), *extra]


def frames_in(path: Path) -> int | None:
    """Decoded video frames, or None when the file does not open."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except (av.FFmpegError, OSError):
        return None


def frames_reported(progress_text: str) -> int:
    counts = re.findall(r"frames (\d+)", progress_text)
    return int(counts[-1]) if counts else 0


def kill_nine(task: str, runs: int, work: Path) -> int:
    """The child's stderr is a pseudo-terminal so that it draws its progress line, which says
    how many frames it had processed when it was killed."""
    failures = 0
    for run in range(runs):
        out = work / f"kill{run}.mp4"
        delay = random.uniform(3.0, 20.0)
        leader, follower = pty.openpty()
        child = subprocess.Popen(command(task, out), cwd=ROOT, stderr=follower, stdout=subprocess.DEVNULL)
        os.close(follower)
        text = []
        reader = threading.Thread(target=_drain, args=(leader, text), daemon=True)
        reader.start()
        time.sleep(delay)
        seen = frames_reported("".join(text))
        child.kill()
        child.wait()
        reader.join(timeout=2)
        os.close(leader)
        decoded = frames_in(out) if out.exists() else 0
        fps = 25.0
        ok = decoded is not None and decoded >= seen - BOUND_SECONDS * fps
        failures += not ok
        print(f"kill -9 at {delay:5.1f} s: {seen} frames reported, file decodes {decoded}{'' if ok else '  FAILED'}")
    return failures


def _drain(fd: int, into: list[str]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        into.append(chunk.decode(errors="replace"))


def full_disk(task: str, work: Path) -> int:
    disk = work / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode != 0:
        print("full disk: skipped (cannot mount a tmpfs here)")
        return 0
    try:
        result = subprocess.run(command(task, disk / "x.mp4"), cwd=ROOT, capture_output=True, text=True)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        decoded = frames_in(disk / "x.mp4")
        ok = result.returncode == 1 and len(errors) == 1 and decoded
        print(f"full disk: exit {result.returncode}, {len(errors)} error line(s), file decodes {decoded} frames"
              f"{'' if ok else '  FAILED'}")
        return not ok
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def signals_through_startup(task: str, steps: int, work: Path) -> int:
    failures = 0
    for step in range(1, steps + 1):
        for signum in (signal.SIGINT, signal.SIGTERM):
            out = work / f"sig{step}{signum.name}.mp4"
            child = subprocess.Popen(command(task, out), cwd=ROOT, stderr=subprocess.PIPE, text=True)
            time.sleep(step / 10)
            child.send_signal(signum)
            _, errors = child.communicate()
            lines = [line for line in errors.splitlines() if line.startswith("interrupted")]
            decoded = frames_in(out) if out.exists() and out.stat().st_size else 0
            ok = child.returncode == 130 and "Traceback" not in errors and len(lines) == 1 and decoded is not None
            failures += not ok
            print(f"{signum.name} at {step / 10:.1f} s: exit {child.returncode}, "
                  f"{(lines or ['no interrupted line'])[0][:60]}, file {decoded} frames{'' if ok else '  FAILED'}")
            if not ok:
                print("    " + errors.strip().replace("\n", "\n    "))
    return failures


def udp_outage(task: str, silence: float, work: Path) -> int:
    """A camera that stops sending for ``silence`` seconds and comes back restarted (a new
    sender, its clock from 0) while ``densestream run`` records it; SIGINT once the second
    burst is over."""
    port, out = free_port(), work / f"udp{silence:g}.mp4"
    url = f"udp://127.0.0.1:{port}"
    child = subprocess.Popen(command(task, out, source=url), cwd=ROOT, stderr=subprocess.PIPE, text=True)
    if _wait_until_bound(port, child):
        send_mpegts(f"{url}?pkt_size=1316", BURST_SECONDS, "aac", fps=CAMERA_FPS, size=(320, 240))
        quiet_since = time.time()
        time.sleep(silence)
        send_mpegts(f"{url}?pkt_size=1316", BURST_SECONDS, "aac", fps=CAMERA_FPS, size=(320, 240))
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
    else:
        quiet_since = time.time()
    try:
        _, errors = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        _, errors = child.communicate()
    said, problems = _outage_lines(errors, quiet_since, silence)
    held, missing = _recording(out, silence)
    problems += missing
    interrupted = [line for line in errors.splitlines() if line.startswith("interrupted")]
    if child.returncode != 130 or "Traceback" in errors or len(interrupted) != 1:
        problems.append(f"exit {child.returncode}, {len(interrupted)} interrupted line(s)"
                        f"{', a traceback' if 'Traceback' in errors else ''}")
    print(f"UDP silence of {silence:g} s: exit {child.returncode}, {said}, {held}"
          f"{'  FAILED: ' + '; '.join(problems) if problems else ''}")
    if problems:
        print("    " + errors.strip().replace("\n", "\n    "))
    return bool(problems)


def _wait_until_bound(port: int, child: subprocess.Popen, limit: float = 60.0) -> bool:
    """Wait until the run's UDP socket is bound (read from /proc, so nothing races it for the
    port): what is sent earlier would be lost."""
    hex_port = f":{port:04X}"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and child.poll() is None:
        for table in (Path("/proc/net/udp"), Path("/proc/net/udp6")):
            rows = table.read_text().splitlines()[1:] if table.exists() else []
            if any(row.split()[1].endswith(hex_port) for row in rows):
                return True
        time.sleep(0.05)
    return False


def _outage_lines(errors: str, quiet_since: float, silence: float) -> tuple[str, list[str]]:
    """What the outage's lines said, and what is wrong with them. Expected: one line when the
    stream went quiet, saying since when (within 1.5 s of the first burst's end); one per failed
    reconnect attempt; one when it is back, with an outage about as long as the silence (plus
    the reconnect's own second or two) and the attempt that reconnected."""
    problems, off = [], 0
    quiet = re.findall(r"no frames since (\d\d):(\d\d):(\d\d) \(.+\); reconnecting", errors)
    if len(quiet) != 1:
        problems.append(f"{len(quiet)} 'no frames since' lines")
    else:
        local = time.localtime(quiet_since)
        said = sum(int(part) * scale for part, scale in zip(quiet[0], (3600, 60, 1)))
        off = (said - (local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec) + 43200) % 86400 - 43200
        if abs(off) > 1.5:
            problems.append(f"'no frames since' is {off:+d} s off the first burst's end")
    failed = len(re.findall(r"reconnect attempt \d+ of \d+ failed", errors))
    back = re.findall(r"back after an outage of ([\d.]+) s \(reconnect attempt (\d+)\), about (\d+) frames missed",
                      errors)
    if len(back) != 1:
        problems.append(f"{len(back)} 'back after' lines")
        return f"{failed} failed attempt(s), never back", problems
    outage, attempt, missed = float(back[0][0]), int(back[0][1]), int(back[0][2])
    if not silence - 0.5 <= outage <= silence + 3.0:
        problems.append(f"an outage of {outage:g} s said for a silence of {silence:g} s")
    if attempt != failed + 1:
        problems.append(f"back at attempt {attempt} after {failed} failed-attempt line(s)")
    return (f"quiet from {off:+d} s after the burst, back after {outage:g} s at attempt {attempt} "
            f"({failed} failed), {missed} frames missed"), problems


def _recording(path: Path, silence: float) -> tuple[str, list[str]]:
    """What the file holds, and what is wrong with it: both bursts with the outage between
    them, in the video and in the audio. Checked on timestamps, not frame counts: live mode
    keeps only the newest frame, so how many frames are written depends on how fast this
    machine runs the model, but the span they cover is set by the camera's clock. Each side
    of the longest pause must cover the burst less 1.5 s (the first frames may go while the
    model warms up, the last while SIGINT stops the run), and the pause must be about the
    silence: a restarted camera's clock starts again from 0, the run's timeline must not."""
    try:
        with av.open(str(path)) as container:
            video = sorted(frame.time for frame in container.decode(video=0) if frame.time is not None)
        with av.open(str(path)) as container:
            audio = sorted(float(packet.pts * packet.time_base) for packet in container.demux(audio=0)
                           if packet.pts is not None) if container.streams.audio else []
    except (av.FFmpegError, OSError) as error:
        return "file does not decode", [f"the file does not decode ({error})"]
    if len(video) < 2:
        return f"file {len(video)} frames", [f"the file holds {len(video)} frame(s)"]
    gap, index = max((later - earlier, i) for i, (earlier, later) in enumerate(zip(video, video[1:])))
    cut = (video[index] + video[index + 1]) / 2
    problems = [] if gap >= silence - 0.5 else [f"the longest pause in the video is {gap:.1f} s"]
    spans = []
    for track, times in (("video", video), ("audio", audio)):
        before, after = [t for t in times if t < cut], [t for t in times if t > cut]
        sides = [side[-1] - side[0] if side else 0.0 for side in (before, after)]
        spans.append(f"{track} {sides[0]:.1f} s + {sides[1]:.1f} s")
        if min(sides) < BURST_SECONDS - 1.5:
            problems.append(f"{track} covers {sides[0]:.1f} s before the pause and {sides[1]:.1f} s after")
    return f"file {len(video)} frames, pause {gap:.1f} s, {', '.join(spans)}", problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--task", default="seg")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        failures = kill_nine(args.task, args.kills, work)
        failures += full_disk(args.task, work)
        failures += signals_through_startup(args.task, args.steps, work)
        failures += sum(udp_outage(args.task, silence, work) for silence in SILENCES)
    print(f"{failures} failed")
    sys.exit(failures)


if __name__ == "__main__":
    main()
