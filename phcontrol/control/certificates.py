r"""Closed-loop certificates: solved with CVXPY, re-checked with numpy, saved as JSON.

A certificate of a closed loop at its target ``x*`` collects four checks:

* **equilibrium**: :math:`f(x^*) = 0` for the loop's field ``f``;
* **R_d ⪰ 0**: the closed-loop dissipation at ``x*`` and at seeded states
  around it (sampled evidence, not a proof away from ``x*``);
* **Hessian of H_d ≻ 0 at x***: with :math:`\nabla H_d(x^*) = 0`, the
  target is a strict local minimiser of the closed-loop energy;
* **Lyapunov LMI with decay rate α** for the linearisation
  :math:`A = \partial f/\partial x(x^*)`: a ``P`` with

  .. math:: P \succeq I, \qquad A^\top P + P A + 2\alpha P \preceq -I

  (on ``A`` scaled to unit norm) is sought with CVXPY; the returned ``P``
  is then re-checked in numpy on the unscaled ``A``, and the eigenvalues
  of ``A`` are compared with ``-α`` independently. When the Hessian of
  ``H_d`` is definite, the LMI is solved and re-checked in the energy
  coordinates :math:`z = (\nabla^2 H_d)^{1/2} x`, where it stays well
  scaled for stiff loops; the congruence back to ``x`` keeps its signs.

The two matrix checks are decided twice: by a small CVXPY SDP, the
largest margin ``t`` with :math:`M_i - t I \succeq 0` (:func:`psd_margin`,
for ``R_d`` over ``x*`` and the sampled states numpy finds worst), and by
numpy's eigenvalues of every matrix. A check passes only when the solver
reports ``optimal``, its margin meets the rule and agrees with numpy's,
and numpy's eigenvalues meet the rule; a non-optimal solve or a
disagreement is ``undecided``; a negative eigenvalue is a ``fail``.

Each check passes, fails (with a witness) or is undecided; the verdict is
``certified`` only when every applicable check passes, ``not_certified``
when one fails, ``undecided`` otherwise. The two energy checks do not
apply to a loop without a pH form (a switching controller).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .._numerics import report, report_status
from ..errors import ModelFileError, ShapeError, SolverError
from ._base import plant_dtype
from .closed_loop import ClosedLoop

__all__ = [
    "Check",
    "ClosedLoopCertificate",
    "certify_closed_loop",
    "verify_closed_loop_certificate",
    "lyapunov_lmi",
    "psd_margin",
]

logger = logging.getLogger(__name__)

FORMAT = "phcontrol-closed-loop-certificate"
VERSION = 2
"""Version 2 adds the SDP margins of ``R_d_psd`` and ``hessian_pd``; version 1
files (eigenvalue checks only) are still read, their SDPs solved on load."""
READABLE_VERSIONS = (1, 2)

EQ_RTOL = 1e-8
"""Largest accepted ``|f(x*)|`` relative to ``1 + ||A|| (1 + |x*|)``."""
EIG_RTOL = 1e-9
"""Eigenvalues within this fraction of the matrix norm of zero are undecided."""
LMI_RTOL = 1e-7
"""The re-checked LMI must hold with this margin, relative to ``||A|| ||P||``."""
SDP_RTOL = 1e-7
"""An SDP margin must agree with numpy's smallest eigenvalue to this fraction
of the matrices' size, and meets ``>= 0`` from ``-SDP_RTOL`` up (``> 0``
from ``+SDP_RTOL``): the interior-point solve is accurate to about 1e-8."""
SDP_SAMPLES = 4
"""Sampled states (the numpy-worst) whose ``R_d`` joins ``R_d(x*)`` in the SDP."""

Status = Literal["pass", "fail", "undecided", "not_applicable"]


@dataclass(frozen=True)
class Check:
    """One check of a certificate.

    Attributes
    ----------
    name : str
        ``equilibrium``, ``R_d_psd``, ``hessian_pd`` or ``lyapunov_lmi``.
    status : {"pass", "fail", "undecided", "not_applicable"}
        Outcome of the independent re-check.
    margin : float or None
        The re-checked number (smallest eigenvalue, largest residual ...);
        see ``message``.
    message : str
        What was checked and what was found.
    sdp : dict or None
        For ``R_d_psd`` and ``hessian_pd``: the SDP's ``status``, its
        ``margin`` (the largest ``t`` with ``M - t I ⪰ 0`` over its
        ``matrices`` matrices) and the ``solver``; None for the others.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection, certify_closed_loop, closed_loop
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> loop = closed_loop(plant, DampingInjection(plant, 2.0))
    >>> check = certify_closed_loop(loop).check("lyapunov_lmi")
    >>> check.name, check.status
    ('lyapunov_lmi', 'pass')
    """

    name: str
    status: Status
    margin: float | None
    message: str
    sdp: dict[str, Any] | None = None


@dataclass(frozen=True)
class ClosedLoopCertificate:
    """A closed-loop certificate and its JSON document.

    Attributes
    ----------
    verdict : {"certified", "not_certified", "undecided"}
        ``certified`` only when every applicable check passed.
    checks : tuple of Check
        The four checks.
    data : dict
        The JSON document (settings, checks, the matrices ``A``, ``P``,
        the Hessian and ``R_d`` at the target).
    problems : list of str
        Disagreements found by :func:`verify_closed_loop_certificate`.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection, certify_closed_loop, closed_loop
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> loop = closed_loop(plant, DampingInjection(plant, 2.0))
    >>> cert = certify_closed_loop(loop, decay_rate=0.1)
    >>> cert.verdict, cert.ok, sorted(cert.data)[:3]
    ('certified', True, ['checks', 'controller', 'decay_rate'])
    """

    verdict: str
    checks: tuple[Check, ...]
    data: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the verdict is ``certified``."""
        return self.verdict == "certified"

    def check(self, name: str) -> Check:
        """Return the check called ``name``."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON document to ``path``."""
        Path(path).write_text(json.dumps(self.data, indent=2, allow_nan=False))


