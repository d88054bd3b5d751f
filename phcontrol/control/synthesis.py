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
from ..errors import SolverError
from ..models import PortHamiltonian
from ._base import actuated_momenta, as_state, mechanical_energy, plant_dtype

__all__ = ["GainSynthesis", "synthesize_shaping_gains"]

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
            prob.solve(solver=solver)
            status = str(prob.status)
        except cp.SolverError as err:
            status = f"solver_error: {err}"
        statuses[f"epsilon {eps:g}"] = status
        if status != "optimal" or Kp.value is None:
            continue
        if best is None or prob.value < best[0]:
            best = (prob.value, eps, np.asarray(Kp.value), np.asarray(Kd.value))
    report_status(
        statuses, "synthesize_shaping_gains", "those grid points were skipped", strict
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
