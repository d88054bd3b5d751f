r"""Passivity enforcement: the nearest passive model with ``A`` and ``B`` fixed.

With ``A`` and ``B`` fixed the KYP block is affine in ``(P, C, D)``, so

.. math:: \min_{P, \Delta C, \Delta D} \|\Delta C\, W^{1/2}\|_F + \|\Delta D\|_F
   \quad\text{s.t.}\quad P \succeq 0,\; M(P; C + \Delta C, D + \Delta D)
   \preceq -\delta I

is convex. ``W`` is the controllability Gramian (the output-energy weight of
a change in ``C``); plain Frobenius when ``A`` is not stable. A small
``delta`` keeps the result strictly inside the passive set where possible,
so that it passes :func:`check_passivity`'s re-check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._numerics import report_status
from .._validation import check_keywords
from ..errors import SolverError
from ._check import PassivityResult, check_passivity
from ._hamiltonian_test import default_grid
from ._kyp import _solve, pick_solver
from ._lti import LTI, as_lti, balance, boundary_point, to_control

__all__ = ["EnforcementResult", "enforce_passivity"]


@dataclass(frozen=True)
class EnforcementResult:
    """Result of :func:`enforce_passivity`.

    Attributes
    ----------
    system : control.StateSpace
        The passive model ``(A, B, C + delta_C, D + delta_D)``.
    delta_C : ndarray, shape (n_outputs, n_states)
    delta_D : ndarray, shape (n_outputs, n_inputs)
    perturbation : float
        ``||delta_C W^{1/2}||_F + ||delta_D||_F`` (``W`` the Gramian; 1 when
        ``weighting`` is ``"frobenius"``).
    weighting : {"gramian", "frobenius"}
    frequency_change : float
        Largest ``||G_new(jw) - G(jw)||_2`` over the frequency grid.
    check : PassivityResult
        The verdict on the new model (``passive`` on success).
    solver_status : str or None
        ``None`` when the model was already passive and left unchanged.

    Examples
    --------
    >>> import control
    >>> import phcontrol as phc
    >>> res = phc.enforce_passivity(control.tf([1, -0.5], [1, 1]))
    >>> res.check.passive, res.delta_C.shape, res.delta_D.shape
    (True, (1, 1), (1, 1))
    """

    system: Any
    delta_C: np.ndarray
    delta_D: np.ndarray
    perturbation: float
    weighting: str
    frequency_change: float
    check: PassivityResult
    solver_status: str | None


def _gramian(sys: LTI) -> np.ndarray | None:
    import scipy.linalg

    lam = np.linalg.eigvals(sys.A) if sys.n_states else np.array([])
    if sys.discrete:
        if lam.size and np.abs(lam).max() >= 1.0 - 1e-9:
            return None
        W = scipy.linalg.solve_discrete_lyapunov(sys.A, sys.B @ sys.B.T)
    else:
        if lam.size and lam.real.max() >= -1e-9 * max(np.abs(lam).max(), 1e-300):
            return None
        W = scipy.linalg.solve_continuous_lyapunov(sys.A, -sys.B @ sys.B.T)
    W = 0.5 * (W + W.T)
    w, V = np.linalg.eigh(W)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


@check_keywords
def enforce_passivity(
    system: Any,
    *,
    dt: float | None = None,
    solver: str | None = None,
    margin: float = 1e-6,
    n_points: int = 400,
    strict: bool = False,
) -> EnforcementResult:
    r"""Find the nearest passive model, changing only ``C`` and ``D``.

    Parameters
    ----------
    system : control.StateSpace or control.TransferFunction or tuple
        A square LTI system, continuous or discrete.
    dt : float, optional
        Time base for a tuple (default continuous).
    solver : str, optional
        CVXPY solver (default as in :func:`check_passivity`).
    margin : float, default 1e-6
        Required strictness ``delta`` of the KYP block, relative to the
        balanced system; dropped to 0 when no strict solution exists (for
        instance poles on the imaginary axis).
    n_points : int, default 400
        Size of the frequency grid for ``frequency_change``.
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        a convex solve (here or in the checks) ends with a status that is
        not clean.

    Returns
    -------
    EnforcementResult

    Raises
    ------
    SolverError
        If no passive model was found or it fails the check; with
        ``strict=True`` also when a solve ends ``optimal_inaccurate``.

    Warns
    -----
    NumericsWarning
        When the solve that gave the model ended ``optimal_inaccurate``:
        the model is returned only because :func:`check_passivity` found it
        ``passive`` on its own.

    Examples
    --------
    >>> import control
    >>> res = enforce_passivity(control.tf([1, -0.5], [1, 1]))  # (s - 0.5)/(s + 1)
    >>> res.check.verdict
    'passive'
    """
    import cvxpy as cp

    sys = as_lti(system, dt)
    n, m = sys.n_states, sys.n_inputs
    first = check_passivity(sys_tuple(sys), dt=sys.dt, strict=strict)
    if first.passive:
        return EnforcementResult(
            to_control(sys),
            np.zeros((m, n)),
            np.zeros((m, m)),
            0.0,
            "none",
            0.0,
            first,
            None,
        )
    bal, sc = balance(sys)
    t, alpha, w = sc.state, sc.time, sc.port
    root_W = _gramian(bal)
    weighting = "frobenius" if root_W is None else "gramian"
    P = cp.Variable((n, n), symmetric=True)
    dC = cp.Variable((m, n))
    dD = cp.Variable((m, m))
    A, B = bal.A, bal.B
    C = bal.C + dC
    D = bal.D + dD
    if bal.discrete:
        blocks = [
            [A.T @ P @ A - P, A.T @ P @ B - C.T],
            [B.T @ P @ A - C, B.T @ P @ B - D - D.T],
        ]
    else:
        blocks = [[A.T @ P + P @ A, P @ B - C.T], [B.T @ P - C, -D - D.T]]
    M = cp.bmat(blocks)
    M = 0.5 * (M + M.T)
    if root_W is None:
        cost = cp.norm(dC @ np.diag(t), "fro") / w + cp.norm(dD, "fro")
    else:
        cost = math.sqrt(alpha) * cp.norm(dC @ root_W, "fro") + cp.norm(dD, "fro")
    status = "not run"
    solution = None
    for delta in (margin, 0.0):
        cons = [M << -delta * np.eye(n + m), P >> 0, cp.trace(P) <= 1e4 * max(n, 1)]
        problem = cp.Problem(cp.Minimize(cost), cons)
        status = _solve(problem, pick_solver(n, solver), None)
        if status in ("optimal", "optimal_inaccurate") and dC.value is not None:
            solution = (np.asarray(dC.value), np.asarray(dD.value))
            new = _unbalance(sys, solution, t, w)
            check = check_passivity(sys_tuple(new), dt=sys.dt, strict=strict)
            if check.passive:
                break
        solution = None
    if solution is None:
        raise SolverError(
            f"no passive model with A, B fixed passed the check (solver {status}); "
            "the poles may have to move: refit the model with a passive structure"
        )
    report_status(
        status,
        "enforce_passivity",
        "the model is kept because check_passivity found it passive on its own",
        strict,
        pick_solver(n, solver),
    )
    dC_orig = solution[0] * t[None, :] * w
    dD_orig = solution[1] * w * w
    size = _cost(sys, dC_orig, dD_orig)
    grid = default_grid(sys, n_points)
    change = 0.0
    for om in grid:
        s = boundary_point(sys, om)
        X = np.linalg.lstsq(s * np.eye(n) - sys.A, sys.B.astype(complex), rcond=None)[0]
        change = max(change, float(np.linalg.norm(dC_orig @ X + dD_orig, 2)))
    return EnforcementResult(
        to_control(new), dC_orig, dD_orig, size, weighting, change, check, status
    )


def _cost(sys: LTI, dC: np.ndarray, dD: np.ndarray) -> float:
    root_W = _gramian(sys)
    part = np.linalg.norm(dC if root_W is None else dC @ root_W, "fro")
    return float(part + np.linalg.norm(dD, "fro"))


def _unbalance(
    sys: LTI, sol: tuple[np.ndarray, np.ndarray], t: np.ndarray, w: float
) -> LTI:
    dC, dD = sol
    return LTI(sys.A, sys.B, sys.C + dC * t[None, :] * w, sys.D + dD * w * w, sys.dt)


def sys_tuple(sys: LTI) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, C, D)`` of an LTI."""
    return sys.A, sys.B, sys.C, sys.D
