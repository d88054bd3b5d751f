r"""Linear time-invariant systems as the passivity checks see them.

A system is the tuple ``(A, B, C, D)`` with a time base ``dt``: ``0.0`` for
continuous time, a positive sample time for discrete time. Its KYP block
for a storage matrix ``P`` is, in continuous time,

.. math:: M(P) = \begin{bmatrix} A^\top P + PA & PB - C^\top \\
   B^\top P - C & -(D + D^\top) \end{bmatrix},

and in discrete time

.. math:: M(P) = \begin{bmatrix} A^\top P A - P & A^\top P B - C^\top \\
   B^\top P A - C & B^\top P B - (D + D^\top) \end{bmatrix}.

Checks run on a balanced copy of the system. Balancing multiplies states,
time and ports by powers of two only, so the copy is the same system in
exact arithmetic and a certificate moves between the two exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NotSupportedError, ShapeError

__all__: list[str] = []

logger = logging.getLogger(__name__)

EPS = float(np.finfo(float).eps)
_MAX_SWEEPS = 30


@dataclass(frozen=True)
class LTI:
    """A square LTI system ``(A, B, C, D)`` with time base ``dt`` (0 = continuous)."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray
    dt: float = 0.0

    @property
    def n_states(self) -> int:
        return self.A.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.B.shape[1]

    @property
    def discrete(self) -> bool:
        return self.dt > 0.0


def _describe(name: str, M: np.ndarray) -> str:
    return f"`{name}` has shape {M.shape}"


def _as_matrix(value: Any, name: str) -> np.ndarray:
    try:
        M = np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`{name}` must be a real matrix; got {type(value).__name__}"
        ) from err
    if M.ndim == 0:
        M = M.reshape(1, 1)
    if M.ndim != 2:
        raise ShapeError(f"`{name}` must be a 2-D matrix; found {M.ndim} dimensions")
    if not np.all(np.isfinite(M)):
        bad = np.argwhere(~np.isfinite(M))[0]
        raise ValueError(
            f"`{name}` must be finite; entry {tuple(int(i) for i in bad)} is "
            f"{M[tuple(bad)]!r}"
        )
    return M


def make_lti(A: Any, B: Any, C: Any, D: Any, dt: float | bool | None = 0.0) -> LTI:
    """Validate ``(A, B, C, D)`` and return an :class:`LTI`.

    Raises ShapeError for inconsistent or non-square systems.
    """
    A, B, C, D = (_as_matrix(M, k) for M, k in ((A, "A"), (B, "B"), (C, "C"), (D, "D")))
    n = A.shape[0]
    if A.shape != (n, n):
        raise ShapeError(f"`A` must be square; {_describe('A', A)}")
    if B.shape[0] != n:
        if n == 0 and B.size == 0:
            B = np.zeros((0, D.shape[1]))
        else:
            raise ShapeError(
                f"`B` must have {n} rows to match `A` {A.shape}; found {B.shape}"
            )
    if C.shape[1] != n:
        if n == 0 and C.size == 0:
            C = np.zeros((D.shape[0], 0))
        else:
            raise ShapeError(
                f"`C` must have {n} columns to match `A` {A.shape}; found {C.shape}"
            )
    p, m = C.shape[0], B.shape[1]
    if D.shape != (p, m):
        raise ShapeError(
            f"`D` must have shape ({p}, {m}) to match `C` {C.shape} and `B` "
            f"{B.shape}; found {D.shape}"
        )
    if p != m:
        raise ShapeError(
            f"passivity needs as many outputs as inputs (y^T u is the supplied "
            f"power); this system has {m} inputs (B {B.shape}) and {p} outputs "
            f"(C {C.shape}). Pair each input with its power-conjugate output."
        )
    if m == 0:
        raise ShapeError("the system has no inputs; passivity needs at least one port")
    return LTI(A, B, C, D, _time_base(dt))


def _time_base(dt: float | bool | None) -> float:
    """Map python-control's time bases to ours: 0 continuous, > 0 discrete."""
    if dt is None or dt is False:
        return 0.0
    if dt is True:
        return 1.0
    value = float(dt)
    if not value >= 0.0 or not math.isfinite(value):
        raise ValueError(f"`dt` must be 0 (continuous) or positive; found {dt!r}")
    return value


