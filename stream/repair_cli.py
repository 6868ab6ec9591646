"""The ``densestream repair`` command: a thin layer over ``stream.sinks.repair``."""
from __future__ import annotations

from pathlib import Path

import click

from .errors import describe_error


@click.command()
@click.argument("recording", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the repaired copy goes (default: NAME-repaired.EXT beside the recording).")
@click.option("--overwrite", "-y", is_flag=True, help="Replace an existing --out file.")
def repair(recording: Path, out: Path | None, overwrite: bool) -> None:
    """Recover a recording cut off by a power cut, a kill or a full disk: a copy trimmed to its
    last whole fragment, rewritten with its index at the front. RECORDING is left as it is."""
    from .sinks.repair import default_repaired_path, repair_recording

    target = out or default_repaired_path(recording)
    try:
        kept = repair_recording(recording, target, overwrite)
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        click.echo(f"error: {describe_error(exc)}", err=True)
        raise SystemExit(1) from None
    cut = f", {kept.trimmed_bytes} cut-off bytes dropped" if kept.trimmed_bytes else ""
    click.echo(f"{target}: {kept.frames} frames, {kept.seconds:.2f} s{cut}", err=True)
