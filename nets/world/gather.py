"""Fast row gathers: ``index_select`` is several times quicker than advanced indexing on CPU."""

from __future__ import annotations

import torch


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[index]`` for an integer ``index`` of any shape (rows of ``x`` are gathered)."""
    return x.index_select(0, index.reshape(-1)).reshape(*index.shape, *x.shape[1:])


def where_true(mask: torch.Tensor) -> torch.Tensor:
    """Indices of the true entries of a 1-D mask."""
    return mask.nonzero().squeeze(1)