def as_lti(system: Any, dt: float | bool | None = None) -> LTI:
    """Convert a supported system description to :class:`LTI`."""
    import control

    if isinstance(system, control.TransferFunction):
        try:
            system = control.ss(system)
        except control.ControlMIMONotImplemented as err:
            raise NotSupportedError(
                "converting a MIMO TransferFunction to state space needs slycot; "
                "install slycot or pass a StateSpace (A, B, C, D) instead"
            ) from err
    if isinstance(system, control.StateSpace):
        sys_dt = system.dt
        if dt is not None and _time_base(dt) != _time_base(sys_dt):
            raise ValueError(
                f"`dt`={dt!r} disagrees with the StateSpace's own dt={sys_dt!r}; "
                "leave `dt` out for a StateSpace"
            )
        return make_lti(system.A, system.B, system.C, system.D, sys_dt)
    if isinstance(system, tuple | list) and len(system) == 4:
        return make_lti(*system, dt=0.0 if dt is None else dt)
    raise TypeError(
        "expected a control.StateSpace, a control.TransferFunction, a LinearPH, a "
        f"PortHamiltonian or a tuple (A, B, C, D); got {type(system).__name__}"
    )


def to_control(sys: LTI) -> Any:
    """Return ``sys`` as a ``control.StateSpace``."""
    import control

    return control.ss(sys.A, sys.B, sys.C, sys.D, sys.dt)


# --------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class Scaling:
    r"""An exact rescaling: powers of two on states, time and ports.

    The balanced system is :math:`\tilde A = T A T^{-1} / \alpha`,
    :math:`\tilde B = T B / (\alpha w)`, :math:`\tilde C = C T^{-1} / w`,
    :math:`\tilde D = D / w^2` with ``T = diag(state)``, ``alpha = time``
    (1 in discrete time) and ``w = port``. A storage matrix maps as
    :math:`P = T \tilde P T / \alpha`.
    """

    state: np.ndarray
    time: float = 1.0
    port: float = 1.0

    @classmethod
    def identity(cls, n: int) -> Scaling:
        return cls(np.ones(n))

    def apply(self, sys: LTI) -> LTI:
        t, a, w = self.state, self.time, self.port
        A = (t[:, None] * sys.A / t[None, :]) / a
        B = (t[:, None] * sys.B) / (a * w)
        C = (sys.C / t[None, :]) / w
        D = sys.D / (w * w)
        return LTI(A, B, C, D, sys.dt)

    def to_balanced(self, P: np.ndarray) -> np.ndarray:
        t = self.state
        return self.time * P / (t[:, None] * t[None, :])

    def from_balanced(self, P_bal: np.ndarray) -> np.ndarray:
        t = self.state
        return P_bal * (t[:, None] * t[None, :]) / self.time

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state.tolist(), "time": self.time, "port": self.port}

    @classmethod
    def from_dict(cls, data: dict[str, Any], n: int) -> Scaling:
        state = np.asarray(data["state"], dtype=float).reshape(-1)
        time, port = float(data["time"]), float(data["port"])
        if state.shape != (n,):
            raise ShapeError(
                f"the scaling has {state.size} state entries; expected {n}"
            )
        values = np.concatenate([state, [time, port]])
        if not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError("every scaling factor must be positive and finite")
        return cls(state, time, port)


def _pow2(x: float) -> float:
    return float(2.0 ** round(math.log2(x)))


def balance(sys: LTI) -> tuple[LTI, Scaling]:
    """Balance ``sys`` by powers of two; return the copy and the scaling.

    States are scaled so that, for each state, the row of ``[A, B]`` and the
    column of ``[A; C]`` (off-diagonal parts) have equal norms (Osborne's
    iteration). In continuous time the time axis is scaled so that
    ``||A||`` is near 1. Finally one scalar on the states and one on the
    ports bring ``||B||`` and ``||C||`` near 1.
    """
    n = sys.n_states
    t = np.ones(n)
    if n == 0:
        return sys, Scaling(t)
    A0, B0, C0 = sys.A, sys.B, sys.C
    offdiag = A0 - np.diag(np.diag(A0))
    for _ in range(_MAX_SWEEPS):
        changed = False
        for i in range(n):
            Ai = t[i] * offdiag[i, :] / t
            Ai_col = t * offdiag[:, i] / t[i]
            r = math.hypot(np.linalg.norm(Ai), t[i] * np.linalg.norm(B0[i]))
            c = math.hypot(np.linalg.norm(Ai_col), np.linalg.norm(C0[:, i]) / t[i])
            if r == 0.0 or c == 0.0:
                continue
            f = _pow2(math.sqrt(c / r))
            if f != 1.0 and 2.0**-200 < t[i] * f < 2.0**200:
                t[i] *= f
                changed = True
        if not changed:
            break
    scaled = Scaling(t).apply(sys)
    time = 1.0
    if not sys.discrete:
        normA = float(np.linalg.norm(scaled.A, 2))
        if normA > 0.0:
            time = _pow2(normA)
    scaled = Scaling(t, time).apply(sys)
    nb, nc = float(np.linalg.norm(scaled.B, 2)), float(np.linalg.norm(scaled.C, 2))
    port = 1.0
    if nb > 0.0 and nc > 0.0:
        t = t * _pow2(math.sqrt(nc / nb))
        port = _pow2(math.sqrt(nb * nc))
    scaling = Scaling(t, time, port)
    return scaling.apply(sys), scaling


