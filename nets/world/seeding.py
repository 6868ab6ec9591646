"""Order-independent seeded randomness: the same (seed, stream, index) always gives the same draw."""

from __future__ import annotations

import numpy as np


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective scramble of 64-bit integers."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(seed: int, stream: int, index, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) for each integer in ``index``: shape index.shape + (count,)."""
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(stream & 0xFFFFFFFF))
        base = _mix(key ^ (idx * np.uint64(0xD6E8FEB86659FD93)))
        draws = _mix(base[..., None] + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return (draws >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def generator(seed: int, *keys: int) -> np.random.Generator:
    """A NumPy generator for sequential draws keyed by ``seed`` and non-negative ``keys``."""
    return np.random.default_rng([seed & 0xFFFFFFFF, *(k & 0xFFFFFFFF for k in keys)])