def _verdict(checks: list[Check]) -> str:
    states = [c.status for c in checks if c.status != "not_applicable"]
    if "fail" in states:
        return "not_certified"
    if states and all(s == "pass" for s in states):
        return "certified"
    return "undecided"


def solve_quietly(problem: Any, solver: str) -> None:
    """Solve a CVXPY problem; its accuracy warning is dropped, as the caller
    reads ``problem.status`` (only ``optimal`` is trusted unchecked)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=solver)


def lyapunov_lmi(
    A: np.ndarray,
    decay_rate: float = 0.0,
    *,
    solver: str = "CLARABEL",
    strict: bool = False,
) -> tuple[np.ndarray | None, str]:
    r"""Solve :math:`P \succeq I,\ \bar A^\top P + P \bar A + 2\bar\alpha P \preceq -I`.

    ``A`` and ``decay_rate`` are scaled by :math:`\|A\|_2` first (the LMI
    is homogeneous in them), so the solve is well conditioned for any
    time scale.

    Parameters
    ----------
    A : ndarray, shape (n, n)
        The linearised closed loop.
    decay_rate : float, default 0.0
        ``α >= 0``: the required exponential decay rate of ``x``.
    solver : str, default "CLARABEL"
        A CVXPY solver name.
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        the solve ends with a status that is not clean.

    Returns
    -------
    P : ndarray, shape (n, n) or None
        The solver's storage (symmetrised), or None when it failed.
    status : str
        The solver's status (``"solver_error: ..."`` when it failed).

    Raises
    ------
    SolverError
        With ``strict=True``, when the status is not ``optimal``,
        ``infeasible`` or ``unbounded``, or the solver fails.

    Warns
    -----
    NumericsWarning
        In the same cases without ``strict``, and when the solver says
        ``infeasible`` although the eigenvalues of ``A`` meet the decay
        rate (a storage then exists). A ``P`` from an
        ``optimal_inaccurate`` solve is still returned; callers must not
        certify with it (:func:`certify_closed_loop` says ``undecided``).

    Examples
    --------
    >>> import numpy as np
    >>> P, status = lyapunov_lmi(np.array([[-2.0]]), decay_rate=1.0)
    >>> status, bool(P[0, 0] >= 1.0)
    ('optimal', True)
    """
    A = np.asarray(A, dtype=float)
    s = max(float(np.linalg.norm(A, 2)), 1e-300)
    P, status = _solve_lyapunov_lmi(A, decay_rate, solver)
    report_status(
        status,
        "the Lyapunov LMI of the closed loop",
        "its storage is not taken as a certificate",
        strict,
        solver,
    )
    eig = np.linalg.eigvals(A).real
    worst = float(eig.max()) if eig.size else -math.inf
    if status == "infeasible" and worst + float(decay_rate) < -EIG_RTOL * s:
        # A + alpha I is Hurwitz, so a storage exists: the solve failed.
        report(
            f"the Lyapunov LMI solver says 'infeasible', but the eigenvalues of A "
            f"have real parts <= {worst:.4g} < -{float(decay_rate):g}, so a "
            f"storage exists; the LMI is too ill-conditioned for the solver "
            f"(||A|| = {s:.3g}). Try solver="
            f"{'CLARABEL' if solver.upper() == 'SCS' else 'SCS'!r}, or rescale "
            "the states",
            strict,
            SolverError,
        )
    return P, status


def _solve_lyapunov_lmi(
    A: np.ndarray, decay_rate: float, solver: str
) -> tuple[np.ndarray | None, str]:
    """Solve the LMI of :func:`lyapunov_lmi` without reporting its status.

    For searches whose result is re-checked in numpy anyway (the rounds of
    :func:`~phcontrol.control.synthesize_damping_gain`), where an inexact
    intermediate storage is only a starting point, not a certificate.
    """
    import cvxpy as cp

    A = np.asarray(A, dtype=float)
    n = A.shape[0]
    s = max(float(np.linalg.norm(A, 2)), 1e-300)
    Ab, ab = A / s, float(decay_rate) / s
    P = cp.Variable((n, n), symmetric=True)
    t = cp.Variable()
    eye = np.eye(n)
    lhs = Ab.T @ P + P @ Ab + 2.0 * ab * P
    cons = [P >> eye, P << t * eye, 0.5 * (lhs + lhs.T) << -eye]
    prob = cp.Problem(cp.Minimize(t), cons)
    try:
        solve_quietly(prob, solver)
        status = str(prob.status)
    except cp.SolverError as err:
        status = f"solver_error: {err}"
    if P.value is None or status not in ("optimal", "optimal_inaccurate"):
        return None, status
    Pv = np.asarray(P.value, dtype=float)
    return 0.5 * (Pv + Pv.T), status


def energy_coordinates(
    hessian: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``(S, S^-1)`` with ``S = Hess^(1/2)``, or None if not definite.

    In ``z = S x`` the storage Hessian is the identity; a Lyapunov LMI is
    solved and re-checked there, where it is well scaled, and maps back by
    the congruence ``P = S P_z S`` (which keeps its inertia).
    """
    if hessian is None:
        return None
    H = 0.5 * (np.asarray(hessian, dtype=float) + np.asarray(hessian, dtype=float).T)
    w, V = np.linalg.eigh(H)
    if w.size == 0 or w[0] <= EIG_RTOL * max(abs(float(w[-1])), 1e-300):
        return None
    return (V * np.sqrt(w)) @ V.T, (V / np.sqrt(w)) @ V.T


