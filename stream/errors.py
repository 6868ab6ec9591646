"""Errors that reach the user as one clear line (the CLI prints the message, no traceback)."""


class DenseStreamError(Exception):
    """Base class for user-facing failures: bad input, unwritable output, missing model."""


class SourceError(DenseStreamError):
    """The input cannot be opened or decoded."""


class SinkError(DenseStreamError):
    """An output cannot be created or written."""


class ModelError(DenseStreamError):
    """A model or weight file is missing, corrupt or of the wrong layout."""
