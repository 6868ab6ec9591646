"""The one error type nets raises for bad weights, layouts or names."""


class NetsError(Exception):
    """A model name, weight file or checkpoint layout problem, worded for the user."""


def first_line(exc: BaseException) -> str:
    """An exception's first message line, or its type name when it has no message."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
