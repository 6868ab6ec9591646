"""``python -m nets.world``: render one frame of a seeded town beside its depth and labels, or a
contact sheet of several towns."""

from __future__ import annotations

from pathlib import Path

import click
import cv2

from .preview import caption, panel, sheet
from .world import DrivingWorld


@click.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Town seed (the first one with --sheet).")
@click.option("--frame", "index", type=click.IntRange(min=0), default=0, show_default=True, help="Frame index.")
@click.option("--width", type=click.IntRange(min=16), default=480, show_default=True)
@click.option("--height", type=click.IntRange(min=16), default=360, show_default=True)
@click.option("--fov", type=float, default=60.0, show_default=True,
              help="Horizontal field of view (degrees); --randomise draws its own.")
@click.option("--randomise/--no-randomise", default=False,
              help="Draw sky, sun, haze, colours and camera rig from the seed.")
@click.option("--sheet", "towns", type=click.IntRange(min=1), default=None,
              help="Stack this many towns (seed, seed+1, ...) one panel per row, each captioned.")
@click.option("--boxes/--no-boxes", default=False, help="Outline cars, pedestrians and cyclists.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
def main(seed: int, index: int, width: int, height: int, fov: float, randomise: bool, towns: int | None,
         boxes: bool, out: Path) -> None:
    """Write RGB | depth | labels of one frame (or of one frame per town with --sheet) as a PNG."""
    if not 1.0 <= fov <= 170.0:
        raise click.BadParameter(f"must be in 1..170 degrees, got {fov}", param_hint="--fov")
    rows, agents = [], 0
    for town in range(seed, seed + (towns or 1)):
        world = DrivingWorld(town, width, height, fov, randomise=randomise)
        frame = world.render(index)
        agents += len(frame.boxes)
        picture = panel(frame, boxes)
        if towns:
            look = world.look
            text = f"seed {town}" + (f" {look.sky} h{look.camera_height:.1f} fov{look.fov_deg:.0f}" if look else "")
            picture = caption(picture, text)
        rows.append(picture)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), sheet(rows)[:, :, ::-1]):
        raise click.ClickException(f"could not write {out}")
    what = f"seeds {seed}..{seed + towns - 1}" if towns else f"seed {seed}"
    click.echo(f"wrote {out}: {what}, frame {index}, {agents} agents in view")


if __name__ == "__main__":
    main()