SCALING_COND_WARN = 1e6
"""Largest spread ``max(T) / min(T)`` of the state scaling left unreported."""


def report_scaling(scaling: Scaling, strict: bool) -> None:
    """Report a balancing transform ``T`` whose condition number is large.

    Balancing itself is exact (powers of two), but the storage maps back as
    ``P = T P_bal T / alpha``: its condition number in the system's own
    coordinates grows like ``cond(T)^2``, so anything done with ``P`` there
    (its inverse, a pH form, a re-check with eigenvalues) loses about
    ``2 log10 cond(T)`` digits. Warns with
    :class:`~phcontrol.errors.NumericsWarning`, or raises
    :class:`~phcontrol.errors.NumericsError` when ``strict``.
    """
    from .._numerics import report
    from ..errors import NumericsError

    t = scaling.state
    if t.size == 0:
        return
    cond = float(t.max() / t.min())
    if cond <= SCALING_COND_WARN:
        return
    text = (
        f"the state scaling that balances the system is ill-conditioned "
        f"(condition number {cond:.3g} > {SCALING_COND_WARN:g}): the storage P in "
        f"the system's own coordinates loses about {2 * math.log10(cond):.0f} "
        "digits. Rescale the states to comparable units "
        "(control.similarity_transform) and check again"
    )
    report(text, strict, NumericsError)


# ------------------------------------------------------------------ KYP block


def kyp_block(sys: LTI, P: np.ndarray) -> tuple[np.ndarray, float]:
    """Return the KYP block ``M(P)`` (symmetrised) and its scale.

    The scale is the sum of the spectral norms of the terms that make up
    ``M`` (each off-diagonal term counted twice), bounded by products of
    the norms of ``A``, ``B``, ``C``, ``D`` and ``P``.
    """
    A, B, C, D = sys.A, sys.B, sys.C, sys.D
    if sys.n_states == 0:
        return -(D + D.T), 2.0 * _norm2(D)
    nA, nB, nC, nD = (_norm2(M) for M in (A, B, C, D))
    nP = _norm2(P)
    if sys.discrete:
        AtP = A.T @ P
        M11 = AtP @ A - P
        M12 = AtP @ B - C.T
        M22 = B.T @ P @ B - (D + D.T)
        scale = nA * nA * nP + nP + 2.0 * (nA * nP * nB + nC) + nB * nB * nP + 2.0 * nD
    else:
        PA = P @ A
        M11 = PA + PA.T
        M12 = P @ B - C.T
        M22 = -(D + D.T)
        scale = 2.0 * nA * nP + 2.0 * (nP * nB + nC) + 2.0 * nD
    M = np.block([[M11, M12], [M12.T, M22]])
    return 0.5 * (M + M.T), scale


def _norm2(M: np.ndarray) -> float:
    if M.size == 0:
        return 0.0
    return float(np.linalg.norm(M, 2))


@dataclass(frozen=True)
class Recheck:
    """Independent numpy re-check of a certificate (balanced coordinates)."""

    margin_P: float
    margin_lmi: float
    ok: bool


def recheck(sys: LTI, P: np.ndarray, tol: float) -> Recheck:
    r"""Re-check ``P`` with numpy eigenvalues, independently of any solver.

    ``margin_P = lambda_min(P) / ||P||`` and
    ``margin_lmi = lambda_max(M(P)) / scale``; both must be within ``tol``
    (``margin_P >= -tol``, ``margin_lmi <= tol``).
    """
    P = 0.5 * (P + P.T)
    n = sys.n_states
    if n:
        nP = _norm2(P)
        lam_P = float(np.linalg.eigvalsh(P)[0])
        margin_P = lam_P / nP if nP > 0 else 0.0
    else:
        margin_P = 0.0
    M, scale = kyp_block(sys, P)
    lam_M = float(np.linalg.eigvalsh(M)[-1])
    margin_lmi = lam_M / scale if scale > 0 else lam_M
    ok = bool(np.isfinite(margin_P) and np.isfinite(margin_lmi))
    ok = ok and margin_P >= -tol and margin_lmi <= tol
    return Recheck(margin_P, margin_lmi, ok)


