"""Render a demo video: a 2 x 2 grid of the input, segmentation, depth and denoising/tracking.

    python examples/demo_grid.py                       # synthetic drive, no files needed
    python examples/demo_grid.py clip.mp4 demo.mp4 --init-box 400,300,80,60
"""
import argparse
import sys

import stream
from stream.api import parse_box
from stream.errors import DenseStreamError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="synth://drive?seed=3&frames=150")
    parser.add_argument("out", nargs="?", default="demo_grid.mp4")
    parser.add_argument("--init-box", default=None, help="also track this x,y,w,h target")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--overwrite", "-y", action="store_true", help="replace an existing OUT")
    args = parser.parse_args()
    tasks = "seg+depth,denoise" + (",track" if args.init_box else "")
    try:
        box = parse_box(args.init_box) if args.init_box else None
        summary = stream.run(args.source, tasks, out=args.out, layout="grid", init_box=box,
                             max_frames=args.max_frames, overwrite=args.overwrite)
    except DenseStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
