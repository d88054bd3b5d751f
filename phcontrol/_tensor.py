"""Small tensor helpers shared by the integrators and the energies."""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []


def rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Return ``(a * b).sum(-1)``, shape ``a.shape[:-1]``.

    Written as a product with a vector of ones: for the short last axes of
    state vectors (``n`` of 2 to 10), torch on CPU runs a matrix-vector
    product several times faster than a reduction over that axis.
    """
    prod = a * b
    return prod @ torch.ones(prod.shape[-1], dtype=prod.dtype, device=prod.device)


def rownorm(a: Tensor) -> Tensor:
    """Return the Euclidean norm of each row, shape ``a.shape[:-1]``."""
    return rowdot(a, a).sqrt()


def is_shared(M: Tensor) -> bool:
    """Return True when ``M`` (batch, n, m) is one matrix expanded over the batch."""
    return M.dim() == 3 and M.shape[0] > 1 and M.stride(0) == 0


def matvec(M: Tensor, v: Tensor) -> Tensor:
    """Return ``M @ v`` row by row: (batch, n, m) and (batch, m) to (batch, n).

    A matrix shared by every row (see :func:`is_shared`) is applied as one
    matrix product, which skips the batched product's per-row work.
    """
    if is_shared(M):
        return v @ M[0].T
    return (M @ v.unsqueeze(-1)).squeeze(-1)