# ---------------------------------------------------------- frequency values


def boundary_point(sys: LTI, omega: float) -> complex:
    """Map a frequency to the stability boundary: ``j omega`` or ``e^{j omega dt}``."""
    if sys.discrete:
        return complex(np.exp(1j * omega * sys.dt))
    return 1j * omega


def phi_min(sys: LTI, s: complex) -> tuple[float, float]:
    r"""Return ``lambda_min(G(s) + G(s)^H)`` and a bound on its rounding error.

    The bound is ``16 (n + m) eps (kappa(sI - A) ||C|| ||X|| + ||D||)`` with
    ``X = (sI - A)^{-1} B``; it is ``inf`` where ``sI - A`` is singular.
    """
    n, m = sys.n_states, sys.n_inputs
    if n:
        K = s * np.eye(n) - sys.A
        try:
            X = np.linalg.solve(K, sys.B.astype(complex))
        except np.linalg.LinAlgError:
            return math.nan, math.inf
        kappa = float(np.linalg.cond(K))
        G = sys.C @ X + sys.D
        size = kappa * _norm2(sys.C) * _norm2(X)
    else:
        G = sys.D.astype(complex)
        size = 0.0
    Phi = G + G.conj().T
    lam = float(np.linalg.eigvalsh(Phi)[0])
    bound = 16.0 * (n + m) * EPS * (size + _norm2(sys.D) + _norm2(Phi))
    if not math.isfinite(lam):
        return math.nan, math.inf
    return lam, bound


def phi_min_many(sys: LTI, points: np.ndarray) -> np.ndarray:
    """``lambda_min(G + G^H)`` at many points (fast, through the eigenvectors of A).

    For search only: a point that matters is re-evaluated by :func:`phi_min`.
    Falls back to one solve per point when ``A`` is not diagonalisable.
    """
    n = sys.n_states
    points = np.asarray(points, dtype=complex)
    out = np.empty(points.shape[0])
    if n == 0:
        lam = float(np.linalg.eigvalsh(sys.D + sys.D.T)[0])
        out[:] = lam
        return out
    lam_A, V = np.linalg.eig(sys.A)
    use_modal = np.linalg.cond(V) < 1e8
    if use_modal:
        CV = sys.C @ V
        WB = np.linalg.solve(V, sys.B.astype(complex))
    for k, s in enumerate(points):
        if use_modal:
            den = s - lam_A
            if np.any(np.abs(den) < 1e-14 * (1.0 + abs(s))):
                out[k] = math.nan
                continue
            G = (CV / den[None, :]) @ WB + sys.D
        else:
            try:
                G = sys.C @ np.linalg.solve(s * np.eye(n) - sys.A, sys.B) + sys.D
            except np.linalg.LinAlgError:
                out[k] = math.nan
                continue
        Phi = G + G.conj().T
        out[k] = np.linalg.eigvalsh(Phi)[0]
    return out


# ------------------------------------------------------------ Cayley transform


def cayley(sys: LTI) -> LTI | None:
    r"""Map a discrete-time system to continuous time, keeping every ``P``.

    With :math:`E = (A + I)^{-1}` the image is :math:`A_c = E(A - I)`,
    :math:`B_c = \sqrt2 E B`, :math:`C_c = \sqrt2 C E`,
    :math:`D_c = D - C E B`. Its KYP block is congruent to the discrete one,
    :math:`M_c(P) = T^\top M_d(P) T` with the invertible
    :math:`T = [[\sqrt2 E, -EB], [0, I]]`, so a storage ``P`` certifies one
    exactly when it certifies the other. The unit circle
    :math:`e^{j\theta}` maps to :math:`j \tan(\theta / 2)`. Returns None
    when ``A`` has an eigenvalue at (or numerically near) ``-1``.
    """
    n = sys.n_states
    K = sys.A + np.eye(n)
    if n and np.linalg.cond(K) > 1e10:
        return None
    E = np.linalg.inv(K) if n else np.zeros((0, 0))
    r2 = math.sqrt(2.0)
    return LTI(
        E @ (sys.A - np.eye(n)),
        r2 * (E @ sys.B),
        r2 * (sys.C @ E),
        sys.D - sys.C @ E @ sys.B,
        0.0,
    )
