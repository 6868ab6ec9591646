"""Process every recorded driving video in a folder: overlay MP4s plus raw label/depth maps.

    python examples/offline_folder.py DASHCAM_DIR OUT_DIR [--task seg+depth] [--batch 4]

For each VIDEO in DASHCAM_DIR this writes OUT_DIR/VIDEO.mp4 (H.264 with the source's timing
and audio) and OUT_DIR/VIDEO/ (per-frame label PNGs and 16-bit depth PNGs in millimetres).
"""
import argparse
import sys
from pathlib import Path

import stream
from stream.errors import DenseStreamError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--task", default="seg+depth")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--overwrite", "-y", action="store_true", help="replace outputs of an earlier run")
    args = parser.parse_args()
    videos = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        print(f"error: no videos in {args.videos}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for video in videos:
        try:
            summary = stream.run(str(video), args.task, out=str(args.out / f"{video.stem}.mp4"),
                                 raw=str(args.out / video.stem), batch=args.batch,
                                 max_frames=args.max_frames, hud=False, overwrite=args.overwrite)
        except DenseStreamError as exc:
            print(f"{video.name}: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{video.name}: " + "; ".join(summary.lines()))
        if summary.exit_code == 130:
            return 130
        failures += summary.exit_code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
