r"""Storage certificates: the positive-real LMI, its Riccati shortcut and refutations.

Everything here works on a continuous-time system ``(A, B, C, D)``
(discrete-time systems arrive through the Cayley transform of
:func:`~phcontrol.passivity._lti.cayley`, which keeps ``P``). A storage
``P = P^T \succeq 0`` certifies passivity when

.. math:: M(P) = \begin{bmatrix} A^\top P + PA & PB - C^\top \\
   B^\top P - C & -(D + D^\top) \end{bmatrix} \preceq 0 .

Where ``W = D + D^T`` is singular its null space ``U_0`` forces
``P B U_0 = C^T U_0``; the LMI is solved on the range of ``W`` with that
equality. A refutation is a matrix ``Z \succeq 0`` with
``A Z_{11} + Z_{11} A^T + B Z_{21} + Z_{12} B^T \succeq 0`` and
``<M(0), Z> > 0`` (Farkas): then ``<M(P), Z> > 0`` for every ``P \succeq 0``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from ._lti import EPS, LTI, _norm2

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Solver choice, measured with ``python -m benchmarks.passivity --quick`` on
# random passive systems with m = 2 (2 shared cores). Clarabel: 0.03 s (n = 4),
# 0.5-3.1 s (n = 20), 20-26 s (n = 50). SCS: 0.01-0.04 s, 0.7-3.2 s, and at
# n = 50 17 s (D = 0) or 120 s ending "optimal_inaccurate" (D = I). The claim
# that SCS is much faster above ~20 states did not hold here, and its looser
# accuracy fails the re-check more often, so Clarabel is the default at every
# size; SCS is used only on request or when Clarabel fails.
SCS_FROM_STATES = 10**9


@dataclass(frozen=True)
class LMISolution:
    """What a convex solve returned (``P`` None when the solve failed)."""

    P: np.ndarray | None
    status: str
    objective: float
    solver: str
    seconds: float


def null_split(
    W: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``W = D + D^T`` into its range ``(w1, U1)`` and null space ``U0``.

    An eigenvalue counts as zero below ``sqrt(eps) * scale``.
    """
    w, U = np.linalg.eigh(W)
    cut = math.sqrt(EPS) * max(scale, _norm2(W), 1e-300)
    keep = w > cut
    return w[keep], U[:, keep], U[:, ~keep]


def first_markov_witness(sys: LTI) -> str | None:
    """Refute passivity when ``U0^T C B U0`` is not symmetric positive semidefinite.

    With ``P B U0 = C^T U0`` forced, ``U0^T C B U0 = U0^T B^T P B U0`` must be
    symmetric and positive semidefinite (for ``D = 0``: ``C B``).
    """
    W = sys.D + sys.D.T
    scale = _norm2(sys.C) * _norm2(sys.B)
    if scale == 0.0:
        return None
    _, _, U0 = null_split(W, scale)
    if U0.shape[1] == 0 or sys.n_states == 0:
        return None
    F = U0.T @ sys.C @ sys.B @ U0
    tol = 64 * (sys.n_states + 1) * EPS * scale
    asym = float(np.abs(F - F.T).max())
    lam = float(np.linalg.eigvalsh(0.5 * (F + F.T))[0])
    if asym > max(tol, 1e-9 * scale):
        return (
            f"U0^T C B U0 is not symmetric (asymmetry {asym:.3g}) where D + D^T is "
            "singular along U0; no storage satisfies P B U0 = C^T U0"
        )
    if lam < -max(tol, 1e-9 * scale):
        return (
            f"U0^T C B U0 has the negative eigenvalue {lam:.3g} where D + D^T is "
            "singular along U0; it would equal U0^T B^T P B U0 >= 0"
        )
    return None


def modal_witness(sys: LTI) -> str | None:
    """Refute passivity by an unstable mode that the output sees.

    For ``A v = lambda v`` with ``Re lambda > 0`` the (1,1) block forces
    ``P v = 0`` and then the LMI forces ``C v = 0``. Works on a
    continuous-time system.
    """
    n = sys.n_states
    if n == 0:
        return None
    lam, V = np.linalg.eig(sys.A)
    nA = max(_norm2(sys.A), 1e-300)
    nC = _norm2(sys.C)
    if nC == 0.0:
        return None
    for k in range(n):
        if lam[k].real > 1e-6 * nA:
            v = V[:, k] / np.linalg.norm(V[:, k])
            seen = float(np.linalg.norm(sys.C @ v)) / nC
            if seen > 1e-6:
                return (
                    f"the mode at s = {complex(lam[k]):.4g} is unstable and seen by "
                    f"the output (|C v| / |C| = {seen:.2g}); no storage P >= 0 "
                    "allows it"
                )
    return None


