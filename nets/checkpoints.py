"""Safe reading and strict loading of state dicts, with one-line NetsError messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nets.errors import NetsError

__all__ = ["read_state_dict", "load_state_strict"]

# Keys whose value is the state dict itself in training checkpoints (ours, Lightning/timm style,
# DrSleep's light-weight-refinenet train script).
_WRAPPERS = ("state_dict", "model", "segmenter")
_NUMPY_SCALAR_TYPES = ("float64", "float32", "int64")


def _numpy_scalars() -> AbstractContextManager:
    """Let ``weights_only`` loading rebuild float64/float32/int64 NumPy scalars (e.g. the float64
    ``best_val`` a train script saves next to the weights): numpy's scalar reconstructor, under
    its NumPy 2 and NumPy 1 import paths, ``numpy.dtype`` and those three dtypes' classes. Only
    while the context is open; arrays and every other object stay refused."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import scalar
    dtype_classes = [type(np.dtype(name)) for name in _NUMPY_SCALAR_TYPES]
    return torch.serialization.safe_globals([(scalar, "numpy._core.multiarray.scalar"),
                                             (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtype_classes])


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict safely (weights_only, NumPy scalars allowed), unwrapping
    ``state_dict``/``model``/``segmenter`` wrappers and ``module.`` prefixes."""
    path = Path(path)
    if not path.is_file():
        raise NetsError(f"checkpoint not found: {path}")
    try:
        with _numpy_scalars():
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))  # torch's unsafe advice is not repeated
        if found:
            raise NetsError(f"cannot read checkpoint {path}: it holds a pickled Python object ({found[1]}) besides "
                            "tensors, which is never unpickled here; save model.state_dict() with torch.save") from None
        raise NetsError(f"cannot read checkpoint {path}: not a PyTorch checkpoint "
                        "(corrupt, truncated or another kind of file)") from None
    while isinstance(data, Mapping) and any(isinstance(data.get(k), Mapping) for k in _WRAPPERS):
        data = next(data[k] for k in _WRAPPERS if isinstance(data.get(k), Mapping))
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, Tensor) for v in data.values()):
        raise NetsError(f"checkpoint {path} does not hold a state dict of tensors")
    state = dict(data)
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_state_strict(model: nn.Module, state: Mapping[str, Tensor], source: str | Path) -> None:
    """Load every tensor strictly (old checkpoints may lack BN ``num_batches_tracked``);
    floating tensors are cast to the model's dtype."""
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        if wrong:
            key = wrong[0]
            problems.append(f"{len(wrong)} with the wrong shape (first {key}: "
                            f"{tuple(state[key].shape)} vs {tuple(expected[key].shape)})")
        raise NetsError(f"checkpoint {source} does not fit {type(model).__name__}: {'; '.join(problems)}")
    merged = {}
    for key, reference in expected.items():
        value = state.get(key, reference)
        merged[key] = value.to(reference.dtype) if value.is_floating_point() else value
    model.load_state_dict(merged, strict=True)
