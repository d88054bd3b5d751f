r"""``check_passivity``: a verdict with a storage that anyone can re-check.

The verdict rule (see the design notes):

* ``passive`` only when a storage ``P`` passes :func:`~._lti.recheck` (numpy
  eigenvalues of ``P`` and of the KYP block, relative to the block's scale)
  and, if it came from a convex solver, the solver said ``optimal``;
* ``not_passive`` only with a witness: ``D + D^T`` (at infinite frequency,
  or the Nyquist frequency in discrete time) with a negative eigenvalue, an
  unstable mode seen by the output, a violated first Markov parameter, a
  positive eigenvalue in the part of the KYP block that ``P B U0 = C^T U0``
  fixes (``C A B + (C A B)^T`` for ``D = 0``), a frequency where
  ``lambda_min(G + G^H)`` is below zero by more than its rounding bound, or
  a re-checked Farkas certificate;
* ``undecided`` otherwise.

Margins are relative and computed on the balanced system:
``margin_P = lambda_min(P) / ||P||`` and ``margin_lmi = lambda_max(M) / scale``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._numerics import caller_stacklevel
from .._validation import check_keywords
from ..errors import NotSupportedError, NumericsWarning, SolverError
from . import _hamiltonian_test as ht
from . import _kyp
from ._lti import (
    LTI,
    _norm2,
    as_lti,
    balance,
    cayley,
    phi_min,
    phi_min_many,
    recheck,
    report_scaling,
)

__all__ = ["PassivityResult", "check_passivity"]

Verdict = Literal["passive", "not_passive", "undecided"]
Method = Literal["auto", "lmi", "riccati", "hamiltonian"]

RECHECK_TOL = 1e-7
"""Relative tolerance of the numpy re-check: ``margin_P >= -tol``,
``margin_lmi <= tol``. Interior-point solvers stop near 1e-8 relative; a
storage on the boundary (lossless systems) sits at round-off from zero."""


@dataclass(frozen=True)
class PassivityResult:
    """Verdict of :func:`check_passivity`.

    Attributes
    ----------
    verdict : {"passive", "not_passive", "undecided"}
        ``passive`` only with a re-checked storage ``P``.
    P : ndarray, shape (n_states, n_states) or None
        Storage matrix in the system's own coordinates: ``V(x) = x^T P x / 2``.
    margin_P : float
        ``lambda_min(P) / ||P||`` on the balanced system (NaN without ``P``).
    margin_lmi : float
        ``lambda_max(M(P)) / scale`` on the balanced system (NaN without ``P``).
    method : str
        What decided: ``structure``, ``riccati``, ``lmi``, ``hamiltonian``,
        ``witness`` or ``farkas``.
    solver_status : str or None
        Status of the convex solver, when one ran.
    message : str
        Why this verdict.
    bands : tuple of (float, float)
        Frequency bands (rad per time unit) where ``G + G^H`` has a negative
        eigenvalue, when the Hamiltonian test located them.
    witness_frequency : float or None
        A frequency where passivity fails (``inf``: at infinite frequency).
    hamiltonian_verdict : str or None
        The Hamiltonian test's own verdict where it applied (``None`` where it
        does not: ``D + D^T`` singular or ``A`` not stable).
    dt : float
        Time base: 0 continuous, else the sample time.

    Examples
    --------
    >>> import control
    >>> import phcontrol as phc
    >>> res = phc.check_passivity(control.tf([1], [1, 1]))  # 1/(s + 1)
    >>> res.verdict, res.passive, res.P.shape
    ('passive', True, (1, 1))
    """

    verdict: Verdict
    P: np.ndarray | None
    margin_P: float
    margin_lmi: float
    method: str
    solver_status: str | None
    message: str
    bands: tuple[tuple[float, float], ...] = ()
    witness_frequency: float | None = None
    hamiltonian_verdict: str | None = None
    dt: float = 0.0
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def passive(self) -> bool:
        """True exactly when ``verdict == "passive"``."""
        return self.verdict == "passive"

    @property
    def margin(self) -> float:
        """``min(margin_P, -margin_lmi)``: at least ``-tol`` when passive."""
        return min(self.margin_P, -self.margin_lmi)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (``P`` as nested lists)."""
        return {
            "verdict": self.verdict,
            "method": self.method,
            "solver_status": self.solver_status,
            "message": self.message,
            "margin_P": _finite(self.margin_P),
            "margin_lmi": _finite(self.margin_lmi),
            "bands": [[lo, _finite(hi)] for lo, hi in self.bands],
            "witness_frequency": _finite(self.witness_frequency),
            "hamiltonian_verdict": self.hamiltonian_verdict,
            "dt": self.dt,
            "P": None if self.P is None else self.P.tolist(),
        }


