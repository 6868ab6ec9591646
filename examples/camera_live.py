"""Live camera feed with segmentation drawn in a window (q or Esc quits).

    python examples/camera_live.py            # first camera, segmentation
    python examples/camera_live.py 1 --task seg+depth --layout side-by-side
"""
import argparse
import sys

import stream
from stream.errors import DenseStreamError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("camera", nargs="?", default="0", help="camera index or /dev/videoN")
    parser.add_argument("--task", default="seg")
    parser.add_argument("--layout", default="overlay")
    parser.add_argument("--record", default=None, help="also record the overlay to this .mp4")
    parser.add_argument("--overwrite", "-y", action="store_true", help="replace an existing recording")
    args = parser.parse_args()
    try:
        summary = stream.run(args.camera, args.task, show=True, out=args.record,
                             layout=args.layout, live=True, overwrite=args.overwrite)
    except DenseStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
