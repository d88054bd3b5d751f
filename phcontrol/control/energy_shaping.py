r"""Energy shaping plus damping injection for fully actuated mechanical models.

For ``x = (q, p)``, :math:`H = \tfrac12 p^\top M(q)^{-1} p + V(q)` and an
input :math:`G = [0;\ G_p]` with ``G_p`` invertible, the feedback

.. math:: u = G_p^{-1}\bigl(\nabla V(q) - \nabla V_d(q)\bigr) - K_d\, y

replaces ``V`` by ``V_d`` and adds damping, so the loop is

.. math:: \dot x = (J - R - G K_d G^\top)\, \nabla H_d, \qquad
   H_d = \tfrac12 p^\top M(q)^{-1} p + V_d(q).

``V_d`` is :math:`\tfrac12 (q - q^*)^\top K_p (q - q^*)` or, for angles,
:math:`\sum_i k_i (1 - \cos(q_i - q_i^*))`; ``q*`` is then the strict
minimiser of ``H_d`` whatever gravity does. Without the gravity term
(``gravity_compensation=False``) this is plain PD control,
:math:`H_d = H + \tfrac12 (q - q^*)^\top K_p (q - q^*)`, whose minimiser
sits where gravity and the spring balance: the steady-state offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..hamiltonians import AbstractHamiltonian, AbstractPotential
from ..models import PortHamiltonian
from ._base import (
    AbstractController,
    ClosedLoopForm,
    MatrixSum,
    PortDamping,
    actuated_momenta,
    as_gain,
    as_state,
    mechanical_energy,
    plant_dtype,
)

__all__ = ["EnergyShaping", "TargetPotential", "ShapedEnergy"]


class TargetPotential(AbstractPotential):
    r"""The assigned potential :math:`V_d`, quadratic or periodic, minimum at ``q*``.

    Parameters
    ----------
    stiffness : Tensor, shape (n_dof, n_dof)
        ``K_p``, symmetric positive definite (diagonal when ``periodic``).
    q_star : Tensor, shape (n_dof,)
        Its minimiser.
    periodic : bool, default False
        :math:`\sum_i k_i (1 - \cos(q_i - q^*_i))` instead of the quadratic;
        its Hessian at ``q*`` is also ``K_p``.

    Examples
    --------
    >>> import math, torch
    >>> V = TargetPotential(torch.eye(1), torch.tensor([math.pi]), periodic=True)
    >>> round(V(torch.tensor([[0.0]])).item(), 12)
    2.0
    """

    def __init__(self, stiffness: Tensor, q_star: Tensor, periodic: bool = False):
        super().__init__()
        K = torch.as_tensor(stiffness)
        self.n_dof = int(K.shape[0])
        self.periodic = bool(periodic)
        if self.periodic and bool((K - torch.diag(torch.diag(K))).abs().max() > 0):
            raise ValueError(
                "a periodic `stiffness` must be diagonal (one k_i per angle)"
            )
        self.register_buffer("K", K.clone())
        self.register_buffer("q_star", torch.as_tensor(q_star).clone())

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V_d(q)``, shape (batch,)."""
        d = q - self.q_star.to(q.dtype)
        K = self.K.to(q.dtype)
        if self.periodic:
            s = torch.sin(0.5 * d)
            return (2.0 * torch.diag(K) * s * s).sum(-1)
        return 0.5 * ((d @ K) * d).sum(-1)

    def grad(self, q: Tensor) -> Tensor:
        """Return ``dV_d/dq``, shape (batch, n_dof)."""
        d = q - self.q_star.to(q.dtype)
        K = self.K.to(q.dtype)
        if self.periodic:
            return torch.diag(K) * torch.sin(d)
        return d @ K

    def lower_bound(self) -> float:
        """Return 0."""
        return 0.0


class ShapedEnergy(AbstractHamiltonian):
    r"""``H_d = H - V + V_d`` (``replace=True``) or ``H + V_d`` (``replace=False``).

    Parameters
    ----------
    H : AbstractHamiltonian
        A mechanical energy with ``n_dof``, ``potential`` and
        ``potential_grad``.
    V_d : AbstractPotential
        The potential put in (instead of, or added to, ``V``).
    replace : bool, default True
        Remove the plant's potential.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.pendulum()
    >>> Vd = TargetPotential(torch.eye(1), torch.zeros(1))
    >>> Hd = ShapedEnergy(plant.H, Vd)
    >>> round(Hd(torch.tensor([[2.0, 0.0]])).item(), 12)  # 0.5 * 2**2
    2.0
    """

    def __init__(
        self, H: AbstractHamiltonian, V_d: AbstractPotential, replace: bool = True
    ) -> None:
        super().__init__()
        self.H = H
        self.V_d = V_d
        self.replace = bool(replace)
        self.n_states = H.n_states
        self.n_dof = H.n_states // 2

    def _q(self, x: Tensor) -> Tensor:
        return x[:, : self.n_dof]

    def potential(self, q: Tensor) -> Tensor:
        """Return the closed-loop potential, shape (batch,)."""
        out = self.V_d(q)
        return out if self.replace else out + self.H.potential(q)

    def potential_grad(self, q: Tensor) -> Tensor:
        """Return its gradient, shape (batch, n_dof)."""
        out = self.V_d.grad(q)
        return out if self.replace else out + self.H.potential_grad(q)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H_d(x)``, shape (batch,)."""
        q = self._q(x)
        if not self.replace:
            return self.H(x) + self.V_d(q)
        # The kinetic energy on its own, not H - V: near the target H_d is
        # small and H - V would carry the rounding error of V.
        p = x[:, self.n_dof :]
        kinetic = 0.5 * (p * self.H.velocity(q, p)).sum(-1)
        return kinetic + self.V_d(q)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``grad H_d(x)``, shape (batch, n_states)."""
        q = self._q(x)
        dq = self.V_d.grad(q)
        if self.replace:
            dq = dq - self.H.potential_grad(q)
        return self.H.grad(x) + torch.cat([dq, torch.zeros_like(q)], dim=-1)

    def lower_bound(self) -> float:
        """Return the bound of ``V_d`` (plus that of ``V`` when kept)."""
        low = self.V_d.lower_bound()
        return low if self.replace else low + self.H.lower_bound()


