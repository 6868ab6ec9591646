"""Which streams to run: source list files and the (name, source, live) entries they give.

A list file holds one source a line, optionally named and with its own drop policy:
``front: rtsp://cam1/stream live``, ``clip.mp4``, ``- rear: /dev/video2`` (YAML-style items
are accepted); blank lines and ``#`` comments are skipped.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from ..errors import DenseStreamError

# "NAME: SOURCE" needs a space after the colon, so "rtsp://..." is never read as a name.
_NAMED = re.compile(r"^([A-Za-z0-9_.-]+):\s+(\S.*)$")
_POLICY = re.compile(r"^(.*\S)\s+(live|offline)$")


class SourceEntry(NamedTuple):
    """One stream to open: its name (None: from the source), spec and drop policy (None: its own)."""

    name: str | None
    source: str
    live: bool | None = None


def as_entry(item) -> SourceEntry:
    """A spec, a (name, spec) or (name, spec, live) tuple, or an entry, as an entry."""
    if isinstance(item, tuple):
        return SourceEntry(*item)
    return SourceEntry(None, item)


def parse_line(line: str) -> SourceEntry:
    if line.startswith("- "):
        line = line[2:].strip()
    live = None
    policy = _POLICY.match(line)
    if policy:
        line, live = policy[1], policy[2] == "live"
    named = _NAMED.match(line)
    return SourceEntry(named[1], named[2].strip(), live) if named else SourceEntry(None, line, live)


def read_source_list(path: str | Path) -> list[SourceEntry]:
    """Every entry of a list file, in order."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DenseStreamError(f"cannot read the source list {path}: {exc}") from exc
    entries = [parse_line(line.strip()) for line in text.splitlines()
               if line.strip() and not line.strip().startswith("#")]
    if not entries:
        raise DenseStreamError(f"the source list {path} names no source")
    return entries