def _lmi_check(
    A: np.ndarray,
    P: np.ndarray | None,
    alpha: float,
    status: str,
    coords: tuple[np.ndarray, np.ndarray] | None = None,
) -> Check:
    eig = np.linalg.eigvals(A)
    worst = float(eig.real.max()) if eig.size else -math.inf
    s = max(float(np.linalg.norm(A, 2)), 1e-300)
    if P is not None:
        # Sylvester's law of inertia: the signs are those of S^-1 (.) S^-1.
        S, Si = coords if coords is not None else (None, None)
        Ac = A if S is None else S @ A @ Si
        Pc = P if Si is None else Si @ P @ Si
        Pc = 0.5 * (Pc + Pc.T)
        M = Ac.T @ Pc + Pc @ Ac + 2.0 * alpha * Pc
        lam_M = float(np.linalg.eigvalsh(0.5 * (M + M.T)).max())
        lam_P = float(np.linalg.eigvalsh(Pc).min())
        size = max(float(np.linalg.norm(Ac, 2)), 1e-300) * float(np.linalg.norm(Pc, 2))
        where = "" if S is None else " in the energy coordinates z = Hess^(1/2) x"
        # "stored": a certificate file's P, re-checked on its own;
        # "synthesis": the P of a gain synthesis whose solve was optimal.
        clean = status in ("optimal", "stored", "synthesis")
        if lam_P > 0 and lam_M < -LMI_RTOL * size and clean:
            return Check(
                "lyapunov_lmi",
                "pass",
                lam_M / size,
                f"P > 0 (smallest eigenvalue {lam_P:.3g}) and A^T P + P A + "
                f"2*{alpha:g} P < 0 (largest eigenvalue {lam_M:.3g}) re-checked in "
                f"numpy{where}; eigenvalues of A have real parts <= {worst:.4g}",
            )
    if worst >= -alpha + EIG_RTOL * s:
        return Check(
            "lyapunov_lmi",
            "fail",
            worst + alpha,
            f"the linearisation has an eigenvalue with real part {worst:.4g} >= "
            f"-{alpha:g}: no decay rate {alpha:g} (solver status {status})",
        )
    why = (
        f"the storage comes from a solve with status {status!r}, not 'optimal', "
        "and is not taken as a certificate"
        if P is not None and status not in ("optimal", "stored")
        else f"no storage passed the numpy re-check (solver status {status})"
    )
    return Check(
        "lyapunov_lmi",
        "undecided",
        None if P is None else worst + alpha,
        f"{why}, although the eigenvalues of A have real parts <= {worst:.4g}",
    )


