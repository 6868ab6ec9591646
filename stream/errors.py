"""Errors that reach the user as one clear line (the CLI prints the message, no traceback)."""


class DenseStreamError(Exception):
    """Base class for user-facing failures: bad input, unwritable output, missing model."""


class SourceError(DenseStreamError):
    """The input cannot be opened or decoded."""


class SinkError(DenseStreamError):
    """An output cannot be created or written."""


class ModelError(DenseStreamError):
    """A model or weight file is missing, corrupt or of the wrong layout."""


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces folded to single spaces (OpenCV and
    FFmpeg messages span several lines; ours are one)."""
    return " ".join(text.split())


def describe_error(exc: BaseException) -> str:
    """One line for the user: our own errors as they are, anything else as its type and the
    first line of its message."""
    if isinstance(exc, DenseStreamError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
