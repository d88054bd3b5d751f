"""Shared checks of user input, used once at each public boundary.

Every helper raises a phcontrol error whose message names the argument,
states the rule, says what was found and how to fix it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import numbers
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


def check_device(device: str | torch.device, name: str) -> torch.device:
    """Return ``device`` as a ``torch.device`` after checking this machine has it.

    Without the check a CUDA device on a machine without one fails deep in
    torch with ``AssertionError: Torch not compiled with CUDA enabled``.
    """
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"`{name}` must name a torch device such as 'cpu' or 'cuda'; "
            f"found {device!r}"
        ) from err
    if found.type != "cuda":
        return found
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = (
            f"this torch ({torch.__version__}) is built without CUDA"
            if torch.version.cuda is None
            else "torch finds no CUDA device on this machine"
        )
        raise ValueError(
            f"`{name}`={device!r} asks for a CUDA device, but {why}; pass "
            f"{name}='cpu', or run on a machine with a GPU and a CUDA build of torch"
        )
    if found.index is not None and found.index >= count:
        raise ValueError(
            f"`{name}`={device!r} asks for CUDA device {found.index}, but torch "
            f"finds {count} (numbered from 0); pass {name}='cuda' for the first"
        )
    return found


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


def check_count(value: int, name: str, minimum: int) -> int:
    """Return ``value`` after checking that it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; found {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; found {value!r}")
    return int(value)


def check_fit_settings(
    data: Any, *, n_past: int, window: int, val_fraction: float
) -> None:
    """Check the window settings of a fit, and that a plain log is long enough.

    A plain log keeps its last ``val_fraction`` for validation (rounded as
    :meth:`~phcontrol.data.Log.split` does), and each part must hold
    ``n_past + window + 1`` samples. A too short log raises a
    :class:`~phcontrol.errors.DataError` naming the log, its length, the
    length needed and the fix, before any split is attempted.
    """
    from .data import Log
    from .errors import DataError

    check_count(n_past, "n_past", 1)
    check_count(window, "window", 1)
    frac = float(val_fraction)
    if not 0.0 < frac < 1.0:
        raise ValueError(
            f"`val_fraction` must lie strictly between 0 and 1; found "
            f"{val_fraction!r}. The default 0.2 keeps the last 20% for validation"
        )
    if not isinstance(data, Log):
        return
    need = n_past + window + 1
    n_min = 2 * need
    while True:
        n_last = math.floor(frac * n_min + 0.5)
        if n_last >= need and n_min - n_last >= need:
            break
        n_min += 1
    n = len(data)
    if n >= n_min:
        return
    name = data.source or "the log"
    raise DataError(
        f"{name}: the log has {n} sample{'s' if n != 1 else ''} but identify needs "
        f"at least {n_min}: the last val_fraction={frac:g} of it is kept for "
        f"validation and each part needs n_past + window + 1 = {need} samples. "
        f"Use a longer log, or shorten `window` (now {window})"
    )