def _eig_check(
    name: str, values: np.ndarray, scale: float, strict: bool, where: str
) -> Check:
    low = float(values.min()) if values.size else 0.0
    tol = EIG_RTOL * max(scale, 1e-300)
    rule = "> 0" if strict else ">= 0"
    if (low > tol) if strict else (low >= -tol):
        return Check(name, "pass", low, f"smallest eigenvalue {low:.4g} {rule} {where}")
    if low < -tol:
        return Check(name, "fail", low, f"eigenvalue {low:.4g} < 0 {where}")
    return Check(
        name,
        "undecided",
        low,
        f"smallest eigenvalue {low:.3g} is within {tol:.2g} of zero {where}",
    )


def psd_margin(
    matrices: np.ndarray, *, solver: str = "CLARABEL"
) -> tuple[float | None, str]:
    r"""Solve :math:`\max t` subject to :math:`M_i - t I \succeq 0` for every ``i``.

    The optimum is the smallest eigenvalue over the matrices; the SDP is
    solved on the matrices divided by their largest entry, and ``t``
    scaled back.

    Parameters
    ----------
    matrices : ndarray, shape (k, n, n)
        Symmetric matrices (symmetrised here).
    solver : str, default "CLARABEL"
        A CVXPY solver name.

    Returns
    -------
    margin : float or None
        The solver's ``t``, or None when it returned none.
    status : str
        The solver's status; only ``optimal`` is trusted by the checks.

    Examples
    --------
    >>> import numpy as np
    >>> t, status = psd_margin(np.array([[[2.0, 1.0], [1.0, 2.0]]]))
    >>> status, round(t, 6)
    ('optimal', 1.0)
    """
    import cvxpy as cp

    M = np.asarray(matrices, dtype=float)
    if M.ndim != 3 or M.shape[1] != M.shape[2]:
        raise ShapeError(
            f"`matrices` must have shape (k, n, n); found {tuple(M.shape)}"
        )
    M = 0.5 * (M + M.transpose(0, 2, 1))
    size = max(float(np.abs(M).max()) if M.size else 0.0, 1e-300)
    eye = np.eye(M.shape[1])
    t = cp.Variable()
    cons = [cp.psd_wrap(m / size) - t * eye >> 0 for m in M]
    prob = cp.Problem(cp.Maximize(t), cons)
    try:
        solve_quietly(prob, solver)
    except cp.SolverError as err:
        return None, f"solver_error: {err}"
    if t.value is None:
        return None, str(prob.status)
    return float(t.value) * size, str(prob.status)


