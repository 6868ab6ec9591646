"""The ``run`` command's options for what is drawn, how it is encoded and what raw maps are kept.

Kept apart from ``stream.cli`` so that the command stays short: ``output_options`` adds them all,
and their values reach ``stream.api.build_pipeline`` under the same names.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .hwcodecs import CODECS
from .overlay.depth import DEPTH_CMAPS
from .overlay.labels import PALETTES
from .overlay.renderer import LEGENDS
from .sinks.encoders import X264_PRESETS

OPTIONS = (
    click.option("--opacity", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
                 help="Opacity of the labels and the blended depth over the picture."),
    click.option("--classes", default=None,
                 help="Classes to colour, names or ids joined by commas (e.g. Road,Car,9); the rest keep the input."),
    click.option("--palette", type=click.Choice(PALETTES), default="contrast", show_default=True,
                 help="Label colours: high-contrast (every pair told apart when blended) or CamVid's own."),
    click.option("--legend", type=click.Choice(LEGENDS), default="present", show_default=True,
                 help="List the classes present in each frame, all drawn classes, or none."),
    click.option("--depth-range", default=None,
                 help="Depth colour range: auto (robust, steady over time) or NEAR,FAR in metres "
                      "(default: the model's, 1,80 for the shipped one)."),
    click.option("--depth-cmap", type=click.Choice(DEPTH_CMAPS), default="turbo", show_default=True,
                 help="Depth colour map (near is the warm or bright end)."),
    click.option("--line-width", type=click.IntRange(min=1), default=None,
                 help="Box outline width in pixels (default: grows with the frame)."),
    click.option("--size", default=None, help="Resize the composed output to WIDTHxHEIGHT (e.g. 1280x720)."),
    click.option("--full-panels", is_flag=True,
                 help="Grid layout: keep each panel at the input's size (output twice as wide and tall)."),
    click.option("--codec", type=click.Choice(CODECS), default="h264", show_default=True,
                 help="Video file codec (hevc and av1 where the FFmpeg build has libx265 / libsvtav1)."),
    click.option("--quality", type=int, default=None,
                 help="Video constant quality (CRF, lower is better; default 20 h264, 24 hevc, 32 av1)."),
    click.option("--preset", type=click.Choice(X264_PRESETS), default=None,
                 help="Video encoder speed (default veryfast; mapped onto SVT-AV1's and NVENC's scales)."),
    click.option("--bitrate", default=None, help="Video average bitrate instead of constant quality, e.g. 4M or 800k."),
    click.option("--raw-format", type=click.Choice(["png", "npy", "both"]), default="png", show_default=True,
                 help="Depth in the --raw folder: 16-bit PNG millimetres, .npy float32 metres, or both."),
    click.option("--raw-probs", is_flag=True,
                 help="Also write each frame's class probabilities to the --raw folder (NAME_probs.npy, C x H x W float16)."),
)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add every option above to a click command."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command
