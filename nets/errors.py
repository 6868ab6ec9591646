"""The one error type nets raises for bad weights, layouts or names."""


class NetsError(Exception):
    """A model name, weight file or checkpoint layout problem, worded for the user."""
