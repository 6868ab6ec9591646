"""densestream: frames in, dense predictions and overlays out.

``stream.run(source, task, out=...)`` processes a whole input; ``stream.build_pipeline``
returns a ``Pipeline`` to iterate result by result; ``stream.run_many`` (and ``stream.run``
given a list) runs several sources in one process and ``stream.serve`` serves them over HTTP; ``stream.batch(inputs, task, out_dir)``
processes many files, resumably, on local workers or Ray. The ``densestream`` command wraps them.
Importing ``stream`` before torch makes torch's waiting threads spin only briefly (``stream.cpu_share``).
"""
from .cpu_share import prepare_environment

prepare_environment()

__all__ = ["batch", "build_pipeline", "run", "run_many", "serve"]


def __getattr__(name: str):
    """Import the API on first use, so ``import stream.frames`` stays light."""
    if name == "batch":
        import importlib

        return importlib.import_module(".batch", __name__)
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'stream' has no attribute {name!r}")
