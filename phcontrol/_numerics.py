"""Reporting of doubtful numerics: a warning, or the error under ``strict``.

A convex solve whose status is not ``optimal``, ``infeasible`` or
``unbounded`` (an ``*_inaccurate`` status, a time or iteration limit, a
solver failure) and a transform whose condition number would cost too many
digits are reported the same way everywhere: a
:class:`~phcontrol.errors.NumericsWarning` pointing at the user's line, or,
with ``strict=True``, the matching error with the same text.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from .errors import NumericsWarning, SolverError

__all__: list[str] = []

CLEAN_STATUSES = frozenset({"optimal", "infeasible", "unbounded"})
"""Solver statuses that leave nothing to report."""

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep


def caller_stacklevel() -> int:
    """Return the ``stacklevel`` of the first frame outside phcontrol.

    Counted for a ``warnings.warn`` called by the function that calls this
    one, so the warning names the user's line however deep the call was.
    """
    level = 1
    frame = sys._getframe(1)
    while frame is not None:
        if not str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
            return level
        frame = frame.f_back
        level += 1
    return level


def report(text: str, strict: bool, error: type[Exception]) -> None:
    """Raise ``error(text)`` when ``strict``, else warn (:class:`NumericsWarning`)."""
    if strict:
        raise error(text)
    warnings.warn(text, NumericsWarning, stacklevel=caller_stacklevel())


def report_status(
    status: str | Mapping[str, str] | None,
    what: str,
    outcome: str,
    strict: bool,
    solver: str | None = None,
) -> None:
    """Report a convex solve that ended with a status that is not clean.

    Parameters
    ----------
    status : str or mapping of str to str or None
        The solver's status, or the statuses of several solves keyed by what
        each solved for; None and the clean statuses report nothing.
    what : str
        The function that solved, starting the message.
    outcome : str
        What it did with the solve (``"the verdict is 'undecided'"``).
    strict : bool
        Raise :class:`~phcontrol.errors.SolverError` instead of warning.
    solver : str, optional
        The solver that was used; the message suggests the others.
    """
    if status is None:
        return
    named = {"": status} if isinstance(status, str) else dict(status)
    bad = {k: v for k, v in named.items() if v not in CLEAN_STATUSES}
    if not bad:
        return
    listed = ", ".join(f"{v!r}" + (f" ({k})" if k else "") for k, v in bad.items())
    others = [s for s in ("SCS", "CLARABEL") if s != (solver or "").upper()]
    text = (
        f"{what}: the convex solver ended with status {listed}, not "
        f"'optimal', 'infeasible' or 'unbounded'; {outcome}. Try "
        + " or ".join(f"solver={s!r}" for s in others)
    )
    report(text, strict, SolverError)
