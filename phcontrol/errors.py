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
    """Root of every error raised by phcontrol.

    Examples
    --------
    >>> from phcontrol.errors import PHControlError, ShapeError
    >>> issubclass(ShapeError, PHControlError)
    True
    """


class ShapeError(PHControlError, ValueError):
    """An argument has the wrong shape, dtype or size.

    Examples
    --------
    >>> from phcontrol.errors import ShapeError
    >>> issubclass(ShapeError, ValueError)
    True
    """


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

    Examples
    --------
    >>> from phcontrol.errors import DataError
    >>> err = DataError("log.csv: 2 problems", ["row 3: y is NaN", "row 9: y is NaN"])
    >>> str(err), len(err.problems)
    ('log.csv: 2 problems', 2)
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems or [message])


class ConvergenceError(PHControlError, RuntimeError):
    """An implicit solve or a fit did not converge.

    Examples
    --------
    >>> from phcontrol.errors import ConvergenceError
    >>> issubclass(ConvergenceError, RuntimeError)
    True
    """


class SolverError(PHControlError, RuntimeError):
    """A convex solver failed or returned a status that is not optimal.

    Examples
    --------
    >>> from phcontrol.errors import SolverError
    >>> issubclass(SolverError, RuntimeError)
    True
    """


class NotSupportedError(PHControlError, NotImplementedError):
    """A combination of options that phcontrol does not support.

    Examples
    --------
    >>> from phcontrol.errors import NotSupportedError
    >>> issubclass(NotSupportedError, NotImplementedError)
    True
    """


class ModelFileError(PHControlError, ValueError):
    """A model or certificate file is unknown, tampered, truncated or mismatched.

    Examples
    --------
    >>> from phcontrol.errors import ModelFileError
    >>> issubclass(ModelFileError, ValueError)
    True
    """


class NumericsError(PHControlError, ArithmeticError):
    """A result would lose too many digits: an ill-conditioned matrix.

    The error that ``strict=True`` raises in place of a
    :class:`NumericsWarning` about conditioning.

    Examples
    --------
    >>> from phcontrol.errors import NumericsError
    >>> issubclass(NumericsError, ArithmeticError)
    True
    """


class PHControlWarning(UserWarning):
    """Root of every warning issued by phcontrol.

    Examples
    --------
    >>> from phcontrol.errors import NumericsWarning, PHControlWarning
    >>> issubclass(NumericsWarning, PHControlWarning)
    True
    >>> issubclass(PHControlWarning, UserWarning)
    True
    """


class NumericsWarning(PHControlWarning):
    """A numerical step is doubtful: no convergence, ill conditioning.

    Examples
    --------
    >>> import torch, phcontrol as phc
    >>> H, J = phc.QuadraticHamiltonian(2), phc.CanonicalJ(2)
    >>> model = phc.PortHamiltonian(H, J).double()
    >>> x0 = torch.ones(1, 2, dtype=torch.float64)
    >>> try:
    ...     phc.simulate(model, x0, dt=0.5, steps=2, max_iter=1, tol=1e-30, strict=True)
    ... except phc.ConvergenceError:
    ...     print("strict=True raised instead of a NumericsWarning")
    strict=True raised instead of a NumericsWarning
    """


class DataWarning(PHControlWarning):
    """A log is usable but unusual, for example irregularly sampled.

    Examples
    --------
    >>> from phcontrol.errors import DataWarning, PHControlWarning
    >>> issubclass(DataWarning, PHControlWarning)
    True
    """
