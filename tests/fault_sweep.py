"""Slow fault-injection sweep of the ``densestream`` command, for reviewers (not collected by pytest).

    python tests/fault_sweep.py [--kills 10] [--steps 30] [--task seg]

1. ``kill -9`` at random moments of a recording: the file must decode and hold every frame
   the run reported except at most the last 2 s.
2. A full disk (a 2 MiB tmpfs; needs root): exit 1, one ``error:`` line, a playable file.
3. SIGINT and SIGTERM at 0.1 s steps from the first instant: exit 130, no traceback, one
   ``interrupted`` line, and any file left behind plays.
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
SOURCE = "synth://drive?frames=100000&size=320x240&fps=25"
BOUND_SECONDS = 2.0


def command(task: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stream", "run", SOURCE, "--task", task, "--device", "cpu",
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
    print(f"{failures} failed")
    sys.exit(failures)


if __name__ == "__main__":
    main()
