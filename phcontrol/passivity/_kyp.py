r"""Storage certificates: the positive-real LMI, its Riccati shortcut and refutations.

Everything here works on a continuous-time system ``(A, B, C, D)``
(discrete-time systems arrive through the Cayley transform of
:func:`~phcontrol.passivity._lti.cayley`, which keeps ``P``). A storage
``P = P^T \succeq 0`` certifies passivity when

.. math:: M(P) = \begin{bmatrix} A^\top P + PA & PB - C^\top \\
   B^\top P - C & -(D + D^\top) \end{bmatrix} \preceq 0 .

Where ``W = D + D^T`` is singular its null space ``U_0`` forces
``P B U_0 = C^T U_0``. That equality is eliminated (:func:`reduce_kyp`):
``P = P0 + N X N^T`` turns the LMI into a smaller KYP inequality in ``X``,
solved by a Riccati equation where its fixed block allows and by an SDP
otherwise. A refutation is a matrix ``Z \succeq 0`` with
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
from ._lti import EPS, LTI, _norm2, kyp_block

__all__: list[str] = []

logger = logging.getLogger(__name__)

# Solver choice, measured on the SDP of solve_lmi (equality eliminated) for
# random passive systems with m = 2 on 2 shared cores (docs/benchmarks.md):
# n = 20, Clarabel 0.5 s (D = I) and 1.4 s (D = 0), SCS 0.7 s and 11 s;
# n = 50, Clarabel 45 s (D = I), SCS stopped "optimal_inaccurate" at its
# 150 s limit. The claim that SCS is much faster above ~20 states did not
# hold, and its looser accuracy fails the re-check more often, so Clarabel is
# the default at every size; SCS is used only on request or when Clarabel
# fails. Random systems rarely reach the SDP at all: the Riccati shortcut
# takes them.
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


@dataclass(frozen=True)
class ReducedKYP:
    r"""The KYP LMI with the equality ``P B U_0 = C^\top U_0`` eliminated.

    Every symmetric ``P`` with ``P B U_0 = C^T U_0`` is ``P0 + N X N^T`` for
    a symmetric ``X`` of size ``n - r`` (``r`` the rank of ``B U_0``; ``N``
    an orthonormal basis of the null space of ``(B U_0)^T``), and in the
    basis ``(N, Q_b, U_1)`` of states and ports the KYP block is

    .. math:: \begin{bmatrix} A_r^\top X + X A_r + Q_c & X B_r + S \\
       B_r^\top X + S^\top & -W_r \end{bmatrix} \preceq 0 ,

    the directions ``U_0`` dropping out (their rows vanish). ``W_r`` does not
    depend on ``X``: it is fixed by the equality alone. ``basis`` holds the
    columns ``(N, Q_b, U_1)`` as vectors of (state, port) space.
    """

    P0: np.ndarray
    N: np.ndarray
    basis: np.ndarray
    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    S: np.ndarray
    W: np.ndarray
    scale: float

    def storage(self, X: np.ndarray) -> np.ndarray:
        """Return ``P0 + N X N^T`` (symmetric)."""
        P = self.P0 + self.N @ (0.5 * (X + X.T)) @ self.N.T
        return 0.5 * (P + P.T)


def reduce_kyp(sys: LTI) -> ReducedKYP | None:
    """Eliminate ``P B U0 = C^T U0`` from the LMI of ``sys`` (continuous time).

    Returns None when ``B U0`` is rank deficient: then the equality does not
    fix ``P`` on a subspace and the full LMI is solved instead.
    """
    n, m = sys.n_states, sys.n_inputs
    A, B, C = sys.A, sys.B, sys.C
    W = sys.D + sys.D.T
    _, U1, U0 = null_split(W, _norm2(C) * _norm2(B))
    r = U0.shape[1]
    if r:
        B0 = B @ U0
        if r > n:
            return None
        basis, R = np.linalg.qr(B0, mode="complete")
        Rb = R[:r]
        diag = np.abs(np.diag(Rb))
        if diag.min() <= 1e3 * EPS * r * max(_norm2(B0), 1e-300):
            return None
        Qb, N = basis[:, :r], basis[:, r:]
        # P Qb = C^T U0 Rb^{-1} for every feasible P.
        F = np.linalg.solve(Rb.T, (C.T @ U0).T).T
        P11 = Qb.T @ F
        P11 = 0.5 * (P11 + P11.T)
        P21 = N.T @ F
        cross = N @ P21 @ Qb.T
        P0 = Qb @ P11 @ Qb.T + cross + cross.T
        P0 = 0.5 * (P0 + P0.T)
    else:
        Qb, N = np.zeros((n, 0)), np.eye(n)
        P0 = np.zeros((n, n))
    M0, scale = kyp_block(sys, P0)
    free = np.vstack([N, np.zeros((m, n - r))])
    fixed = np.block([[Qb, np.zeros((n, U1.shape[1]))], [np.zeros((m, r)), U1]])
    Mf = M0 @ fixed
    Wr = -(fixed.T @ Mf)
    return ReducedKYP(
        P0=P0,
        N=N,
        basis=np.hstack([free, fixed]),
        A=N.T @ A @ N,
        B=N.T @ np.hstack([A @ Qb, B @ U1]),
        Q=free.T @ M0 @ free,
        S=free.T @ Mf,
        W=0.5 * (Wr + Wr.T),
        scale=scale + 2.0 * _norm2(A) * _norm2(P0),
    )


def fixed_block_witness(sys: LTI) -> str | None:
    """Refute passivity when the part of ``M(P)`` fixed by the equality is not <= 0.

    With ``D = 0`` that part is ``C A B + (C A B)^T`` (in the coordinates of
    ``B``): every storage has ``B^T (A^T P + P A) B = C A B + (C A B)^T``.
    """
    red = reduce_kyp(sys)
    if red is None or red.W.shape[0] == 0:
        return None
    lam = float(np.linalg.eigvalsh(red.W)[0])
    if lam < -1e-9 * max(red.scale, 1e-300):
        return (
            "the part of the KYP block that P B U0 = C^T U0 fixes (with D = 0: "
            f"C A B + (C A B)^T up to a congruence) has the positive eigenvalue "
            f"{-lam:.3g}; no storage makes the block negative semidefinite"
        )
    return None


def riccati_candidates(sys: LTI) -> tuple[list[np.ndarray], str | None]:
    r"""Storages from the Riccati equation of the reduced LMI.

    With the equality eliminated (:func:`reduce_kyp`) and ``W_r`` positive
    definite, the extreme solutions of

    .. math:: A_r^\top X + X A_r + Q_c + (X B_r + S) W_r^{-1}
       (B_r^\top X + S^\top) = 0

    (stabilising and anti-stabilising) bound every solution of the LMI; their
    mean is an interior point when they differ. For ``D + D^T`` invertible
    this is the positive-real Riccati equation itself; when the equality
    fixes ``P`` entirely (``X`` of size 0) the one candidate is ``P0``.
    Returns the storages ``P0 + N X N^T`` that came out finite, most
    interior first, and the reason when the shortcut does not apply.
    """
    import scipy.linalg

    red = reduce_kyp(sys)
    if red is None:
        return [], "B U0 is rank deficient, so P B U0 = C^T U0 cannot be eliminated"
    k = red.N.shape[1]
    if k == 0:
        return [red.P0], None
    lam_W = np.linalg.eigvalsh(red.W) if red.W.size else np.array([math.inf])
    if lam_W[0] <= 1e-8 * max(red.scale, 1e-300):
        return [], (
            "the part -W_r of the KYP block that P B U0 = C^T U0 fixes is not "
            "negative definite (with D = 0 it is C A B + (C A B)^T up to a "
            "congruence)"
        )
    found: list[np.ndarray] = []
    for sign in (1.0, -1.0):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Y = scipy.linalg.solve_continuous_are(
                    sign * red.A, red.B, -red.Q, red.W, s=-sign * red.S
                )
        except (np.linalg.LinAlgError, ValueError):
            continue
        X = -sign * Y
        if np.all(np.isfinite(X)):
            found.append(0.5 * (X + X.T))
    if len(found) == 2:
        found.insert(0, 0.5 * (found[0] + found[1]))
    return [red.storage(X) for X in found], None


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
    return _solve_named(problem, solver, max_seconds)[0]


def _solve_named(
    problem,  # noqa: ANN001
    solver: str,
    max_seconds: float | None,
) -> tuple[str, str]:
    """Like :func:`_solve`; also return the name of the solver that answered."""
    try:
        return _solve_once(problem, solver, max_seconds), solver
    except SolverError as first:
        other = "SCS" if solver == "CLARABEL" else "CLARABEL"
        logger.info("%s; retrying with %s", first, other)
        return _solve_once(problem, other, max_seconds), other


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
    above 1 is not expected). Where :func:`reduce_kyp` applies, the equality
    is eliminated: the variable is ``X`` in ``P = P0 + N X N^T`` and the
    problem has no equality constraint.
    """
    import cvxpy as cp

    n = sys.n_states
    name = pick_solver(n, solver)
    red = reduce_kyp(sys)
    t = cp.Variable()
    if red is not None and red.N.shape[1]:
        k = red.N.shape[1]
        X = cp.Variable((k, k), symmetric=True)
        M11 = red.A.T @ X + X @ red.A + red.Q
        M12 = X @ red.B + red.S
        blocks = cp.bmat([[M11, M12], [M12.T, -red.W]])
        P = red.P0 + red.N @ X @ red.N.T
        trace_P = float(np.trace(red.P0)) + cp.trace(X)
        equalities = []
    else:
        A, B, C = sys.A, sys.B, sys.C
        w1, U1, U0 = null_split(sys.D + sys.D.T, _norm2(C) * _norm2(B))
        X = P = cp.Variable((n, n), symmetric=True)
        blocks = A.T @ P + P @ A
        if U1.shape[1]:
            M12 = (P @ B - C.T) @ U1
            blocks = cp.bmat([[blocks, M12], [M12.T, -np.diag(w1)]])
        trace_P = cp.trace(P)
        equalities = [P @ (B @ U0) == C.T @ U0] if U0.shape[1] else []
    size = blocks.shape[0]
    constraints = [
        0.5 * (blocks + blocks.T) << t * np.eye(size),
        0.5 * (P + P.T) >> 0,
        t >= -1.0,
        trace_P <= 1e4 * max(n, 1),
        *equalities,
    ]
    problem = cp.Problem(cp.Minimize(t), constraints)
    start = time.perf_counter()
    try:
        status, name = _solve_named(problem, name, max_seconds)
    except SolverError as err:
        return LMISolution(None, f"solver_error: {err}", math.nan, name, 0.0)
    seconds = time.perf_counter() - start
    if X.value is None or status not in ("optimal", "optimal_inaccurate"):
        return LMISolution(None, status, math.nan, name, seconds)
    value = np.asarray(X.value)
    P_value = red.storage(value) if X is not P and red is not None else value
    return LMISolution(polish(sys, P_value), status, float(t.value), name, seconds)


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