def _matrix_check(
    name: str,
    values: np.ndarray,
    scale: float,
    strict: bool,
    where: str,
    sdp: dict[str, Any],
) -> Check:
    """Combine the SDP margin and numpy's smallest eigenvalues into one check."""
    plain = _eig_check(name, values, scale, strict, where)
    if plain.status == "fail":  # an eigenvalue below zero is its own witness
        return Check(name, "fail", plain.margin, plain.message, sdp)
    margin, status = sdp.get("margin"), sdp.get("status")
    low = float(values.min()) if values.size else 0.0
    tol = SDP_RTOL * max(scale, 1e-300)
    if status != "optimal" or margin is None:
        return Check(
            name,
            "undecided",
            plain.margin,
            f"{plain.message}, but the SDP margin is not certified (solver status "
            f"{status})",
            sdp,
        )
    if abs(margin - low) > tol:
        return Check(
            name,
            "undecided",
            plain.margin,
            f"the SDP margin {margin:.4g} disagrees with numpy's smallest eigenvalue "
            f"{low:.4g} {where}",
            sdp,
        )
    if (margin <= tol) if strict else (margin < -tol):
        rule = "> 0" if strict else ">= 0"
        return Check(
            name,
            "undecided",
            plain.margin,
            f"the SDP margin {margin:.3g} is too close to zero to show {rule} {where}",
            sdp,
        )
    return Check(
        name,
        plain.status,
        plain.margin,
        f"SDP margin {margin:.4g} ({status}); numpy: {plain.message}",
        sdp,
    )


def _solve_margin(matrices: np.ndarray, solver: str) -> dict[str, Any]:
    margin, status = psd_margin(matrices, solver=solver)
    return {
        "status": status,
        "margin": margin,
        "matrices": int(len(matrices)),
        "solver": solver,
    }