def riccati_candidates(sys: LTI) -> list[np.ndarray]:
    r"""Storages from the positive-real Riccati equation (``D + D^T`` invertible).

    Solves :math:`A^\top P + PA + (PB - C^\top) W^{-1} (B^\top P - C) = 0`
    for its two extreme solutions (stabilising and anti-stabilising); their
    mean is an interior point of the LMI when they differ. Returns the
    candidates that came out finite, most interior first.
    """
    import scipy.linalg

    W = sys.D + sys.D.T
    n = sys.n_states
    found: list[np.ndarray] = []
    for sign in (1.0, -1.0):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                X = scipy.linalg.solve_continuous_are(
                    sign * sys.A, sys.B, np.zeros((n, n)), W, s=sign * sys.C.T
                )
        except (np.linalg.LinAlgError, ValueError):
            continue
        P = -sign * X
        if np.all(np.isfinite(P)):
            found.append(0.5 * (P + P.T))
    if len(found) == 2:
        found.insert(0, 0.5 * (found[0] + found[1]))
    return found


def polish(sys: LTI, P: np.ndarray) -> np.ndarray:
    """Symmetrise ``P`` and make ``P B U0 = C^T U0`` hold to round-off."""
    P = 0.5 * (P + P.T)
    W = sys.D + sys.D.T
    _, _, U0 = null_split(W, _norm2(sys.C) * _norm2(sys.B))
    if U0.shape[1] == 0 or sys.n_states == 0:
        return P
    B0 = sys.B @ U0
    if np.linalg.matrix_rank(B0) < B0.shape[1]:
        return P
    E = sys.C.T @ U0 - P @ B0
    F = np.linalg.solve(B0.T @ B0, B0.T)
    dP = E @ F + F.T @ E.T - F.T @ (B0.T @ E) @ F
    return P + 0.5 * (dP + dP.T)


def pick_solver(n_states: int, solver: str | None) -> str:
    """Return the solver name: the one asked for, else by size (see above)."""
    if solver is not None:
        return solver.upper()
    return "SCS" if n_states >= SCS_FROM_STATES else "CLARABEL"


def _solve(problem, solver: str, max_seconds: float | None) -> str:  # noqa: ANN001
    """Solve with ``solver``; if it fails, once with the other one.

    Raises SolverError only when both fail.
    """
    try:
        return _solve_once(problem, solver, max_seconds)
    except SolverError as first:
        other = "SCS" if solver == "CLARABEL" else "CLARABEL"
        logger.info("%s; retrying with %s", first, other)
        return _solve_once(problem, other, max_seconds)


def _solve_once(problem, solver: str, max_seconds: float | None) -> str:  # noqa: ANN001
    import cvxpy as cp

    options: dict[str, object] = {}
    if solver == "SCS":
        options = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000}
        if max_seconds is not None:
            options["time_limit_secs"] = max_seconds
    elif solver == "CLARABEL" and max_seconds is not None:
        options = {"time_limit": max_seconds}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=solver, **options)
    except cp.error.SolverError as err:
        raise SolverError(
            f"the convex solver {solver} failed ({err}); pass solver='SCS' or "
            "solver='CLARABEL' to try the other one"
        ) from err
    return str(problem.status)


