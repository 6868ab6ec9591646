"""Source list files: one source a line, optionally named (``front: rtsp://cam1/stream``)."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DenseStreamError

# "NAME: SOURCE" needs a space after the colon, so "rtsp://..." is never read as a name.
_NAMED = re.compile(r"^([A-Za-z0-9_.-]+):\s+(\S.*)$")


def read_source_list(path: str | Path) -> list[tuple[str | None, str]]:
    """(name or None, source) for every line; blank lines and ``#`` comments are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DenseStreamError(f"cannot read the source list {path}: {exc}") from exc
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("- "):  # a YAML-style list item
            line = line[2:].strip()
        match = _NAMED.match(line)
        entries.append((match[1], match[2].strip()) if match else (None, line))
    if not entries:
        raise DenseStreamError(f"the source list {path} names no source")
    return entries
