"""Process every recorded driving video under a folder: overlay MP4s plus raw label/depth maps.

    python examples/offline_folder.py DASHCAM_DIR OUT_DIR [--task seg+depth] [--batch 4] [--workers 2]

For each VIDEO under DASHCAM_DIR (searched recursively) this writes OUT_DIR/VIDEO.mp4 (H.264
with the source's timing and audio) and OUT_DIR/VIDEO/ (per-frame label PNGs and 16-bit depth
PNGs in millimetres), the sub-folders mirrored. Run it again and only new, changed or failed
videos are processed (OUT_DIR/manifest.jsonl records each one). `densestream batch` does the
same from the command line, and on a Ray cluster too.
"""
import argparse
import sys

import stream
from stream.errors import DenseStreamError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos")
    parser.add_argument("out")
    parser.add_argument("--task", default="seg+depth")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    try:
        summary = stream.batch(args.videos, args.task, args.out, raw=True, batch=args.batch,
                               workers=args.workers, max_frames=args.max_frames)
    except DenseStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for record in summary.done:
        print(f"{record.name}: {record.frames} frames in {record.seconds:.1f} s")
    print("\n".join(summary.lines()))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