def _finite(value: float | None) -> float | str | None:
    if value is None:
        return None
    return value if math.isfinite(value) else str(value)


@check_keywords
def check_passivity(
    system: Any,
    *,
    dt: float | None = None,
    method: Method = "auto",
    solver: str | None = None,
    tol: float = RECHECK_TOL,
    max_seconds: float | None = None,
    strict: bool = False,
) -> PassivityResult:
    r"""Decide whether a system is passive, with a storage that can be re-checked.

    Parameters
    ----------
    system : control.StateSpace, control.TransferFunction, tuple, or model
        A square LTI system (continuous or discrete), a tuple
        ``(A, B, C, D)``, a :class:`~phcontrol.linear.LinearPortHamiltonian`,
        or a :class:`~phcontrol.PortHamiltonian` (linear or learned).
    dt : float, optional
        Time base for a tuple: 0 continuous (default), else the sample time.
    method : {"auto", "lmi", "riccati", "hamiltonian"}, default "auto"
        ``auto`` tries the witnesses, the Hamiltonian test, the Riccati
        shortcut and a frequency sweep before the LMI; the others run one
        method alone. The Riccati shortcut also covers ``D + D^T`` singular
        (``D = 0``): there ``P B = C^T`` on the null space is eliminated
        first.
    solver : str, optional
        CVXPY solver for the LMI (default Clarabel; SCS on request).
    tol : float, default 1e-7
        Relative tolerance of the independent re-check.
    max_seconds : float, optional
        Time limit handed to the convex solver.
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        the convex solver ends with a status that is not clean, and
        :class:`~phcontrol.errors.NumericsError` when the balancing
        transform is ill-conditioned.

    Returns
    -------
    PassivityResult

    Raises
    ------
    ShapeError
        If the system is not square (as many outputs as inputs).
    NotSupportedError
        If ``method="hamiltonian"`` and the test does not apply, or for a
        model without energy (a :class:`~phcontrol.NeuralODE`, or a fit of
        one).
    SolverError
        With ``strict=True``, when the solver's status is not clean.
    NumericsError
        With ``strict=True``, when the state scaling that balances the
        system spans more than a factor 1e6.

    Warns
    -----
    NumericsWarning
        When the convex solver ended with a status other than ``optimal``,
        ``infeasible`` or ``unbounded`` (an ``*_inaccurate`` status, a time
        or iteration limit, a solver failure). The verdict is still only
        ``passive`` with a re-checked ``P``; the warning says that the
        solver, not the system, may be why it is ``undecided``. Also when
        the state scaling that balances the system spans more than a factor
        1e6: the storage ``P`` in the system's own coordinates is then
        ill-conditioned (its condition number grows like the square).

    Notes
    -----
    Passivity is state-space passivity: a storage :math:`\tfrac12 x^\top P x`,
    :math:`P \succeq 0`, with :math:`M(P) \preceq 0` (continuous time)

    .. math:: M(P) = \begin{bmatrix} A^\top P + PA & PB - C^\top \\
       B^\top P - C & -(D + D^\top) \end{bmatrix}.

    The system is first balanced by powers of two, so badly scaled systems
    are judged on a well-scaled copy and the certificate maps back exactly.

    Examples
    --------
    >>> import control
    >>> res = check_passivity(control.tf([1], [1, 1]))     # 1/(s + 1)
    >>> res.verdict, res.method
    ('passive', 'riccati')
    >>> check_passivity(control.tf([1, -1], [1, 2])).verdict  # (s - 1)/(s + 2)
    'not_passive'
    """
    if method not in ("auto", "lmi", "riccati", "hamiltonian"):
        raise ValueError(
            f"`method` must be 'auto', 'lmi', 'riccati' or 'hamiltonian'; "
            f"found {method!r}"
        )
    from ..fitted import IdentifiedModel
    from ..linear import LinearPortHamiltonian
    from ..models import AbstractModel, PortHamiltonian

    if isinstance(system, IdentifiedModel):  # a fit's model file: check its pH part
        system = system.system
    if isinstance(system, AbstractModel) and not isinstance(system, PortHamiltonian):
        raise NotSupportedError(
            f"passivity of a {type(system).__name__} cannot be decided: it has no "
            "energy to serve as storage and no port structure, so nothing makes "
            "it passive. Fit a port-Hamiltonian model (identify(..., "
            "model='linear')) or check a linearisation as (A, B, C, D)"
        )
    if isinstance(system, LinearPortHamiltonian):
        result = _check_structure(system)
    elif isinstance(system, PortHamiltonian):
        result = _check_model(system, tol)
    else:
        lti = as_lti(system, dt)
        report_scaling(balance(lti)[1], strict)
        result = check_lti(lti, method, solver, tol, max_seconds)
    _report_status(result, strict, solver)
    return result


