"""``python -m nets.world``: render one frame of a seeded town beside its depth and labels."""

from __future__ import annotations

from pathlib import Path

import click
import cv2

from .preview import panel
from .world import DrivingWorld


@click.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Town seed.")
@click.option("--frame", "index", type=click.IntRange(min=0), default=0, show_default=True, help="Frame index.")
@click.option("--width", type=click.IntRange(min=16), default=480, show_default=True)
@click.option("--height", type=click.IntRange(min=16), default=360, show_default=True)
@click.option("--fov", type=float, default=60.0, show_default=True, help="Horizontal field of view (degrees).")
@click.option("--boxes/--no-boxes", default=False, help="Outline cars, pedestrians and cyclists.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
def main(seed: int, index: int, width: int, height: int, fov: float, boxes: bool, out: Path) -> None:
    """Write RGB | depth | labels of one frame as a PNG."""
    frame = DrivingWorld(seed, width, height, fov).render(index)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), panel(frame, boxes)[:, :, ::-1]):
        raise click.ClickException(f"could not write {out}")
    click.echo(f"wrote {out}: seed {seed}, frame {index}, {len(frame.boxes)} agents in view")


if __name__ == "__main__":
    main()