def certify_closed_loop(
    loop: ClosedLoop,
    *,
    decay_rate: float = 0.0,
    x_star: Any = None,
    n_samples: int = 256,
    box: float = 0.5,
    seed: int = 0,
    sdp_samples: int = SDP_SAMPLES,
    solver: str = "CLARABEL",
    strict: bool = False,
) -> ClosedLoopCertificate:
    r"""Certify a closed loop at its target; every number is re-checked.

    Parameters
    ----------
    loop : ClosedLoop
        From :func:`~phcontrol.control.closed_loop`.
    decay_rate : float, default 0.0
        ``α >= 0`` required of the linearised loop.
    x_star : array_like, shape (n_states,), optional
        Where to certify (default ``loop.x_star``).

    Returns
    -------
    ClosedLoopCertificate

    Other Parameters
    ----------------
    n_samples : int, default 256
        States around ``x*`` where ``R_d`` is sampled.
    box : float, default 0.5
        Their half-width, relative to ``1 + |x*_i|``.
    seed : int, default 0
        Seed of the samples.
    sdp_samples : int, default 4
        Sampled states, those with the smallest eigenvalue of ``R_d`` in
        numpy, whose ``R_d`` joins ``R_d(x*)`` in the SDP of ``R_d ⪰ 0``
        (a matrix equal to one already there is left out).
    solver : str, default "CLARABEL"
        CVXPY solver of the SDPs and the Lyapunov LMI.
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        the Lyapunov LMI ends with a status that is not clean.

    Raises
    ------
    SolverError
        With ``strict=True``, when the Lyapunov LMI's status is not
        ``optimal``, ``infeasible`` or ``unbounded``.

    Warns
    -----
    NumericsWarning
        In the same case without ``strict``; the ``lyapunov_lmi`` check is
        then ``undecided`` unless an eigenvalue rules the decay rate out.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> from phcontrol.control import EnergyShaping, closed_loop
    >>> arm = phc.plants.two_link_arm().double()
    >>> loop = closed_loop(arm, EnergyShaping(arm, [0.5, -0.3], 20.0, 5.0))
    >>> cert = certify_closed_loop(loop, decay_rate=0.5)
    >>> cert.verdict, [c.status for c in cert.checks]
    ('certified', ['pass', 'pass', 'pass', 'pass'])
    >>> certify_closed_loop(loop, decay_rate=50.0).verdict
    'not_certified'
    """
    if not isinstance(loop, ClosedLoop):
        raise TypeError(
            "`loop` must be a ClosedLoop from closed_loop(); found "
            f"{type(loop).__name__}"
        )
    if not (decay_rate >= 0 and math.isfinite(decay_rate)):
        raise ValueError(f"`decay_rate` must be >= 0 and finite; found {decay_rate!r}")
    if int(sdp_samples) != sdp_samples or sdp_samples < 0:
        raise ValueError(
            f"`sdp_samples` must be an integer >= 0; found {sdp_samples!r}"
        )
    started = time.perf_counter()
    dtype = plant_dtype(loop.plant)
    n = loop.n_states
    xs = loop.x_star if x_star is None else torch.as_tensor(np.asarray(x_star, float))
    xs = xs.to(dtype).reshape(-1)
    if xs.numel() != n:
        raise ShapeError(f"`x_star` must have {n} entries; found {xs.numel()}")
    zero_u = torch.zeros(1, loop.n_inputs, dtype=dtype)

    def f(x: torch.Tensor) -> torch.Tensor:
        return loop.vector_field(x[None], zero_u)[0]

    A = torch.autograd.functional.jacobian(f, xs).detach().double().numpy()
    with torch.no_grad():
        drift = f(xs).double().numpy()
    checks: list[Check] = []
    scale = 1.0 + float(np.linalg.norm(A, 2)) * (1.0 + float(xs.abs().max()))
    res = float(np.abs(drift).max())
    checks.append(
        Check(
            "equilibrium",
            "pass" if res <= EQ_RTOL * scale else "fail",
            res,
            f"|f(x*)| = {res:.3g} (tolerance {EQ_RTOL * scale:.2g})",
        )
    )
    matrices: dict[str, Any] = {"A": A.tolist()}
    if loop.structured:
        gen = torch.Generator().manual_seed(seed)
        pts = loop.controller.sample_states(n_samples, box, gen).to(dtype)
        pts = torch.cat([xs[None], pts])
        with torch.no_grad():
            R = loop.R_matrix(pts).double()
        R = 0.5 * (R + R.transpose(1, 2))
        lam = torch.linalg.eigvalsh(R).numpy().min(axis=1)
        worst = int(lam.argmin())
        at = "at x*" if worst == 0 else f"at sampled state {pts[worst].tolist()}"
        # The SDP sees R_d at x* and at the states numpy finds worst.
        order = [0]
        for i in np.argsort(lam[1:], kind="stable")[:sdp_samples] + 1:
            if not any(torch.equal(R[int(i)], R[j]) for j in order):  # R_d constant
                order.append(int(i))
        R_sdp = R[order].numpy()
        c = _matrix_check(
            "R_d_psd",
            lam,
            float(R.abs().max()) + 1.0,
            False,
            f"(x* and {n_samples} seeded states; worst {at})",
            _solve_margin(R_sdp, solver),
        )
        checks.append(c)
        matrices["R_d_at_target"] = R[0].numpy().tolist()
        matrices["R_d_sdp"] = R_sdp.tolist()
        matrices["R_d_sdp_states"] = pts[order].double().tolist()
        hess = (
            torch.autograd.functional.jacobian(lambda x: loop.H.grad(x[None])[0], xs)
            .detach()
            .double()
            .numpy()
        )
        hess = 0.5 * (hess + hess.T)
        with torch.no_grad():
            g = loop.H.grad(xs[None])[0].double().numpy()
        hs = float(np.linalg.norm(hess, 2))
        gres = float(np.abs(g).max())
        hc = _matrix_check(
            "hessian_pd",
            np.linalg.eigvalsh(hess),
            hs,
            True,
            "at x*",
            _solve_margin(hess[None], solver),
        )
        if gres > EQ_RTOL * (1.0 + hs * (1.0 + float(xs.abs().max()))):
            hc = Check(
                "hessian_pd",
                "fail",
                gres,
                f"x* is not a critical point of H_d (|grad H_d(x*)| = {gres:.3g})",
                hc.sdp,
            )
        checks.append(hc)
        matrices["hessian"] = hess.tolist()
    else:
        why = "the loop has no pH form (the plant under the feedback)"
        checks.append(Check("R_d_psd", "not_applicable", None, why))
        checks.append(Check("hessian_pd", "not_applicable", None, why))
    coords = energy_coordinates(matrices.get("hessian"))
    if coords is None:
        P, status = lyapunov_lmi(A, decay_rate, solver=solver, strict=strict)
    else:
        S, Si = coords
        Pz, status = lyapunov_lmi(S @ A @ Si, decay_rate, solver=solver, strict=strict)
        P = None if Pz is None else S @ Pz @ S
    checks.append(_lmi_check(A, P, float(decay_rate), status, coords))
    matrices["P"] = None if P is None else P.tolist()
    verdict = _verdict(checks)
    seconds = time.perf_counter() - started
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "verdict": verdict,
        "structured": bool(loop.structured),
        "controller": loop.controller.to_dict(),
        "x_star": xs.tolist(),
        "decay_rate": float(decay_rate),
        "settings": {
            "n_samples": n_samples,
            "box": box,
            "seed": seed,
            "sdp_samples": sdp_samples,
            "solver": solver,
        },
        "checks": [c.__dict__ for c in checks],
        "matrices": matrices,
        "seconds": seconds,
    }
    logger.info("closed-loop certificate: %s in %.3g s", verdict, seconds)
    return ClosedLoopCertificate(verdict, tuple(checks), doc)


