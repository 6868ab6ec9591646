"""``synth://`` scenes: deterministic rendered video that needs no files."""
from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from ..cpu_share import follow_load
from ..errors import SourceError
from ..frames import StreamInfo
from .base import Picture, Source, fps_time_base, safe_name

Renderer = Callable[[int], np.ndarray]
SceneFactory = Callable[[int, int, int, dict[str, str]], Renderer]


def _bounce(start: float, velocity: float, index: int, low: float, high: float) -> float:
    """Position after ``index`` steps moving between walls at ``low`` and ``high``."""
    span = high - low
    if span <= 0:
        return low
    offset = (start - low + velocity * index) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)


def pattern_scene(width: int, height: int, seed: int, params: dict[str, str]) -> Renderer:
    """Coloured circles and boxes bouncing over a two-colour gradient; frame i is a pure function of i."""
    if params:
        raise SourceError(f"synth://pattern: unknown parameter(s) {', '.join(sorted(params))}")
    rng = np.random.default_rng(seed)
    top_left, bottom_right = rng.integers(0, 256, size=(2, 3))
    ramp = (np.linspace(0, 1, width)[None, :] + np.linspace(0, 1, height)[:, None])[..., None] / 2
    background = (top_left + (bottom_right - top_left) * ramp).round().astype(np.uint8)
    unit = max(2, min(width, height))
    shapes = [
        {
            "round": bool(rng.integers(0, 2)),
            "radius": max(1, int(unit * rng.uniform(0.05, 0.15))),
            "colour": tuple(int(c) for c in rng.integers(0, 256, size=3)),
            "start": (rng.uniform(0, width), rng.uniform(0, height)),
            "velocity": tuple(rng.uniform(-0.02, 0.02, size=2) * unit * rng.choice([1, 2])),
        }
        for _ in range(6)
    ]

    def render(index: int) -> np.ndarray:
        image = background.copy()
        for shape in shapes:
            r = shape["radius"]
            x = int(round(_bounce(shape["start"][0], shape["velocity"][0], index, r, width - 1 - r)))
            y = int(round(_bounce(shape["start"][1], shape["velocity"][1], index, r, height - 1 - r)))
            if shape["round"]:
                cv2.circle(image, (x, y), r, shape["colour"], -1, cv2.LINE_AA)
            else:
                cv2.rectangle(image, (x - r, y - r), (x + r, y + r), shape["colour"], -1)
        return image

    return render


def drive_scene(width: int, height: int, seed: int, params: dict[str, str]) -> Renderer:
    """The procedural 3-D driving world of ``nets.world`` seen from a moving car (``fov`` in degrees)."""
    from nets.world import DrivingWorld

    fov_text = params.pop("fov", "60")
    if params:
        raise SourceError(f"synth://drive: unknown parameter(s) {', '.join(sorted(params))}")
    try:
        fov = float(fov_text)
    except ValueError:
        raise SourceError(f"synth://drive: fov must be a number of degrees, got {fov_text!r}") from None
    if not 10.0 <= fov <= 150.0:
        raise SourceError(f"synth://drive: fov must be between 10 and 150 degrees, got {fov:g}")
    world = DrivingWorld(seed, width=width, height=height, fov_deg=fov)
    return lambda index: world.render(index).rgb


# Scene name -> factory(width, height, seed, extra query parameters) -> renderer(index).
SYNTH_SCENES: dict[str, SceneFactory] = {"pattern": pattern_scene, "drive": drive_scene}


def _int_param(params: dict[str, str], key: str, default: int, label: str) -> int:
    text = params.pop(key, None)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SourceError(f"{label}: {key} must be an integer, got {text!r}") from None
    if value < 0:
        raise SourceError(f"{label}: {key} must not be negative, got {value}")
    return value


def _size_param(text: str, label: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise SourceError(f"{label}: size must look like 320x240, got {text!r}")
    return int(match[1]), int(match[2])


class SynthSource(Source):
    """A deterministic rendered scene; endless when ``frames`` is 0; ``live=1`` plays it in real time."""

    def __init__(self, spec: str) -> None:
        parts = urlsplit(spec)
        scene = parts.netloc or parts.path.strip("/")
        label = f"synth://{scene}"
        if scene not in SYNTH_SCENES:
            raise SourceError(f"{spec}: unknown synthetic scene {scene!r}; known: {', '.join(sorted(SYNTH_SCENES))}")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._frames_total = _int_param(params, "frames", 0, label) or None
        width, height = _size_param(params.pop("size", "320x240"), label)
        fps, time_base = fps_time_base(params.pop("fps", "25"), label)
        seed = _int_param(params, "seed", 0, label)
        live = params.pop("live", "0")
        if live not in ("0", "1"):
            raise SourceError(f"{label}: live must be 0 or 1, got {live!r}")
        self._render = SYNTH_SCENES[scene](width, height, seed, params)
        self._next = 0
        super().__init__(StreamInfo(
            width=width, height=height, time_base=time_base, fps=fps,
            frame_count=self._frames_total, live=False, name=safe_name(f"synth_{scene}"),
        ))
        self._use_live_policy(live == "1")

    def _read(self) -> Picture | None:
        index = self._next
        if self._frames_total is not None and index >= self._frames_total:
            return None
        self._next += 1
        follow_load()  # the drive scene renders with torch in this thread
        image = self._render(index)
        if image.shape != (self.info.height, self.info.width, 3) or image.dtype != np.uint8:
            raise SourceError(f"synth: scene rendered {image.shape} {image.dtype}, expected "
                              f"({self.info.height}, {self.info.width}, 3) uint8")
        return Picture(np.ascontiguousarray(image), index)

    def _release(self) -> None:
        """Nothing to free: frames are rendered on demand."""
