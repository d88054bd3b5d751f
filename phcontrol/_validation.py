"""Shared checks of user input, used once at each public boundary.

Every helper raises a phcontrol error whose message names the argument,
states the rule, says what was found and how to fix it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from .errors import ShapeError

__all__: list[str] = []

_F = TypeVar("_F", bound=Callable[..., Any])


def check_keywords(func: _F) -> _F:
    """Reject unknown keyword arguments of ``func`` naming the closest one.

    Python's own ``TypeError`` names the unknown keyword; this one also
    suggests the argument that was most likely meant.
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [
        p.name for p in inspect.signature(func).parameters.values() if p.kind in kinds
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"{func.__name__}() got an unexpected keyword argument "
                    f"{key!r}{hint} Its keywords: {', '.join(names)}"
                )
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _describe(x: Tensor) -> str:
    return f"shape {tuple(x.shape)}, dtype {str(x.dtype).replace('torch.', '')}"


def check_batch(x: Tensor, name: str, n: int) -> Tensor:
    """Return ``x`` as a (batch, n) tensor; a (n,) vector gains a batch axis."""
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2 or x.shape[-1] != n:
        raise ShapeError(
            f"`{name}` must have shape (batch, {n}); found {_describe(x)}. "
            f"Stack states as rows of a (batch, {n}) tensor."
        )
    if not x.is_floating_point():
        raise ShapeError(f"`{name}` must be a floating tensor; found {_describe(x)}")
    return x


def check_positive(value: float, name: str) -> float:
    """Return ``value`` as a float after checking that it is finite and > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a number, got {value!r}") from err
    if not (value > 0.0 and value < float("inf")):
        raise ValueError(f"`{name}` must be positive and finite; found {value!r}")
    return value


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` after checking that it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}; found {value!r}")
    return value


def default_tol(dtype: torch.dtype) -> float:
    """The numerics contract's default solve tolerance for ``dtype``."""
    return 1e-12 if dtype == torch.float64 else 1e-6


def spd_factor(M: Tensor, name: str, eps: float) -> Tensor:
    """Return the Cholesky factor ``L`` of ``M - eps I`` for an SPD ``M``.

    Raises a ``ValueError`` that names ``name`` when ``M`` is not symmetric
    (only its lower triangle would reach ``L``, silently changing it) or
    its eigenvalues are not all above ``eps``.
    """
    n = M.shape[-1]
    scale = float(M.abs().max()) if M.numel() else 0.0
    if not torch.allclose(M, M.T, rtol=0.0, atol=64 * torch.finfo(M.dtype).eps * scale):
        raise ValueError(
            f"`{name}` must be symmetric positive definite; it is not symmetric "
            f"(largest |{name} - {name}^T| is {float((M - M.T).abs().max()):.3g}). "
            f"Pass (M + M.T) / 2."
        )
    try:
        return torch.linalg.cholesky(M - eps * torch.eye(n, dtype=M.dtype))
    except torch.linalg.LinAlgError as err:
        raise ValueError(
            f"`{name}` must be symmetric positive definite with eigenvalues above "
            f"eps={eps}; smallest eigenvalue is "
            f"{float(torch.linalg.eigvalsh(M).min()):.3g}"
        ) from err