def _recheck(
    name: str,
    M: np.ndarray,
    scale: float,
    strict: bool,
    where: str,
    stored: dict[str, Any],
    solver: str,
) -> Check:
    """Re-check stored matrices against a stored SDP margin (or solve it anew)."""
    values = np.linalg.eigvalsh(M).min(axis=1)
    sdp = stored.get("sdp")
    if sdp is None:  # version 1: no SDP stored, so solve it on the stored matrices
        sdp = _solve_margin(M, solver)
    c = _matrix_check(name, values, scale, strict, where, dict(sdp))
    if stored.get("status") == "fail" and c.status != "fail":
        # A failure found at a sampled state that was not stored stands.
        return Check(name, "fail", stored.get("margin"), stored.get("message", ""), sdp)
    return c


def verify_closed_loop_certificate(
    source: str | os.PathLike[str] | dict[str, Any],
    loop: ClosedLoop | None = None,
    *,
    solver: str = "CLARABEL",
) -> ClosedLoopCertificate:
    """Re-check a saved closed-loop certificate, trusting none of its verdicts.

    The stored ``P`` is re-checked on the stored ``A`` (or, given ``loop``,
    on ``A`` recomputed from the loop, which must agree with the stored
    one); the stored Hessian and ``R_d`` matrices are re-checked by their
    eigenvalues, which must agree with the stored SDP margins (a version 1
    file stores none: the SDPs are then solved on the stored matrices). A
    stored verdict that disagrees is reported in ``problems`` and the
    result is then ``undecided`` at best.

    Parameters
    ----------
    source : str, os.PathLike or dict
        The JSON file, or its parsed document.
    loop : ClosedLoop, optional
        The loop to recompute the matrices from.
    solver : str, default "CLARABEL"
        CVXPY solver of the SDPs of a version 1 file.

    Returns
    -------
    ClosedLoopCertificate

    Raises
    ------
    ModelFileError
        If ``source`` is unreadable, not a closed-loop certificate, or of a
        version this phcontrol does not read.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection, closed_loop
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> loop = closed_loop(plant, DampingInjection(plant, 1.0))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cert.json"
    >>> certify_closed_loop(loop, decay_rate=0.1).save(path)
    >>> verify_closed_loop_certificate(path, loop).verdict
    'certified'
    """
    if isinstance(source, dict):
        doc = source
    else:
        try:
            doc = json.loads(Path(source).read_text())
        except (OSError, ValueError) as err:
            raise ModelFileError(
                f"`source` {str(source)!r} must be a readable JSON certificate "
                f"({err}); write one with certify_closed_loop(...).save(path)"
            ) from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(
            f"`source` is not a phcontrol closed-loop certificate (format must be "
            f"{FORMAT!r})"
        )
    if doc.get("version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"`source` is a closed-loop certificate of version {doc.get('version')!r}; "
            f"this phcontrol reads versions {list(READABLE_VERSIONS)}. Upgrade "
            "phcontrol, or certify the loop again with certify_closed_loop"
        )
    mats = doc.get("matrices", {})
    problems: list[str] = []
    A = np.asarray(mats["A"], dtype=float)
    if loop is not None:
        dtype = plant_dtype(loop.plant)
        xs = torch.as_tensor(doc["x_star"], dtype=dtype)
        zero_u = torch.zeros(1, loop.n_inputs, dtype=dtype)
        A_new = (
            torch.autograd.functional.jacobian(
                lambda x: loop.vector_field(x[None], zero_u)[0], xs
            )
            .detach()
            .double()
            .numpy()
        )
        gap = float(np.abs(A_new - A).max())
        if gap > 1e-9 * (1.0 + float(np.abs(A).max())):
            problems.append(
                f"the loop's linearisation differs from the stored A by {gap:.3g}"
            )
        A = A_new
    alpha = float(doc["decay_rate"])
    stored = {c["name"]: c for c in doc["checks"]}
    checks: list[Check] = []
    eq = stored.get("equilibrium", {})
    checks.append(
        Check(
            "equilibrium",
            eq.get("status", "undecided"),
            eq.get("margin"),
            eq.get("message", ""),
        )
    )
    version = doc.get("version")
    if mats.get("R_d_at_target") is not None:
        R = np.asarray(mats.get("R_d_sdp", [mats["R_d_at_target"]]), dtype=float)
        R = 0.5 * (R + R.transpose(0, 2, 1))
        checks.append(
            _recheck(
                "R_d_psd",
                R,
                float(np.abs(R).max()) + 1.0,
                False,
                f"at the {len(R)} stored states",
                stored.get("R_d_psd", {}),
                solver,
            )
        )
    else:
        checks.append(Check("R_d_psd", "not_applicable", None, "no pH form"))
    if mats.get("hessian") is not None:
        Hs = np.asarray(mats["hessian"], dtype=float)
        Hs = 0.5 * (Hs + Hs.T)
        checks.append(
            _recheck(
                "hessian_pd",
                Hs[None],
                float(np.linalg.norm(Hs, 2)),
                True,
                "at x* (stored Hessian)",
                stored.get("hessian_pd", {}),
                solver,
            )
        )
    else:
        checks.append(Check("hessian_pd", "not_applicable", None, "no pH form"))
    logger.debug("re-checked a version %s certificate", version)
    P = None if mats.get("P") is None else np.asarray(mats["P"], dtype=float)
    coords = energy_coordinates(mats.get("hessian"))
    checks.append(_lmi_check(A, P, alpha, "stored", coords))
    verdict = _verdict(checks)
    if doc.get("verdict") != verdict:
        problems.append(
            f"the stored verdict {doc.get('verdict')!r} disagrees with the re-checked "
            f"{verdict!r}"
        )
    if problems and verdict == "certified":
        verdict = "undecided"
    return ClosedLoopCertificate(verdict, tuple(checks), doc, problems)
