"""Batch runs over many video files: each video an ordinary ``stream.run``, on a pool of local
worker processes or as Ray tasks on a cluster, with a resumable manifest beside the outputs.

``inputs`` finds the videos, ``settings`` holds what each runs with (and its hash), ``job`` is
one video in a worker, ``local`` and ``ray_backend`` run the jobs, ``manifest`` records them,
``progress`` follows them, ``runner`` ties it together as ``batch()``.

The package itself is callable, so ``stream.batch(...)`` is ``stream.batch.batch(...)`` however
the package was imported (importing a submodule binds ``stream.batch`` to this package).
"""
import sys
import types

from .manifest import Record
from .progress import BatchProgress
from .runner import BatchSummary, batch

__all__ = ["BatchProgress", "BatchSummary", "Record", "batch"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs) -> BatchSummary:
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
