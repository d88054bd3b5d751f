"""Exceptions and warnings raised by phcontrol.

Every error derives from :class:`PHControlError` and, where it refines a
builtin, from that builtin too, so ``except ValueError`` keeps working.
Every warning derives from :class:`PHControlWarning`. Functions that can
warn take ``strict=True`` to raise the matching error with the same text.
"""

from __future__ import annotations

__all__ = [
    "PHControlError",
    "ShapeError",
    "DataError",
    "ConvergenceError",
    "SolverError",
    "NotSupportedError",
    "ModelFileError",
    "NumericsError",
    "PHControlWarning",
    "NumericsWarning",
    "DataWarning",
]


class PHControlError(Exception):
    """Root of every error raised by phcontrol."""


class ShapeError(PHControlError, ValueError):
    """An argument has the wrong shape, dtype or size."""


class DataError(PHControlError, ValueError):
    """A log failed its checks.

    The message is one summary line; ``problems`` keeps every problem found,
    each a short string naming the file, column and row.

    Parameters
    ----------
    message : str
        The one-line summary.
    problems : list of str, optional
        Every problem found, in the order found.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [message])


class ConvergenceError(PHControlError, RuntimeError):
    """An implicit solve or a fit did not converge."""


class SolverError(PHControlError, RuntimeError):
    """A convex solver failed or returned a status that is not optimal."""


class NotSupportedError(PHControlError, NotImplementedError):
    """A combination of options that phcontrol does not support."""


class ModelFileError(PHControlError, ValueError):
    """A model or certificate file is unknown, tampered, truncated or mismatched."""


class NumericsError(PHControlError, ArithmeticError):
    """A result would lose too many digits: an ill-conditioned matrix.

    The error that ``strict=True`` raises in place of a
    :class:`NumericsWarning` about conditioning.
    """


class PHControlWarning(UserWarning):
    """Root of every warning issued by phcontrol."""


class NumericsWarning(PHControlWarning):
    """A numerical step is doubtful: no convergence, ill conditioning."""


class DataWarning(PHControlWarning):
    """A log is usable but unusual, for example irregularly sampled."""