class EnergyShaping(AbstractController):
    r"""Energy shaping plus damping injection for a fully actuated mechanical model.

    Parameters
    ----------
    plant : PortHamiltonian
        Design model: mechanical energy, ``x = (q, p)``, constant
        ``G = [0; G_p]`` with ``G_p`` square and invertible.
    q_star : array_like, shape (n_dof,)
        Target configuration (any, not only equilibria of the plant).
    stiffness : float or array_like
        ``K_p``, symmetric positive definite (diagonal when ``periodic``).
    damping : float or array_like
        ``K_d`` acting on the port output ``y``, symmetric positive
        semidefinite, size ``n_inputs``.

    Other Parameters
    ----------------
    periodic : bool, default False
        Periodic ``V_d`` for angles (see :class:`TargetPotential`).
    gravity_compensation : bool, default True
        Cancel ``grad V``; False gives plain PD control (steady-state
        offset under gravity).

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> arm = phc.plants.two_link_arm().double()
    >>> ctrl = EnergyShaping(arm, [0.5, -0.3], stiffness=40.0, damping=12.0)
    >>> loop = phc.control.closed_loop(arm, ctrl)
    >>> x = ctrl.x_star[None]  # at q*, u cancels gravity exactly
    >>> torch.allclose(ctrl(0.0, x), arm.H.potential_grad(x[:, :2]))
    True
    >>> loop.structured, loop.vector_field(x).abs().max().item() < 1e-12
    (True, True)
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        q_star: Any,
        stiffness: Any,
        damping: Any,
        *,
        periodic: bool = False,
        gravity_compensation: bool = True,
    ) -> None:
        H = mechanical_energy(plant)
        dtype = plant_dtype(plant)
        k = plant.n_states // 2
        Gp = actuated_momenta(plant, torch.zeros(1, plant.n_states, dtype=dtype))
        if Gp.shape[0] != Gp.shape[1] or abs(float(torch.linalg.det(Gp))) < 1e-12:
            from ..errors import NotSupportedError

            raise NotSupportedError(
                f"energy shaping needs full actuation (G_p square and invertible); "
                f"this model has {plant.n_inputs} inputs for {k} degrees of freedom. "
                "Use IDAPBC for underactuated models"
            )
        self.plant = plant
        self.n_states = plant.n_states
        self.n_inputs = plant.n_inputs
        self.Gp_inv = torch.linalg.inv(Gp)
        self.periodic = bool(periodic)
        self.gravity_compensation = bool(gravity_compensation)
        q = as_state(q_star, k, "q_star", dtype)
        self.K_p = as_gain(stiffness, k, "stiffness", dtype=dtype, definite=True)
        self.K_d = as_gain(damping, plant.n_inputs, "damping", dtype=dtype)
        self.V_d = TargetPotential(self.K_p, q, periodic=self.periodic)
        self.H_d = ShapedEnergy(H, self.V_d, replace=self.gravity_compensation)
        self.x_star = torch.cat([q, torch.zeros_like(q)])

    def control(self, x: Tensor) -> Tensor:
        """Return ``u(x)``, shape (batch, n_inputs)."""
        k = self.n_states // 2
        q = x[:, :k]
        force = -self.V_d.grad(q)
        if self.gravity_compensation:
            force = force + self.plant.H.potential_grad(q)  # type: ignore[operator]
        u = force @ self.Gp_inv.to(x.dtype).T
        return u - self.plant.output(x) @ self.K_d.to(x.dtype).T

    def form(self) -> ClosedLoopForm:
        """Return ``(H_d, J, R + G K_d G^T, G)``."""
        p = self.plant
        assert p.G is not None
        R = MatrixSum(p.R, PortDamping(p.G, self.K_d))
        return ClosedLoopForm(self.H_d, p.J, R, p.G, self.x_star)

    def _parameters(self) -> dict[str, Any]:
        return {
            "stiffness": np.asarray(self.K_p.cpu()).tolist(),
            "damping": np.asarray(self.K_d.cpu()).tolist(),
            "periodic": self.periodic,
            "gravity_compensation": self.gravity_compensation,
        }
