"""'WIDTHxHEIGHT' text, as written in manifests and on command lines."""

from __future__ import annotations

__all__ = ["parse_size"]


def parse_size(text: str, minimum: int = 1) -> tuple[int, int]:
    """'480x360' (any case of x) to (480, 360); ValueError unless both sides are whole numbers of
    at least ``minimum``. Callers word the error for their own flag or file."""
    width, sep, height = str(text).lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{text!r} is not WIDTHxHEIGHT")
    if int(width) < minimum or int(height) < minimum:
        raise ValueError(f"{text!r} has a side under {minimum}")
    return int(width), int(height)