CLEAN_STATUSES = frozenset({"optimal", "infeasible", "unbounded"})
"""Solver statuses that leave nothing to report."""


def _report_status(
    result: PassivityResult, strict: bool, solver: str | None = None
) -> None:
    """Warn (or raise with ``strict``) when the solver's status is not clean."""
    status = result.solver_status
    if status is None or status in CLEAN_STATUSES:
        return
    others = [s for s in ("SCS", "CLARABEL") if s != (solver or "").upper()]
    text = (
        f"the convex solver ended with status {status!r}, not 'optimal', "
        f"'infeasible' or 'unbounded'; the verdict is {result.verdict!r} "
        f"({result.method}). Try "
        + " or ".join(f"solver={s!r}" for s in others)
        + ", or a longer `max_seconds`"
    )
    if strict:
        raise SolverError(text)
    warnings.warn(text, NumericsWarning, stacklevel=caller_stacklevel())


def check_lti(
    sys: LTI,
    method: str = "auto",
    solver: str | None = None,
    tol: float = RECHECK_TOL,
    max_seconds: float | None = None,
) -> PassivityResult:
    """Run the checks on an :class:`LTI` (see :func:`check_passivity`)."""
    if sys.n_states == 0:
        # A static gain y = D u is passive exactly when D + D^T >= 0.
        lam = float(np.linalg.eigvalsh(sys.D + sys.D.T)[0])
        if lam >= -tol * max(_norm2(sys.D), 1e-300):
            return _certify_with(sys, np.zeros((0, 0)), "witness", "static gain")
        return _not_passive(
            sys,
            f"D + D^T has the eigenvalue {lam:.3g} < 0",
            "witness",
            None,
            math.inf,
            None,
        )
    bal, scaling = balance(sys)
    work = cayley(bal) if bal.discrete else bal
    if work is None:
        return _undecided(
            sys,
            "discrete A has an eigenvalue at z = -1; the Cayley transform "
            "does not exist. Shift the sample time or check the continuous model",
            "witness",
            None,
        )

    def to_freq(w: float) -> float:
        if sys.discrete:
            return 2.0 * math.atan(w) / sys.dt
        return w * scaling.time

    def passive(P_bal: np.ndarray, how: str, status: str | None, why: str):
        rc = recheck(bal, P_bal, tol)
        if not rc.ok:
            return None, rc
        P = scaling.from_balanced(P_bal)
        return (
            PassivityResult(
                "passive",
                0.5 * (P + P.T),
                rc.margin_P,
                rc.margin_lmi,
                how,
                status,
                f"{why}; re-checked: lambda_min(P)/||P|| = {rc.margin_P:.2g}, "
                f"lambda_max(M)/scale = {rc.margin_lmi + 0.0:.2g} (tol {tol:g})",
                dt=sys.dt,
            ),
            rc,
        )

    ham: ht.HamiltonianVerdict | None = None
    if ht.applies(work) is None:
        ham = ht.hamiltonian_test(work)
    elif method == "hamiltonian":
        ham = ht.hamiltonian_test(work)  # raises NotSupportedError with the reason
    ham_verdict = None if ham is None else ham.verdict

    def from_hamiltonian(ham: ht.HamiltonianVerdict) -> PassivityResult:
        """The Hamiltonian test's own verdict, in the caller's frequencies."""
        return PassivityResult(
            ham.verdict,  # type: ignore[arg-type]
            None,
            math.nan,
            math.nan,
            "hamiltonian",
            None,
            ham.message,
            bands=tuple((to_freq(lo), to_freq(hi)) for lo, hi in ham.bands),
            witness_frequency=to_freq(ham.worst_frequency or 0.0)
            if ham.verdict == "not_passive"
            else None,
            hamiltonian_verdict=ham.verdict,
            dt=sys.dt,
        )

    if method == "hamiltonian":
        assert ham is not None
        return from_hamiltonian(ham)

    if method == "auto":
        found = _witness(work, sys)
        if found is not None:
            text, freq = found
            return _not_passive(sys, text, "witness", None, freq, ham_verdict)
        if ham is not None and ham.verdict == "not_passive":
            return from_hamiltonian(ham)

    if method in ("auto", "riccati"):
        candidates, reason = _kyp.riccati_candidates(work)
        if reason is not None and method == "riccati":
            raise NotSupportedError(
                f"the Riccati shortcut does not apply: {reason}; use method='lmi'"
            )
        best: PassivityResult | None = None
        for P_bal in candidates:  # keep the one with the widest re-checked margin
            res, _ = passive(P_bal, "riccati", None, "Riccati storage")
            if res is not None and (best is None or res.margin > best.margin):
                best = res
        if best is not None:
            return _with_ham(best, ham_verdict)
        if method == "riccati":
            return _undecided(
                sys, "no Riccati storage passed the re-check", "riccati", None
            )
    if method == "auto":
        # A frequency where G + G^H is negative settles it before any SDP.
        found = _sweep_witness(work, sys, scaling.time)
        if found is not None:
            return _not_passive(sys, found[0], "witness", None, found[1], ham_verdict)

    sol = _kyp.solve_lmi(work, solver=solver, max_seconds=max_seconds)
    lmi_note = f"LMI ({sol.solver}, {sol.status}, {sol.seconds:.2g} s)"
    if sol.P is not None and sol.status == "optimal":
        res, rc = passive(sol.P, "lmi", sol.status, f"storage from the {lmi_note}")
        if res is not None:
            return _with_ham(res, ham_verdict)
        lmi_note += (
            f"; its P failed the re-check (margin_P {rc.margin_P:.2g}, "
            f"margin_lmi {rc.margin_lmi + 0.0:.2g})"
        )
    ref = _kyp.refute_lmi(work, solver=solver, max_seconds=max_seconds, tol=tol)
    if ref.Z is not None:
        return _not_passive(sys, ref.message, "farkas", ref.status, None, ham_verdict)
    return _undecided(
        sys,
        f"neither a storage nor a refutation passed the re-check: {lmi_note}; "
        f"{ref.message}",
        "lmi",
        sol.status,
        ham_verdict,
    )


