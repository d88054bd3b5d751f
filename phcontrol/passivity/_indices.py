r"""Passivity indices, each with a re-checked LMI certificate.

With a storage :math:`V = \tfrac12 x^\top P x` and the storage block
:math:`N(P) = [[A^\top P + PA, PB], [B^\top P, 0]]` (continuous time) or
:math:`[[A^\top PA - P, A^\top PB], [B^\top PA, B^\top PB]]` (discrete
time), and :math:`L = [[0, C^\top], [C, D + D^\top]]`:

* input feed-forward index :math:`\nu` (:math:`\dot V \le y^\top u - \nu |u|^2`):
  :math:`N(P) - L + \mathrm{diag}(0, 2\nu I) \preceq 0`, maximise ``nu``;
* output feedback index :math:`\rho` (:math:`\dot V \le y^\top u - \rho |y|^2`):
  :math:`N(P) - L + 2\rho [C, D]^\top [C, D] \preceq 0`, maximise ``rho``;
* relative index :math:`\|(I - G)(I + G)^{-1}\|_\infty`: the bounded-real LMI
  :math:`N_S(P) + [C_S, D_S]^\top [C_S, D_S] - \mathrm{diag}(0, \gamma^2 I)
  \preceq 0` of the scattering system ``S``, minimise ``gamma^2``.

The system is passive when ``nu >= 0``, ``rho >= 0`` or the relative index is
at most 1. The indices do not depend on state or time scaling, so the LMIs
run on a copy balanced in states and time but not in ports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._numerics import report_status
from .._validation import check_keywords
from ..errors import SolverError
from ._check import RECHECK_TOL
from ._kyp import _solve, pick_solver
from ._lti import LTI, Scaling, _norm2, as_lti, balance, report_scaling

__all__ = ["PassivityIndex", "PassivityIndices", "passivity_indices"]

_CAP = 1e6


@dataclass(frozen=True)
class PassivityIndex:
    """One index with its certificate.

    Attributes
    ----------
    value : float
        The certified value (slightly conservative: the solver's optimum moved
        by a relative 1e-6 towards the safe side). NaN when unavailable.
    P : ndarray, shape (n_states, n_states) or None
        Storage that certifies ``value``, in the system's own coordinates.
    margin_P, margin_lmi : float
        Re-check margins (as in :class:`PassivityResult`).
    certified : bool
        True when the numpy re-check of ``P`` at ``value`` passed.
    solver_status : str
        Status of the convex solver (``"solver_error: ..."`` when it failed,
        ``"I + D singular"`` for a relative index that does not exist).

    Examples
    --------
    >>> import control
    >>> import phcontrol as phc
    >>> nu = phc.passivity_indices(control.tf([1, 3], [1, 1])).input
    >>> round(nu.value, 4), nu.certified, nu.solver_status
    (1.0, True, 'optimal')
    """

    value: float
    P: np.ndarray | None
    margin_P: float
    margin_lmi: float
    certified: bool
    solver_status: str


@dataclass(frozen=True)
class PassivityIndices:
    """Result of :func:`passivity_indices`.

    Attributes
    ----------
    input : PassivityIndex
        Input feed-forward index ``nu`` (excess of passivity when >= 0).
    output : PassivityIndex
        Output feedback index ``rho``.
    relative : PassivityIndex
        ``||(I - G)(I + G)^{-1}||_inf`` (at most 1 exactly when passive);
        NaN when ``I + D`` is singular.

    Examples
    --------
    >>> import control
    >>> import phcontrol as phc
    >>> idx = phc.passivity_indices(control.tf([1, 3], [1, 1]))  # 1 + 2/(s + 1)
    >>> round(idx.output.value, 4), bool(idx.relative.value <= 1.0)
    (0.3333, True)
    """

    input: PassivityIndex
    output: PassivityIndex
    relative: PassivityIndex


def _storage_block(sys: LTI, P: Any) -> Any:
    A, B = sys.A, sys.B
    if sys.discrete:
        return [[A.T @ P @ A - P, A.T @ P @ B], [B.T @ P @ A, B.T @ P @ B]]
    return [[A.T @ P + P @ A, P @ B], [B.T @ P, np.zeros((B.shape[1],) * 2)]]


def _full(sys: LTI, P: Any, extra: np.ndarray) -> Any:
    import cvxpy as cp

    S = _storage_block(sys, P)
    if isinstance(P, np.ndarray):
        M = np.block(S) + extra
        return 0.5 * (M + M.T)
    M = cp.bmat(S) + extra
    return 0.5 * (M + M.T)


def _supply(sys: LTI, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Constant part and the part multiplied by the index."""
    n, m = sys.n_states, sys.n_inputs
    C, D = sys.C, sys.D
    L = np.block([[np.zeros((n, n)), C.T], [C, D + D.T]])
    if kind == "input":
        F = np.block(
            [[np.zeros((n, n)), np.zeros((n, m))], [np.zeros((m, n)), 2 * np.eye(m)]]
        )
    else:
        CD = np.hstack([C, D])
        F = 2.0 * CD.T @ CD
    return -L, F


