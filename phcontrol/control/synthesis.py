r"""Gain synthesis: the smallest energy-shaping gains that meet a decay rate.

For a fully actuated mechanical loop shaped to
:math:`H_d = \tfrac12 p^\top M^{-1} p + \tfrac12 \tilde q^\top K_p \tilde q`
with damping :math:`K_D = R_p + G_p K_d G_p^\top`, the linearisation at
``q*`` in :math:`z = (\tilde q, \dot q)` is
:math:`M \ddot{\tilde q} = -K_p \tilde q - K_D \dot{\tilde q}` with
:math:`M = M(q^*)`. With the storage

.. math:: V = \tfrac12 \tilde q^\top K_p \tilde q + \tfrac12 \dot q^\top M \dot q
   + \varepsilon\, \tilde q^\top M \dot q ,

both :math:`V \succ 0` and :math:`\dot V + 2\alpha V \le 0` are *affine* in
:math:`(K_p, K_d)` for a fixed :math:`\varepsilon`:

.. math:: \begin{bmatrix} (\alpha - \varepsilon) K_p &
   \alpha\varepsilon M - \tfrac{\varepsilon}{2} K_D \\ \cdot &
   (\alpha + \varepsilon) M - K_D \end{bmatrix} \preceq 0, \qquad
   \begin{bmatrix} K_p & \varepsilon M \\ \varepsilon M & M \end{bmatrix}
   \succ 0 .

So for each ``ε`` on a grid the smallest gains (by
:math:`\mathrm{tr} K_p + \alpha\, \mathrm{tr} K_d`) are one LMI; the best
over the grid is kept and re-checked in numpy, and the eigenvalues of the
nonlinear loop's linearisation are checked against ``-α`` independently.

Damping through the port, ``u = -K y`` (:func:`synthesize_damping_gain`),
for damping injection on a plant or on top of an IDA-PBC design: at the
target, where :math:`\nabla H_d(x^*) = 0`, the loop linearises to

.. math:: A(K) = (F - G K G^\top)\, Q, \qquad F = J_d - R_d,\ Q = \nabla^2 H_d ,

with ``F``, ``G`` at ``x*``. The decay LMI
:math:`A(K)^\top P + P A(K) + 2\alpha P \prec 0` is bilinear in ``P`` and
``K`` (static output feedback), and no change of variables makes it
convex because ``K`` acts between ``G`` and :math:`G^\top Q`. The storage
Hessian itself, ``P = Q``, turns it into
:math:`R_d + G K G^\top \succeq \alpha Q^{-1}`, which no ``K`` meets
unless the dissipation reaches every state (never for a mechanical
model damped through its momenta). So ``P`` is fixed in turn: each
``K``-step is the LMI of the smallest ``K`` for the current storage, each
``P``-step a Lyapunov LMI for the current ``K``; the gain never grows
from one round to the next. Every gain returned has a storage ``P`` that
proves the rate, re-checked in numpy, but it is the smallest for that
storage, not necessarily over all storages.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._numerics import report_status
from ..errors import NotSupportedError, SolverError
from ..models import PortHamiltonian
from ._base import (
    MatrixSum,
    PortDamping,
    actuated_momenta,
    as_gain,
    as_state,
    mechanical_energy,
    plant_dtype,
)
from .certificates import _lmi_check, _solve_lyapunov_lmi, solve_quietly

__all__ = [
    "DampingSynthesis",
    "GainSynthesis",
    "synthesize_damping_gain",
    "synthesize_shaping_gains",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GainSynthesis:
    """Gains found by :func:`synthesize_shaping_gains`.

    Attributes
    ----------
    stiffness : ndarray, shape (n_dof, n_dof)
        ``K_p``.
    damping : ndarray, shape (n_inputs, n_inputs)
        ``K_d`` (on the port output).
    epsilon : float
        The cross-term weight of the storage that certified them.
    decay_rate : float
        The required ``α``.
    lmi_margin : float
        Largest eigenvalue of the decay LMI at ``α``, re-checked in numpy
        (negative when it holds), relative to the size of its blocks.
    max_real_eigenvalue : float
        Largest real part of the eigenvalues of the nonlinear loop's
        linearisation, computed independently (below ``-α`` when it holds).
    verified : bool
        Both re-checks hold.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import synthesize_shaping_gains
    >>> arm = phc.plants.two_link_arm().double()
    >>> gains = synthesize_shaping_gains(arm, [0.5, -0.3], decay_rate=1.0)
    >>> gains.stiffness.shape, gains.damping.shape, gains.verified
    ((2, 2), (2, 2), True)
    """

    stiffness: np.ndarray
    damping: np.ndarray
    epsilon: float
    decay_rate: float
    lmi_margin: float
    max_real_eigenvalue: float
    verified: bool


def _blocks(Kp, KD, M, eps, alpha):  # noqa: ANN001, ANN202 - cvxpy or numpy
    import cvxpy as cp

    stack = cp.bmat if not isinstance(Kp, np.ndarray) else np.block
    N = stack(
        [
            [(alpha - eps) * Kp, alpha * eps * M - 0.5 * eps * KD],
            [(alpha * eps * M - 0.5 * eps * KD).T, (alpha + eps) * M - KD],
        ]
    )
    P = stack([[Kp, eps * M], [eps * M, M]])
    return N, P


def synthesize_shaping_gains(
    plant: PortHamiltonian,
    q_star: Any,
    decay_rate: float,
    *,
    diagonal: bool = True,
    epsilons: Sequence[float] | None = None,
    solver: str = "CLARABEL",
    strict: bool = False,
) -> GainSynthesis:
    r"""Find the smallest energy-shaping gains that meet a decay rate.

    Parameters
    ----------
    plant : PortHamiltonian
        Fully actuated mechanical model (as for
        :class:`~phcontrol.control.EnergyShaping`).
    q_star : array_like, shape (n_dof,)
        Target configuration.
    decay_rate : float
        ``α > 0``: every state of the linearised loop decays at least like
        :math:`e^{-\alpha t}`.

    Returns
    -------
    GainSynthesis
        Use ``stiffness`` and ``damping`` in ``EnergyShaping``.

    Other Parameters
    ----------------
    diagonal : bool, default True
        Diagonal gains (one per joint) instead of full symmetric ones.
    epsilons : sequence of float, optional
        Grid of the storage's cross-term weight (default ``α`` times
        1.05 ... 8).
    solver : str, default "CLARABEL"
        CVXPY solver.
    strict : bool, default False
        Raise :class:`~phcontrol.errors.SolverError` instead of warning when
        a solve of the grid ends with a status that is not clean.

    Raises
    ------
    NotSupportedError
        If the model is not mechanical and fully actuated.
    SolverError
        If no ``ε`` of the grid gives a feasible LMI; with ``strict=True``
        also when a solve ends with a status other than ``optimal``,
        ``infeasible`` or ``unbounded``, or the solver fails.

    Warns
    -----
    NumericsWarning
        In that case without ``strict``: those grid points are skipped, and
        the gains come from the others (re-checked in numpy as always).

    Examples
    --------
    >>> import phcontrol as phc
    >>> arm = phc.plants.two_link_arm().double()
    >>> gains = synthesize_shaping_gains(arm, [0.5, -0.3], decay_rate=1.0)
    >>> gains.verified, bool(gains.max_real_eigenvalue < -1.0)
    (True, True)
    """
    import cvxpy as cp

    from .closed_loop import closed_loop
    from .energy_shaping import EnergyShaping

    if not (decay_rate > 0 and math.isfinite(decay_rate)):
        raise ValueError(f"`decay_rate` must be positive; found {decay_rate!r}")
    H = mechanical_energy(plant)
    dtype = plant_dtype(plant)
    k, m = plant.n_states // 2, plant.n_inputs
    q = as_state(q_star, k, "q_star", dtype)
    EnergyShaping(plant, q, 1.0, 1.0)  # refuses a model that is not fully actuated
    x = torch.cat([q, torch.zeros_like(q)])[None]
    Gp = actuated_momenta(plant, x).double().numpy()
    M = H.mass(q[None])[0].double().numpy()
    Rp = plant.R_matrix(x)[0, k:, k:].double().numpy()
    alpha = float(decay_rate)
    grid = [alpha * f for f in (1.05, 1.2, 1.5, 2.0, 3.0, 5.0, 8.0)]
    grid = list(epsilons) if epsilons is not None else grid
    # Solve for a slightly larger rate so the numpy re-check at alpha has room.
    a_in = alpha * (1.0 + 1e-3)
    size = float(np.linalg.norm(M, 2))
    best = None
    statuses: dict[str, str] = {}
    for eps in grid:
        if diagonal:
            kp, kd = cp.Variable(k, nonneg=True), cp.Variable(m, nonneg=True)
            Kp, Kd = cp.diag(kp), cp.diag(kd)
        else:
            Kp = cp.Variable((k, k), symmetric=True)
            Kd = cp.Variable((m, m), symmetric=True)
        KD = Rp + Gp @ Kd @ Gp.T
        N, P = _blocks(Kp, KD, M, eps, a_in)
        cons = [
            0.5 * (N + N.T) << 0,
            0.5 * (P + P.T) >> 1e-6 * size * np.eye(2 * k),
            Kd >> 0,
        ]
        prob = cp.Problem(cp.Minimize(cp.trace(Kp) + alpha * cp.trace(Kd)), cons)
        try:
            solve_quietly(prob, solver)
            status = str(prob.status)
        except cp.SolverError as err:
            status = f"solver_error: {err}"
        statuses[f"epsilon {eps:g}"] = status
        if status != "optimal" or Kp.value is None:
            continue
        if best is None or prob.value < best[0]:
            best = (prob.value, eps, np.asarray(Kp.value), np.asarray(Kd.value))
    report_status(
        statuses,
        "synthesize_shaping_gains",
        "those grid points were skipped",
        strict,
        solver,
    )
    if best is None:
        raise SolverError(
            f"no gains meet decay_rate={alpha:g} for any epsilon in {grid}; lower "
            "the rate or widen `epsilons`"
        )
    _, eps, Kp_v, Kd_v = best
    Kp_v = 0.5 * (Kp_v + Kp_v.T)
    Kd_v = 0.5 * (Kd_v + Kd_v.T)
    Kd_v = Kd_v + max(0.0, -float(np.linalg.eigvalsh(Kd_v).min())) * np.eye(m)
    KD_v = Rp + Gp @ Kd_v @ Gp.T
    N, P = _blocks(Kp_v, KD_v, M, eps, alpha)
    lam_N = float(np.linalg.eigvalsh(0.5 * (N + N.T)).max())
    lam_P = float(np.linalg.eigvalsh(0.5 * (P + P.T)).min())
    scale = max(float(np.abs(N).max()), 1e-300)
    ctrl = EnergyShaping(plant, q.numpy(), Kp_v, Kd_v)
    loop = closed_loop(plant, ctrl)
    u0 = torch.zeros(1, plant.n_inputs, dtype=dtype)
    A = (
        torch.autograd.functional.jacobian(
            lambda z: loop.vector_field(z[None], u0)[0], ctrl.x_star
        )
        .double()
        .numpy()
    )
    worst = float(np.linalg.eigvals(A).real.max())
    ok = lam_N < 0 and lam_P > 0 and worst < -alpha
    logger.info(
        "gain synthesis: eps %.3g, LMI margin %.3g, max Re %.4g", eps, lam_N, worst
    )
    return GainSynthesis(Kp_v, Kd_v, eps, alpha, lam_N / scale, worst, bool(ok))


@dataclass(frozen=True)
class DampingSynthesis:
    """A damping gain found by :func:`synthesize_damping_gain`.

    Attributes
    ----------
    gain : ndarray, shape (n_inputs, n_inputs)
        ``K`` of ``u = -K y``, symmetric positive semidefinite.
    controller : AbstractController
        The design with ``K``: a ``DampingInjection`` on the plant, or the
        IDA-PBC controller with ``G K G^T`` added to its ``R_d``.
    storage : ndarray, shape (n_states, n_states)
        ``P`` that proves the rate for the linearised loop.
    decay_rate : float
        The required ``α``.
    lmi_margin : float
        Largest eigenvalue of ``A^T P + P A + 2 α P``, re-checked in numpy
        in the energy coordinates, relative to ``||A|| ||P||`` there
        (below ``-1e-7`` when it holds, as in a certificate; NaN when it
        does not).
    max_real_eigenvalue : float
        Largest real part of the eigenvalues of the closed loop's
        linearisation, computed by autograd on the loop itself (below
        ``-α`` when it holds).
    rounds : int
        Alternations of the ``K``- and ``P``-steps.
    verified : bool
        Both re-checks hold.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import synthesize_damping_gain
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> out = synthesize_damping_gain(plant, decay_rate=0.25)
    >>> out.gain.shape, out.storage.shape, out.verified
    ((1, 1), (2, 2), True)
    """

    gain: np.ndarray
    controller: Any
    storage: np.ndarray
    decay_rate: float
    lmi_margin: float
    max_real_eigenvalue: float
    rounds: int
    verified: bool


def _abscissa(A: np.ndarray) -> float:
    return float(np.linalg.eigvals(A).real.max())


def _damping_parts(design: Any) -> tuple[Any, Any, np.ndarray, np.ndarray, Any]:
    """Return (plant, x*, F, G, Q) at the target of a design."""
    from ..linear import minimise_energy
    from .ida_pbc import IDAPBC

    if isinstance(design, IDAPBC):
        plant, xs = design.plant, design.x_star
        H, J, R = design.H_d, design.J_d, design.R_d
    elif isinstance(design, PortHamiltonian):
        if design.G is None or design.n_inputs == 0:
            raise NotSupportedError("`design` has no input port; damping needs one")
        plant, H, J, R = design, design.H, design.J, design.R
        xs = as_state(
            minimise_energy(design), design.n_states, "x_star", plant_dtype(design)
        )
    else:
        raise TypeError(
            "`design` must be a PortHamiltonian (damping injection) or an IDAPBC "
            f"controller; found {type(design).__name__}"
        )
    assert plant.G is not None
    if getattr(plant.G, "state_dependent", True):
        raise NotSupportedError(
            "damping synthesis needs a constant input matrix G; the model's G "
            "depends on the state"
        )
    x = xs.reshape(1, -1)
    with torch.no_grad():
        grad = H.grad(x)[0]
        F = J(x)[0] - (0 if R is None else R(x)[0])
        G = plant.G_matrix(x)[0]
    Q = torch.autograd.functional.jacobian(lambda z: H.grad(z[None])[0], xs)
    Q = Q.detach().double().numpy()
    Q = 0.5 * (Q + Q.T)
    size = 1.0 + float(np.linalg.norm(Q, 2)) * (1.0 + float(xs.abs().max()))
    if float(grad.abs().max()) > 1e-8 * size:
        raise NotSupportedError(
            f"the target is not a critical point of the design's energy "
            f"(|grad H(x*)| = {float(grad.abs().max()):.3g}); damping synthesis "
            "linearises about an equilibrium"
        )
    return plant, xs, F.double().numpy(), G.double().numpy(), Q


def _k_step(F, G, Q, P, alpha, diagonal, objective, solver):  # noqa: ANN001, ANN202
    """The smallest K for a fixed storage P; None when the solve fails."""
    import cvxpy as cp

    m = G.shape[1]
    if diagonal:
        k = cp.Variable(m, nonneg=True)
        K = cp.diag(k)
    else:
        K = cp.Variable((m, m), symmetric=True)
    Pn = P / np.linalg.norm(P, 2)
    A0, B, C = F @ Q, G, G.T @ Q
    s = max(float(np.linalg.norm(A0, 2)), 1e-300)
    lhs = (A0.T @ Pn + Pn @ A0 + 2 * alpha * Pn) / s - (
        C.T @ K @ B.T @ Pn + Pn @ B @ K @ C
    ) / s
    cons = [0.5 * (lhs + lhs.T) << 0, K >> 0]
    if objective == "trace":
        goal = cp.trace(K)
    else:
        goal = cp.lambda_max(K) if not diagonal else cp.max(k)
    prob = cp.Problem(cp.Minimize(goal), cons)
    try:
        solve_quietly(prob, solver)
    except cp.SolverError:
        return None
    if prob.status != "optimal" or K.value is None:
        return None
    Kv = np.asarray(K.value, dtype=float)
    Kv = 0.5 * (Kv + Kv.T)
    return Kv + max(0.0, -float(np.linalg.eigvalsh(Kv).min())) * np.eye(m)


def synthesize_damping_gain(
    design: Any,
    decay_rate: float,
    *,
    diagonal: bool = False,
    objective: str = "trace",
    rounds: int = 10,
    solver: str = "CLARABEL",
) -> DampingSynthesis:
    r"""Find a small damping gain ``K ⪰ 0`` of ``u = -K y`` that meets a decay rate.

    Parameters
    ----------
    design : PortHamiltonian or IDAPBC
        A plant (damping injection to the minimiser of its ``H``) or an
        IDA-PBC controller (``G K G^T`` is added to its ``R_d``).
    decay_rate : float
        ``α > 0``: every state of the linearised loop decays at least like
        :math:`e^{-\alpha t}`.

    Returns
    -------
    DampingSynthesis
        ``gain`` and the ``controller`` built with it.

    Other Parameters
    ----------------
    diagonal : bool, default False
        A diagonal ``K`` (one gain per input) instead of a full one.
    objective : {"trace", "norm"}, default "trace"
        Minimise :math:`\mathrm{tr} K` or the largest eigenvalue of ``K``.
    rounds : int, default 10
        Most alternations of the ``K``- and ``P``-steps (stops earlier
        when the objective falls by less than 0.1 %). The first gain is the
        smallest ``k I`` that meets the rate (by bisection), so a single
        input needs no alternation.
    solver : str, default "CLARABEL"
        CVXPY solver.

    Raises
    ------
    SolverError
        If no gain is found; the message gives the best rate the search
        reached and, where some modes are out of the input's reach, the
        rate no gain can beat.
    NotSupportedError
        If ``G`` depends on the state or the target is not an equilibrium.

    Examples
    --------
    >>> import phcontrol as phc
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> out = synthesize_damping_gain(plant, decay_rate=0.5)
    >>> out.verified, round(float(out.gain[0, 0]), 2)  # s^2 + k s + 1: k = 2 alpha
    (True, 1.0)
    """
    from .closed_loop import closed_loop
    from .damping import DampingInjection
    from .ida_pbc import IDAPBC

    if not (decay_rate > 0 and math.isfinite(decay_rate)):
        raise ValueError(f"`decay_rate` must be positive; found {decay_rate!r}")
    if objective not in ("trace", "norm"):
        raise ValueError(f"`objective` must be 'trace' or 'norm'; found {objective!r}")
    if int(rounds) != rounds or rounds < 1:
        raise ValueError(f"`rounds` must be an integer >= 1; found {rounds!r}")
    from .certificates import lyapunov_lmi

    plant, xs, F, G, Q = _damping_parts(design)
    w, V = np.linalg.eigh(Q)
    if w[0] <= 1e-9 * max(abs(w[-1]), 1e-300):
        raise NotSupportedError(
            f"the Hessian of the design's energy at the target is not positive "
            f"definite (smallest eigenvalue {w[0]:.3g}); the target must be a strict "
            "minimiser"
        )
    # Energy coordinates z = Q^(1/2) x: there A(K) = S F S - (S G) K (S G)^T,
    # the storage Hessian is the identity, and the LMIs are well conditioned.
    S = (V * np.sqrt(w)) @ V.T
    Fz, Gz, eye = S @ F @ S, S @ G, np.eye(len(w))
    m = G.shape[1]
    alpha = float(decay_rate)
    a_in = alpha * (1.0 + 1e-3)  # room for the numpy re-check at alpha

    def A_of(K: np.ndarray) -> np.ndarray:
        return Fz - Gz @ K @ Gz.T

    def cost(K: np.ndarray) -> float:
        return float(np.trace(K) if objective == "trace" else np.linalg.eigvalsh(K)[-1])

    # A first gain: the smallest k I on a geometric grid that meets the rate.
    A0 = A_of(np.zeros((m, m)))
    unit = max(float(np.linalg.norm(A0, 2)), 1e-300) / max(
        float(np.linalg.norm(Gz, 2)) ** 2, 1e-300
    )
    grid = unit * np.geomspace(1e-4, 1e4, 97)
    # Aim the first gain a little past a_in, so the LMIs at a_in have room.
    a_start = alpha * (1.0 + 2e-3)
    k0 = _first_gain(lambda k: -_abscissa(A_of(k * np.eye(m))), grid, a_start)
    if isinstance(k0, tuple):
        rate, k_best = k0
        raise SolverError(
            f"no damping gain meets decay_rate={alpha:g}: over K = k I with k from "
            f"{grid[0]:.3g} to {grid[-1]:.3g} the best rate is {rate:.4g} (at k = "
            f"{k_best:.3g}){_reach_bound(A0, Gz)}; lower the rate"
        )
    K = k0 * np.eye(m)
    Pz = None
    done = 0
    for done in range(1, int(rounds) + 1):  # noqa: B007 - the count is reported
        # A round's storage only steers the next gain, and every gain is
        # re-checked in numpy, so an inexact round solve warns nobody.
        P_new, _ = _solve_lyapunov_lmi(A_of(K), a_in, solver)
        if P_new is None:
            break
        Pz = P_new
        K_new = _k_step(Fz, Gz, eye, Pz, a_in, diagonal, objective, solver)
        if K_new is None or _abscissa(A_of(K_new)) >= -alpha:
            break
        old, K = cost(K), K_new
        if cost(K) > (1.0 - 1e-3) * old:
            break
    if Pz is None or not _storage_holds(A_of(K), Pz, alpha):
        Pz, _ = lyapunov_lmi(A_of(K), a_in, solver=solver)
    if Pz is None:
        raise SolverError(
            f"no storage proves decay_rate={alpha:g} for the gain found; lower the "
            "rate or try another solver"
        )
    # Back to x: P = S P_z S, A = (F - G K G^T) Q; re-checked there.
    P = S @ Pz @ S
    P = 0.5 * (P + P.T)
    A = (F - G @ K @ G.T) @ Q
    # The certificate's own re-check (in the energy coordinates, with its
    # relative margin LMI_RTOL).
    Si = (V / np.sqrt(w)) @ V.T
    lmi = _lmi_check(A, P, alpha, "synthesis", (S, Si))
    if isinstance(design, IDAPBC):
        dtype = plant_dtype(plant)
        assert plant.G is not None
        Kt = as_gain(K, m, "gain", dtype=dtype)
        ctrl: Any = IDAPBC(
            plant,
            design.H_d,
            design.J_d,
            MatrixSum(design.R_d, PortDamping(plant.G, Kt)),
            design.x_star,
        )
    else:
        ctrl = DampingInjection(plant, K, x_star=xs)
    loop = closed_loop(plant, ctrl)
    u0 = torch.zeros(1, plant.n_inputs, dtype=plant_dtype(plant))
    A_loop = torch.autograd.functional.jacobian(
        lambda z: loop.vector_field(z[None], u0)[0], ctrl.x_star
    )
    worst = _abscissa(A_loop.detach().double().numpy())
    ok = lmi.status == "pass" and worst < -alpha
    margin = lmi.margin if lmi.status == "pass" and lmi.margin is not None else math.nan
    logger.info(
        "damping synthesis: %d rounds, cost %.4g, LMI margin %.3g, max Re %.4g",
        done,
        cost(K),
        margin,
        worst,
    )
    return DampingSynthesis(K, ctrl, P, alpha, float(margin), worst, done, bool(ok))


def _first_gain(
    rate: Any, grid: np.ndarray, alpha: float
) -> float | tuple[float, float]:
    """Return the smallest ``k`` of the first bracket where ``rate(k) > alpha``.

    Without one on the grid the best rate is refined around its grid
    maximum; ``(best rate, its k)`` is returned when even that falls short.
    """
    from scipy.optimize import minimize_scalar

    rates = np.array([rate(k) for k in grid])
    hits = np.flatnonzero(rates > alpha)
    if hits.size == 0:
        b = int(np.argmax(rates))
        lo, hi = np.log(grid[max(b - 1, 0)]), np.log(grid[min(b + 1, len(grid) - 1)])
        res = minimize_scalar(
            lambda t: -rate(math.exp(t)),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-10},
        )
        best, k_best = -float(res.fun), math.exp(float(res.x))
        if best <= alpha:
            return (max(best, float(rates[b])), k_best)
        lo_k, hi_k = float(grid[max(b - 1, 0)]), k_best
    elif hits[0] == 0:
        return float(grid[0])
    else:
        lo_k, hi_k = float(grid[hits[0] - 1]), float(grid[hits[0]])
    for _ in range(60):  # bisection on log k
        mid = math.sqrt(lo_k * hi_k)
        lo_k, hi_k = (lo_k, mid) if rate(mid) > alpha else (mid, hi_k)
        if hi_k / lo_k < 1.0 + 1e-9:
            break
    return hi_k


def _storage_holds(A: np.ndarray, P: np.ndarray, alpha: float) -> bool:
    M = A.T @ P + P @ A + 2.0 * alpha * P
    return bool(
        np.linalg.eigvalsh(0.5 * (M + M.T)).max() < 0
        and np.linalg.eigvalsh(P).min() > 0
    )


def _reach_bound(A0: np.ndarray, G: np.ndarray) -> str:
    """Describe the modes that ``u = -K y`` cannot move (PBH test), if any."""
    lam, V = np.linalg.eig(A0.T)
    scale = max(float(np.linalg.norm(A0, 2)), 1.0) * max(float(np.abs(G).max()), 1.0)
    stuck = [
        float(-lam[i].real)
        for i in range(len(lam))
        if np.linalg.norm(V[:, i].conj() @ G) <= 1e-9 * scale
    ]
    if not stuck:
        return ""
    return (
        f"; modes the input cannot reach decay at rate {min(stuck):.4g}, which no "
        "gain can beat"
    )