def _with_ham(res: PassivityResult, ham_verdict: str | None) -> PassivityResult:
    from dataclasses import replace

    return replace(res, hamiltonian_verdict=ham_verdict)


def _witness(work: LTI, sys: LTI) -> tuple[str, float | None] | None:
    """Cheap refutations on the continuous-time image ``work``."""
    W = work.D + work.D.T
    lam = float(np.linalg.eigvalsh(W)[0])
    scale = _norm2(W) + _norm2(work.C) * _norm2(work.B) + 1e-300
    if lam < -1e-9 * scale:
        where = "the Nyquist frequency" if sys.discrete else "infinite frequency"
        freq = math.pi / sys.dt if sys.discrete else math.inf
        return (
            f"G + G^H has the eigenvalue {lam:.3g} < 0 at {where} "
            "(the feedthrough term)",
            freq,
        )
    text = (
        _kyp.modal_witness(work)
        or _kyp.first_markov_witness(work)
        or _kyp.fixed_block_witness(work)
    )
    if text is not None:
        return text, None
    return None


def _sweep_witness(work: LTI, sys: LTI, time_scale: float) -> tuple[str, float] | None:
    """A frequency where ``lambda_min(G + G^H)`` is negative beyond round-off."""
    grid = ht.default_grid(work, 300)
    values = phi_min_many(work, 1j * grid)
    if not np.any(np.isfinite(values)):
        return None
    k = int(np.nanargmin(values))
    lam, bound = phi_min(work, 1j * grid[k])
    scale = _norm2(work.D) + _norm2(work.C) * _norm2(work.B) + 1e-300
    if math.isfinite(lam) and lam < -max(bound, 1e-9 * scale):
        w = grid[k]
        freq = 2.0 * math.atan(w) / sys.dt if sys.discrete else w * time_scale
        return f"lambda_min(G + G^H) = {lam:.3g} < 0 at w = {freq:.4g}", freq
    return None


