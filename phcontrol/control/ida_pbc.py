r"""Interconnection and damping assignment (IDA-PBC).

Given a target :math:`(J_d, R_d, H_d)`, the plant
:math:`\dot x = (J - R)\nabla H + G u` equals
:math:`\dot x = (J_d - R_d)\nabla H_d` under a feedback exactly where the
*matching condition* holds,

.. math:: G^\perp(x)\, w(x) = 0, \qquad
   w = (J_d - R_d)\nabla H_d - (J - R)\nabla H,

with :math:`G^\perp` a full-rank left annihilator of ``G``; the feedback is
then :math:`u = (G^\top G)^{-1} G^\top w`. An unknown ``H_d`` can be
parametrised and fitted to the matching residual over seeded states
(:func:`fit_target_energy`), then verified on fresh states.

:func:`wheel_pendulum_ida_pbc` builds the classical design for the
inertia-wheel pendulum: constant :math:`M_d`, :math:`J_2 = 0`, and
:math:`V_d = a(1 + \cos\theta) + \tfrac{k}{2}(\phi + c(\theta - \pi))^2`
with ``a`` and ``c`` found by the fit.

References
----------
R. Ortega, M. W. Spong, F. Gómez-Estern and G. Blankenstein,
"Stabilization of a class of underactuated mechanical systems via
interconnection and damping assignment", IEEE TAC 47 (2002) 1218-1233.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import check_batch
from ..errors import NotSupportedError, ShapeError
from ..hamiltonians import AbstractHamiltonian
from ..models import PortHamiltonian
from ..structure import AbstractStructureMatrix
from ._base import (
    AbstractController,
    ClosedLoopForm,
    ConstantMatrix,
    as_gain,
    as_state,
    plant_dtype,
)

__all__ = [
    "IDAPBC",
    "MatchingFit",
    "WheelPendulumTarget",
    "fit_target_energy",
    "wheel_pendulum_ida_pbc",
]

logger = logging.getLogger(__name__)


def _as_structure(value: Any, n: int, name: str, dtype: torch.dtype) -> Any:
    if value is None:
        return None
    if isinstance(value, AbstractStructureMatrix):
        if value.n_states != n:
            raise ShapeError(f"`{name}` is built for {value.n_states} states, not {n}")
        return value
    M = torch.as_tensor(np.asarray(value, dtype=float), dtype=dtype)
    if M.shape != (n, n):
        raise ShapeError(f"`{name}` must have shape ({n}, {n}); found {tuple(M.shape)}")
    return ConstantMatrix(M)


class IDAPBC(AbstractController):
    r"""IDA-PBC for a target energy, interconnection and dissipation.

    Parameters
    ----------
    plant : PortHamiltonian
        Design model; ``G(x)`` must have full column rank.
    H_d : AbstractHamiltonian
        Target energy; ``x_star`` should be its strict minimiser.
    J_d : AbstractStructureMatrix or array_like, shape (n_states, n_states)
        Target interconnection (skew).
    R_d : AbstractStructureMatrix or array_like, shape (n_states, n_states)
        Target dissipation (positive semidefinite), or None.
    x_star : array_like, shape (n_states,)
        Target state.

    Examples
    --------
    Damping injection on a mass-spring system is IDA-PBC with ``H_d = H``:

    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> ctrl = IDAPBC(plant, plant.H, [[0.0, 1.0], [-1.0, 0.0]],
    ...               [[0.0, 0.0], [0.0, 2.0]], x_star=[0.0, 0.0])
    >>> x = torch.tensor([[0.3, 1.0]], dtype=torch.float64)
    >>> round(ctrl(0.0, x).item(), 9), ctrl.matching_residual(x).abs().max().item()
    (-2.0, 0.0)
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        H_d: AbstractHamiltonian,
        J_d: Any,
        R_d: Any,
        x_star: Any,
    ) -> None:
        if plant.G is None or plant.n_inputs == 0:
            raise ValueError("`plant` has no input; IDA-PBC needs G")
        n = plant.n_states
        if getattr(H_d, "n_states", n) != n:
            raise ShapeError(f"`H_d` is built for {H_d.n_states} states, not {n}")
        dtype = plant_dtype(plant)
        self.plant = plant
        self.n_states = n
        self.n_inputs = plant.n_inputs
        self.H_d = H_d
        self.J_d = _as_structure(J_d, n, "J_d", dtype)
        self.R_d = _as_structure(R_d, n, "R_d", dtype)
        self.x_star = as_state(x_star, n, "x_star", dtype)

    def _mismatch(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``w(x)`` (batch, n) and ``G(x)`` (batch, n, m)."""
        target = (self.J_d(x) - (0 if self.R_d is None else self.R_d(x))) @ (
            self.H_d.grad(x).unsqueeze(-1)
        )
        JR, G = self.plant.structure(x)
        own = JR @ self.plant.H.grad(x).unsqueeze(-1)
        return (target - own).squeeze(-1), G

    def control(self, x: Tensor) -> Tensor:
        r"""Return :math:`(G^\top G)^{-1} G^\top w`, shape (batch, n_inputs)."""
        w, G = self._mismatch(x)
        Gt = G.transpose(1, 2)
        return torch.linalg.solve(Gt @ G, (Gt @ w.unsqueeze(-1))).squeeze(-1)

    def matching_residual(self, x: Tensor) -> Tensor:
        r"""Return :math:`G^\perp(x)\, w(x)`, shape (batch, n_states - n_inputs).

        ``G^\perp`` has orthonormal rows spanning the left null space of
        ``G(x)`` (from its SVD), so the residual's norm is the distance of
        ``w`` from the range of ``G``.

        Raises
        ------
        NotSupportedError
            If ``G(x)`` loses column rank at a state of ``x``.
        """
        x = check_batch(x, "x", self.n_states)
        w, G = self._mismatch(x)
        U, S, _ = torch.linalg.svd(G, full_matrices=True)
        m = G.shape[-1]
        eps = torch.finfo(x.dtype).eps
        if bool((S[:, -1] <= 64 * eps * S[:, 0].clamp_min(1e-300)).any()):
            raise NotSupportedError(
                "G(x) loses column rank at a sampled state; IDA-PBC needs G of full "
                "column rank"
            )
        G_perp = U[:, :, m:].transpose(1, 2)
        return (G_perp @ w.unsqueeze(-1)).squeeze(-1)

    def form(self) -> ClosedLoopForm:
        """Return ``(H_d, J_d, R_d, G)``."""
        return ClosedLoopForm(self.H_d, self.J_d, self.R_d, self.plant.G, self.x_star)

    def _parameters(self) -> dict[str, Any]:
        x = self.x_star.reshape(1, -1)
        with torch.no_grad():
            out: dict[str, Any] = {
                "J_d_at_target": self.J_d(x)[0].tolist(),
                "R_d_at_target": None if self.R_d is None else self.R_d(x)[0].tolist(),
                "H_d": type(self.H_d).__name__,
                "H_d_parameters": {
                    k: v.detach().cpu().tolist()
                    for k, v in self.H_d.state_dict().items()
                },
            }
        return out


@dataclass(frozen=True)
class MatchingFit:
    """Outcome of :func:`fit_target_energy`.

    Attributes
    ----------
    controller : IDAPBC
        The controller with the fitted ``H_d``.
    max_residual : float
        Largest matching residual on fresh states, relative to
        ``1 + |(J - R) grad H|``.
    verified : bool
        True when ``max_residual`` is at most ``tol``.
    loss : float
        Final mean squared relative residual on the fitting states.
    iterations : int
        Residual evaluations of the least-squares solve.
    parameters : dict
        The fitted parameters of ``H_d`` by name.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import fit_target_energy, wheel_pendulum_ida_pbc
    >>> plant = phc.plants.inertia_wheel_pendulum().double()
    >>> ctrl = wheel_pendulum_ida_pbc(plant, fit=False)
    >>> fit = fit_target_energy(ctrl, n_samples=64, inits=[{"c": 30.0}])
    >>> fit.verified, sorted(fit.parameters)
    (True, ['a', 'c'])
    """

    controller: IDAPBC
    max_residual: float
    verified: bool
    loss: float
    iterations: int
    parameters: dict[str, Any]


def _relative_residual(ctrl: IDAPBC, x: Tensor) -> Tensor:
    r = ctrl.matching_residual(x)
    JR, _ = ctrl.plant.structure(x)
    f = (JR @ ctrl.plant.H.grad(x).unsqueeze(-1)).squeeze(-1)
    return r.abs().amax(-1) / (1.0 + f.abs().amax(-1))


def _scaled_residuals(ctrl: IDAPBC, x: Tensor) -> Tensor:
    r = ctrl.matching_residual(x)
    JR, _ = ctrl.plant.structure(x)
    f = (JR @ ctrl.plant.H.grad(x).unsqueeze(-1)).squeeze(-1)
    return r / (1.0 + f.abs().amax(-1, keepdim=True))


def fit_target_energy(
    controller: IDAPBC,
    *,
    n_samples: int = 256,
    box: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-9,
    seed: int = 0,
    inits: Sequence[dict[str, Any]] | None = None,
) -> MatchingFit:
    r"""Fit the free parameters of ``H_d`` to the matching condition, then verify.

    Minimises the sum of :math:`\|G^\perp w\|^2 / (1 + \|(J - R)\nabla
    H\|_\infty)^2` over seeded states around ``x_star`` by Levenberg-Marquardt
    (``scipy.optimize.least_squares``, central-difference Jacobian), then evaluates
    the largest relative residual on as many fresh states. The fitted
    parameters are frozen (``requires_grad=False``) afterwards.

    Parameters
    ----------
    controller : IDAPBC
        Its ``H_d`` must have parameters with ``requires_grad`` (the
        unknowns); the others stay fixed.

    Returns
    -------
    MatchingFit
        ``verified`` is True only when the fresh residual is at most
        ``tol``; otherwise the target is not matched and the closed loop
        is not the pH form.

    Other Parameters
    ----------------
    n_samples : int, default 256
        Fitting states, and as many fresh verification states.
    box : float, default 1.0
        Sampling half-width around ``x_star`` (see
        :meth:`AbstractController.sample_states`).
    max_iter : int, default 200
        Cap on residual evaluations.
    tol : float, default 1e-9
        Verification threshold.
    seed : int, default 0
        Seed of the fitting states; ``seed + 1`` draws the fresh ones.
    inits : sequence of dict, optional
        Further starting values (parameter name to value) beside the current
        ones; the best solution is kept. The residual is often not convex
        in the parameters, so a few starts guard against a local minimum.

    Raises
    ------
    ValueError
        If ``H_d`` has no free parameters.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.inertia_wheel_pendulum().double()
    >>> ctrl = wheel_pendulum_ida_pbc(plant, fit=False)
    >>> fit = fit_target_energy(ctrl, n_samples=64, inits=[{"c": 30.0}])
    >>> fit.verified, round(fit.parameters["a"], 6)
    (True, 5.0)
    """
    params = [p for p in controller.H_d.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            "`controller.H_d` has no free parameters (requires_grad); nothing to fit"
        )
    from scipy.optimize import least_squares

    dtype = plant_dtype(controller.plant)
    x_fit = controller.sample_states(
        n_samples, box, torch.Generator().manual_seed(seed)
    ).to(dtype)
    x_new = controller.sample_states(
        n_samples, box, torch.Generator().manual_seed(seed + 1)
    ).to(dtype)
    sizes = [p.numel() for p in params]

    def assign(theta: np.ndarray) -> None:
        with torch.no_grad():
            flat = torch.as_tensor(theta, dtype=dtype)
            for p, chunk in zip(params, flat.split(sizes), strict=True):
                p.copy_(chunk.reshape(p.shape))

    def residuals(theta: np.ndarray) -> np.ndarray:
        assign(theta)
        with torch.no_grad():
            return _scaled_residuals(controller, x_fit).reshape(-1).numpy()

    named = dict(controller.H_d.named_parameters())
    starts = [torch.cat([p.detach().reshape(-1) for p in params]).numpy()]
    for init in inits or ():
        unknown = sorted(set(init) - set(named))
        if unknown:
            raise ValueError(
                f"`inits` names {unknown}, which are not parameters of H_d; its "
                f"parameters are {sorted(named)}"
            )
        theta = starts[0].copy()
        offset = 0
        for name, p in named.items():
            if not p.requires_grad:
                continue
            if name in init:
                theta[offset : offset + p.numel()] = np.asarray(init[name]).reshape(-1)
            offset += p.numel()
        starts.append(theta)
    best, iterations = None, 0
    for theta0 in starts:
        sol = least_squares(
            residuals, theta0, jac="3-point", method="lm", xtol=1e-15, ftol=1e-15,
            gtol=1e-15, max_nfev=max_iter,
        )  # fmt: skip
        iterations += int(sol.nfev)
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    assign(best.x)
    values = {
        name: p.detach().cpu().reshape(-1).tolist()
        for name, p in controller.H_d.named_parameters()
        if p.requires_grad
    }
    for p in params:
        p.requires_grad_(False)
    with torch.no_grad():
        loss = float((_relative_residual(controller, x_fit) ** 2).mean())
        worst = float(_relative_residual(controller, x_new).max())
    values = {k: (v[0] if len(v) == 1 else v) for k, v in values.items()}
    verified = bool(worst <= tol)
    logger.info("matching fit: loss %.3g, fresh residual %.3g", loss, worst)
    return MatchingFit(controller, worst, verified, loss, iterations, values)


class WheelPendulumTarget(AbstractHamiltonian):
    r"""A target energy for the inertia-wheel pendulum, upright at ``theta = pi``.

    .. math:: H_d = \tfrac12 p^\top M_d^{-1} p + a\,(1 + \cos\theta)
       + \tfrac{k}{2}\bigl(\phi + c\,(\theta - \pi)\bigr)^2,

    with ``a`` and ``c`` free (fitted) and ``M_d``, ``k`` fixed.

    Parameters
    ----------
    inertia : Tensor, shape (2, 2)
        ``M_d``, symmetric positive definite.
    stiffness : float
        ``k > 0``.
    a, c : float, default 1.0 and 0.0
        Initial values of the free parameters.

    Examples
    --------
    >>> import math, torch
    >>> H = WheelPendulumTarget(torch.eye(2), 1.0, a=2.0, c=0.0)
    >>> abs(H(torch.tensor([[math.pi, 0.0, 0.0, 0.0]])).item()) < 1e-6
    True
    """

    def __init__(
        self, inertia: Tensor, stiffness: float, a: float = 1.0, c: float = 0.0
    ) -> None:
        super().__init__()
        self.n_states = 4
        Md = torch.as_tensor(inertia)
        dtype = Md.dtype if Md.is_floating_point() else torch.get_default_dtype()
        Md = Md.to(dtype)
        self.register_buffer("Md_inv", torch.linalg.inv(Md))
        self.register_buffer("k", torch.tensor(float(stiffness), dtype=dtype))
        self.a = nn.Parameter(torch.tensor(float(a), dtype=dtype))
        self.c = nn.Parameter(torch.tensor(float(c), dtype=dtype))

    def _z(self, q: Tensor) -> Tensor:
        return q[:, 1] + self.c.to(q.dtype) * (q[:, 0] - math.pi)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H_d(x)``, shape (batch,)."""
        q, p = x[:, :2], x[:, 2:]
        kin = 0.5 * ((p @ self.Md_inv.to(x.dtype)) * p).sum(-1)
        z = self._z(q)
        # 1 + cos(theta) as 2 cos^2(theta / 2): no cancellation near upright.
        half = torch.cos(0.5 * q[:, 0])
        return (
            kin
            + 2.0 * self.a.to(x.dtype) * half * half
            + 0.5 * self.k.to(x.dtype) * z * z
        )

    def grad(self, x: Tensor) -> Tensor:
        """Return ``grad H_d(x)``, shape (batch, 4)."""
        q, p = x[:, :2], x[:, 2:]
        kz = self.k.to(x.dtype) * self._z(q)
        d_theta = -self.a.to(x.dtype) * torch.sin(q[:, 0]) + kz * self.c.to(x.dtype)
        return torch.cat(
            [torch.stack([d_theta, kz], -1), p @ self.Md_inv.to(x.dtype)], -1
        )


def wheel_pendulum_ida_pbc(
    plant: PortHamiltonian,
    inertia: Any = ((0.02, 0.04), (0.04, 0.1)),
    stiffness: float = 0.01,
    damping: float = 0.05,
    *,
    fit: bool = True,
    n_samples: int = 256,
    seed: int = 0,
) -> IDAPBC:
    r"""Build (and by default fit) IDA-PBC for an inertia-wheel pendulum.

    With :math:`J_d = [[0, M^{-1}M_d], [-M_d M^{-1}, 0]]`,
    :math:`R_d = \mathrm{diag}(0, 0, 0, k_v)` and the energy of
    :class:`WheelPendulumTarget`, matching holds for every state exactly
    when :math:`a = -k/\gamma_1` and :math:`c = -\gamma_2/\gamma_1` with
    :math:`\gamma = e_1^\top M_d M^{-1}` (``k`` the gravity torque); the
    upright state is a strict minimiser of ``H_d`` when
    :math:`\gamma_1 < 0`.

    Parameters
    ----------
    plant : PortHamiltonian
        Built by :func:`phcontrol.plants.inertia_wheel_pendulum`.
    inertia : array_like, shape (2, 2)
        ``M_d``, symmetric positive definite.
    stiffness : float, default 0.01
        ``k`` of the wheel-angle term.
    damping : float, default 0.05
        ``k_v``, damping injected through the wheel.

    Returns
    -------
    IDAPBC
        Target ``x* = (pi, 0, 0, 0)``.

    Other Parameters
    ----------------
    fit : bool, default True
        Fit ``a`` and ``c`` with :func:`fit_target_energy` and raise if
        the fit does not verify; False leaves them at their initial values.
    n_samples, seed : int
        Passed to :func:`fit_target_energy`.

    Raises
    ------
    NotSupportedError
        If ``plant`` is not an inertia-wheel pendulum, or the fitted
        target does not verify.

    Examples
    --------
    >>> import phcontrol as phc
    >>> ctrl = wheel_pendulum_ida_pbc(phc.plants.inertia_wheel_pendulum().double())
    >>> round(ctrl.H_d.c.item(), 6)  # -gamma_2 / gamma_1
    21.0
    """
    from .._plant_parts import WheelPendulumEnergy

    if not isinstance(plant.H, WheelPendulumEnergy):
        raise NotSupportedError(
            "wheel_pendulum_ida_pbc needs plants.inertia_wheel_pendulum(); the "
            f"model's H is {type(plant.H).__name__}"
        )
    dtype = plant_dtype(plant)
    Md = as_gain(inertia, 2, "inertia", dtype=dtype, definite=True)
    M = plant.H.M.to(dtype)
    A = torch.linalg.solve(M, Md)  # M^-1 M_d
    J_d = torch.zeros(4, 4, dtype=dtype)
    J_d[:2, 2:] = A
    J_d[2:, :2] = -A.T
    R_d = torch.zeros(4, 4, dtype=dtype)
    R_d[3, 3] = as_gain(damping, 1, "damping", dtype=dtype)[0, 0]
    if not (stiffness > 0 and math.isfinite(stiffness)):
        raise ValueError(f"`stiffness` must be positive; found {stiffness!r}")
    H_d = WheelPendulumTarget(Md, stiffness)
    x_star = torch.tensor([math.pi, 0.0, 0.0, 0.0], dtype=dtype)
    ctrl = IDAPBC(plant, H_d, J_d, R_d, x_star)
    if fit:
        # The residual is quartic in c with a spurious minimum near c = 0:
        # start from a spread of magnitudes of both signs.
        inits = [{"c": s * 10.0**e} for s in (1, -1) for e in (-1, 0, 1, 2)]
        result = fit_target_energy(ctrl, n_samples=n_samples, seed=seed, inits=inits)
        if not result.verified:
            raise NotSupportedError(
                f"the fitted target energy does not match the plant (fresh residual "
                f"{result.max_residual:.3g}); check that gamma_1 = (M_d M^-1)[0, 0] "
                "< 0 and M_d is positive definite"
            )
    return ctrl