def solve_lmi(
    sys: LTI, *, solver: str | None = None, max_seconds: float | None = None
) -> LMISolution:
    """Find the most interior storage ``P`` of the continuous-time LMI.

    Minimises ``t`` subject to ``M_r(P) <= t I`` (the block reduced to the
    range of ``D + D^T``), ``P B U0 = C^T U0``, ``P >= 0``, ``t >= -1`` and
    ``trace(P) <= 1e4 n`` (the system is balanced, so a storage of norm far
    above 1 is not expected).
    """
    import cvxpy as cp

    n, m = sys.n_states, sys.n_inputs
    name = pick_solver(n, solver)
    A, B, C = sys.A, sys.B, sys.C
    W = sys.D + sys.D.T
    w1, U1, U0 = null_split(W, _norm2(C) * _norm2(B))
    k = U1.shape[1]
    P = cp.Variable((n, n), symmetric=True)
    t = cp.Variable()
    M11 = A.T @ P + P @ A
    blocks = M11
    if k:
        M12 = (P @ B - C.T) @ U1
        blocks = cp.bmat([[M11, M12], [M12.T, -np.diag(w1)]])
    size = n + k
    constraints = [
        0.5 * (blocks + blocks.T) << t * np.eye(size),
        P >> 0,
        t >= -1.0,
        cp.trace(P) <= 1e4 * max(n, 1),
    ]
    if U0.shape[1]:
        constraints.append(P @ (B @ U0) == C.T @ U0)
    problem = cp.Problem(cp.Minimize(t), constraints)
    start = time.perf_counter()
    try:
        status = _solve(problem, name, max_seconds)
    except SolverError as err:
        return LMISolution(None, f"solver_error: {err}", math.nan, name, 0.0)
    seconds = time.perf_counter() - start
    value = P.value
    if value is None or status not in ("optimal", "optimal_inaccurate"):
        return LMISolution(None, status, math.nan, name, seconds)
    del m
    return LMISolution(
        polish(sys, np.asarray(value)), status, float(t.value), name, seconds
    )


@dataclass(frozen=True)
class Refutation:
    """A re-checked Farkas certificate ``Z`` (None when none was found)."""

    Z: np.ndarray | None
    status: str
    message: str


def farkas_residuals(sys: LTI, Z: np.ndarray) -> tuple[float, float, float]:
    """Return ``(lambda_min(Z), lambda_min(Y) / scale, <M(0), Z>)`` for a refutation."""
    n = sys.n_states
    Z = 0.5 * (Z + Z.T)
    Z11, Z21 = Z[:n, :n], Z[n:, :n]
    Y = sys.A @ Z11 + Z11 @ sys.A.T + sys.B @ Z21 + Z21.T @ sys.B.T
    scale = 2.0 * (_norm2(sys.A) + _norm2(sys.B)) * _norm2(Z) + 1e-300
    W = sys.D + sys.D.T
    value = -2.0 * float(np.trace(sys.C @ Z21.T)) - float(np.trace(W @ Z[n:, n:]))
    lam_Y = float(np.linalg.eigvalsh(Y)[0]) if n else 0.0
    return float(np.linalg.eigvalsh(Z)[0]), lam_Y / scale, value


def refute_lmi(
    sys: LTI,
    *,
    solver: str | None = None,
    max_seconds: float | None = None,
    tol: float = 1e-7,
) -> Refutation:
    """Search for a Farkas proof that no storage ``P >= 0`` exists; re-check it."""
    import cvxpy as cp

    n, m = sys.n_states, sys.n_inputs
    name = pick_solver(n, solver)
    Z = cp.Variable((n + m, n + m), symmetric=True)
    s = cp.Variable()
    Z11, Z21, Z22 = Z[:n, :n], Z[n:, :n], Z[n:, n:]
    W = sys.D + sys.D.T
    Y = sys.A @ Z11 + Z11 @ sys.A.T + sys.B @ Z21 + Z21.T @ sys.B.T
    value = -2.0 * cp.trace(sys.C @ Z21.T) - cp.trace(W @ Z22)
    constraints = [Z >> 0, value == 1.0, cp.trace(Z) <= 1e4 * (n + m), s <= 1.0]
    if n:
        constraints.append(0.5 * (Y + Y.T) >> s * np.eye(n))
    problem = cp.Problem(cp.Maximize(s), constraints)
    try:
        status = _solve(problem, name, max_seconds)
    except SolverError as err:
        return Refutation(None, "solver_error", f"no refutation found ({err})")
    if Z.value is None or status not in ("optimal", "optimal_inaccurate"):
        return Refutation(None, status, f"no refutation found (solver {status})")
    Zv = np.asarray(Z.value)
    lam, ev = np.linalg.eigh(0.5 * (Zv + Zv.T))
    Zp = (ev * np.clip(lam, 0.0, None)) @ ev.T
    _, lam_Y, val = farkas_residuals(sys, Zp)
    if lam_Y >= -tol and val >= 0.5:
        return Refutation(
            Zp,
            status,
            f"a Farkas certificate Z >= 0 with <M(0), Z> = {val:.3g} and "
            f"lambda_min(Y)/scale = {lam_Y:.2g} rules out every storage P >= 0",
        )
    return Refutation(
        None,
        status,
        f"the solver's refutation failed its re-check (<M(0), Z> = {val:.3g}, "
        f"lambda_min(Y)/scale = {lam_Y:.2g})",
    )