def _not_passive(
    sys: LTI,
    message: str,
    method: str,
    status: str | None,
    freq: float | None,
    ham_verdict: str | None,
) -> PassivityResult:
    return PassivityResult(
        "not_passive",
        None,
        math.nan,
        math.nan,
        method,
        status,
        message,
        witness_frequency=freq,
        hamiltonian_verdict=ham_verdict,
        dt=sys.dt,
    )


def _undecided(
    sys: LTI,
    message: str,
    method: str,
    status: str | None,
    ham_verdict: str | None = None,
) -> PassivityResult:
    return PassivityResult(
        "undecided",
        None,
        math.nan,
        math.nan,
        method,
        status,
        message,
        hamiltonian_verdict=ham_verdict,
        dt=sys.dt,
    )


def _check_structure(lph: Any) -> PassivityResult:
    """A linear pH model is passive with storage ``Q``; re-check it anyway."""
    sys = lph.lti()
    return _certify_with(sys, lph.Q, "structure", "linear pH model: P = Q")


def _certify_with(sys: LTI, P: np.ndarray, how: str, why: str) -> PassivityResult:
    bal, scaling = balance(sys)
    rc = recheck(bal, scaling.to_balanced(P), RECHECK_TOL)
    verdict: Verdict = "passive" if rc.ok else "undecided"
    note = "re-checked" if rc.ok else "FAILED the re-check"
    return PassivityResult(
        verdict,
        P,
        rc.margin_P,
        rc.margin_lmi,
        how,
        None,
        f"{why}; {note}: lambda_min(P)/||P|| = {rc.margin_P:.2g}, "
        f"lambda_max(M)/scale = {rc.margin_lmi + 0.0:.2g}",
        dt=sys.dt,
    )


def _check_model(model: Any, tol: float) -> PassivityResult:
    """PortHamiltonian: ``P = Q`` when linear, else structure plus linearisation."""
    from ..linear import is_linear_model, minimise_energy, to_state_space
    from ..structure import (
        CanonicalJ,
        CholeskyDissipation,
        PolynomialDissipation,
        SkewSymmetric,
    )

    if model.n_inputs == 0:
        raise NotSupportedError(
            "the model has no inputs (G is None), so passivity says nothing; "
            "give it an InputMatrix G"
        )
    if is_linear_model(model):
        lph = _linear_parts(model)
        return _certify_with(lph.lti(), lph.Q, "structure", "linear pH model: P = Q")
    x_eq = minimise_energy(model)
    A, B, C, D = (np.asarray(M) for M in _matrices(to_state_space(model, x_eq=x_eq)))
    hess = _hessian(model, x_eq)
    lin = _certify_with(
        LTI(A, B, C, D),
        hess,
        "structure",
        "on the linearisation at the minimiser of H, P is the Hessian of H there",
    )
    by_construction = (
        isinstance(model.J, SkewSymmetric | CanonicalJ)
        and (
            model.R is None
            or isinstance(model.R, CholeskyDissipation | PolynomialDissipation)
        )
        and math.isfinite(model.H.lower_bound())
    )
    if not by_construction:
        return _undecided(
            LTI(A, B, C, D),
            "the model's J, R or H is not of a kind that is passive by "
            "construction (SkewSymmetric/CanonicalJ, CholeskyDissipation or "
            "PolynomialDissipation, H with a finite lower_bound()); write a "
            "certificate with sampled checks",
            "structure",
            None,
        )
    from dataclasses import replace

    return replace(
        lin,
        verdict="passive",
        message=(
            "passive by construction with storage H - min H (J skew, R = L L^T, "
            f"H >= {model.H.lower_bound():.3g}); {lin.message}"
        ),
    )


def _matrices(ss: Any) -> tuple[Any, Any, Any, Any]:
    return ss.A, ss.B, ss.C, ss.D


def _hessian(model: Any, x_eq: np.ndarray) -> np.ndarray:
    import torch

    x = torch.as_tensor(x_eq, dtype=torch.float64)
    H = model.H

    def energy(z: torch.Tensor) -> torch.Tensor:
        return H(z.unsqueeze(0).to(_dtype(model))).sum().to(torch.float64)

    hess = torch.autograd.functional.hessian(energy, x)
    M = hess.detach().numpy()
    return 0.5 * (M + M.T)


def _dtype(model: Any) -> Any:
    import torch

    for p in model.parameters():
        return p.dtype
    return torch.get_default_dtype()


def _linear_parts(model: Any) -> Any:
    from ..linear import LinearPortHamiltonian

    return LinearPortHamiltonian.from_model(model)
