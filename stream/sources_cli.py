"""``densestream sources``: the cameras found here and the other kinds of SOURCE."""
from __future__ import annotations

import click

from .sources.cameras import list_cameras

OTHER_SOURCES = (
    ("synth://drive?seed=S&frames=N&size=WxH&fov=DEG&fps=F&live=0|1",
     "the procedural 3-D driving world (no files needed); frames=0 runs without end"),
    ("synth://pattern?seed=S&frames=N&size=WxH&fps=F&live=0|1", "bouncing shapes over a gradient, for quick checks"),
    ("clip.mp4", "a video file: anything FFmpeg reads; offline, every frame kept"),
    ("'frames/*.png' or frames/", "an image folder or glob, natural order, any mix of sizes"),
    ("rtsp:// rtmp:// http(s):// udp:// tcp:// srt://", "a network stream: live, reconnects"),
)


@click.command("sources")
def sources() -> None:
    """List the cameras on this machine (and what each can do) and the synthetic and other sources."""
    cameras = list_cameras()
    click.echo("cameras:")
    if not cameras:
        click.echo("  none found")
    for camera in cameras:
        click.echo(f"  {camera.line()}")
    click.echo("other sources:")
    for spec, meaning in OTHER_SOURCES:
        click.echo(f"  {spec}\n      {meaning}")