def _solve_or_status(problem: Any, n: int, solver: str | None) -> str:
    """Solve; a solver that fails on both attempts becomes a status."""
    try:
        return _solve(problem, pick_solver(n, solver), None)
    except SolverError as err:
        return f"solver_error: {err}"


def _index(sys: LTI, kind: str, solver: str | None, scaling: Scaling) -> PassivityIndex:
    import cvxpy as cp

    n = sys.n_states
    P = cp.Variable((n, n), symmetric=True) if n else None
    k = cp.Variable()
    base, F = _supply(sys, kind)
    if n:
        M = _full(sys, P, base) + k * F
        cons = [M << 0, P >> 0]
    else:
        M = base + k * F
        cons = [0.5 * (M + M.T) << 0]
    cons += [k <= _CAP, k >= -_CAP]
    problem = cp.Problem(cp.Maximize(k), cons)
    status = _solve_or_status(problem, n, solver)
    if k.value is None or status != "optimal":
        return PassivityIndex(math.nan, None, math.nan, math.nan, False, status)
    value = float(k.value)
    value -= 1e-6 * (1.0 + abs(value))
    Pv = np.asarray(P.value) if n else np.zeros((0, 0))
    Pv = 0.5 * (Pv + Pv.T)
    M = _full(sys, Pv, base + value * F) if n else base + value * F
    return _recheck(sys, Pv, M, value, status, scaling, F)


def _recheck(
    sys: LTI,
    Pv: np.ndarray,
    M: np.ndarray,
    value: float,
    status: str,
    scaling: Scaling,
    F: np.ndarray,
) -> PassivityIndex:
    nP = _norm2(Pv)
    margin_P = float(np.linalg.eigvalsh(Pv)[0]) / nP if nP > 0 else 0.0
    scale = (
        2.0 * (_norm2(sys.A) ** 2 + 1.0) * nP
        + 2.0 * (_norm2(sys.B) ** 2 + 1.0) * nP
        + 2.0 * (_norm2(sys.C) + _norm2(sys.D))
        + abs(value) * _norm2(F)
        + 1e-300
    )
    margin_lmi = float(np.linalg.eigvalsh(0.5 * (M + M.T))[-1]) / scale
    ok = margin_P >= -RECHECK_TOL and margin_lmi <= RECHECK_TOL
    P = scaling.from_balanced(Pv) if Pv.size else Pv
    return PassivityIndex(value, P, margin_P, margin_lmi, bool(ok), status)


def _scattering(sys: LTI) -> LTI | None:
    m = sys.n_inputs
    K = np.eye(m) + sys.D
    if np.linalg.cond(K) > 1e12:
        return None
    E = np.linalg.inv(K)
    return LTI(
        sys.A - sys.B @ E @ sys.C,
        sys.B @ E,
        -2.0 * E @ sys.C,
        2.0 * E - np.eye(m),
        sys.dt,
    )


def _relative(sys: LTI, solver: str | None, scaling: Scaling) -> PassivityIndex:
    import cvxpy as cp

    S = _scattering(sys)
    if S is None:
        return PassivityIndex(
            math.nan, None, math.nan, math.nan, False, "I + D singular"
        )
    n, m = S.n_states, S.n_inputs
    CD = np.hstack([S.C, S.D])
    base = CD.T @ CD
    F = -np.block([[np.zeros((n, n)), np.zeros((n, m))], [np.zeros((m, n)), np.eye(m)]])
    g2 = cp.Variable()
    P = cp.Variable((n, n), symmetric=True) if n else None
    M = (_full(S, P, base) if n else base) + g2 * F
    cons = [0.5 * (M + M.T) << 0, g2 <= _CAP, g2 >= 0]
    if n:
        cons.append(P >> 0)
    problem = cp.Problem(cp.Minimize(g2), cons)
    status = _solve_or_status(problem, n, solver)
    if g2.value is None or status != "optimal":
        return PassivityIndex(math.nan, None, math.nan, math.nan, False, status)
    gamma = math.sqrt(max(float(g2.value), 0.0)) * (1.0 + 1e-6) + 1e-9
    Pv = np.asarray(P.value) if n else np.zeros((0, 0))
    Pv = 0.5 * (Pv + Pv.T)
    Mv = (_full(S, Pv, base) if n else base) + gamma**2 * F
    res = _recheck(S, Pv, Mv, gamma**2, status, scaling, F)
    return PassivityIndex(
        gamma, res.P, res.margin_P, res.margin_lmi, res.certified, status
    )


@check_keywords
def passivity_indices(
    system: Any,
    *,
    dt: float | None = None,
    solver: str | None = None,
    strict: bool = False,
) -> PassivityIndices:
    r"""Compute the input, output and relative passivity indices.

    Parameters
    ----------
    system : control.StateSpace or control.TransferFunction or tuple
        A square LTI system, continuous or discrete.
    dt : float, optional
        Time base for a tuple (default continuous).
    solver : str, optional
        CVXPY solver (default as in :func:`check_passivity`).
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        a convex solve ends with a status that is not clean, and
        :class:`~phcontrol.errors.NumericsError` when the balancing
        transform is ill-conditioned (as in :func:`check_passivity`).

    Returns
    -------
    PassivityIndices
        Each index with its storage ``P`` and re-check margins.

    Raises
    ------
    SolverError
        With ``strict=True``, when a solve ends with a status other than
        ``optimal``, ``infeasible`` or ``unbounded``, or the solver fails.
    NumericsError
        With ``strict=True``, when the state scaling that balances the
        system spans more than a factor 1e6.

    Warns
    -----
    NumericsWarning
        In the same cases without ``strict``; a failed index is then NaN
        with ``certified=False``.

    Notes
    -----
    For a stable minimal system :math:`\nu = \tfrac12 \min_\omega
    \lambda_{\min}(G(j\omega) + G(j\omega)^H)`.

    Examples
    --------
    >>> import control
    >>> idx = passivity_indices(control.tf([1, 3], [1, 1]))  # 1 + 2/(s + 1)
    >>> round(idx.input.value, 4), round(idx.output.value, 4)
    (1.0, 0.3333)
    >>> bool(idx.relative.value <= 1.0)
    True
    """
    sys = as_lti(system, dt)
    _, sc = balance(sys)
    report_scaling(sc, strict)
    scaling = Scaling(sc.state, sc.time, 1.0)
    work = scaling.apply(sys)
    result = PassivityIndices(
        _index(work, "input", solver, scaling),
        _index(work, "output", solver, scaling),
        _relative(work, solver, scaling),
    )
    statuses = {
        name: index.solver_status
        for name, index in (
            ("input", result.input),
            ("output", result.output),
            ("relative", result.relative),
        )
        if index.solver_status != "I + D singular"
    }
    report_status(
        statuses,
        "passivity_indices",
        "those indices are NaN and not certified",
        strict,
        solver,
    )
    return result
