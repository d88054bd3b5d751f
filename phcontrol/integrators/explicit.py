r"""Explicit steps: forward Euler, classical RK4 and Störmer-Verlet.

Euler (order 1) and RK4 (order 4) work for any model with a vector field;
they keep no energy balance and their energy drifts. Störmer-Verlet
(leapfrog, order 2) is symplectic for a separable
:math:`H = \tfrac12 p^\top M^{-1} p + V(q)` with constant ``M`` and canonical
``J``; its energy error then stays bounded (a nearby shadow Hamiltonian is
conserved) instead of drifting.

Dissipation and ports enter Verlet through the momentum only. With
:math:`R = \mathrm{diag}(0, R_p)` and :math:`G = (0, G_p)^\top` constant, one
step with :math:`v = M^{-1}p` is

.. math::
    p_{1/2} &= p - \tfrac{\Delta t}{2}\,[\nabla V(q) + R_p M^{-1} p_{1/2}
              - G_p u_0], \\
    q' &= q + \Delta t\, M^{-1} p_{1/2}, \\
    p' &= p_{1/2} - \tfrac{\Delta t}{2}\,[\nabla V(q') + R_p M^{-1} p_{1/2}
              - G_p u_1],

an implicit and an explicit half step of the damping (a linear solve with a
constant matrix, no iteration), so the damping is treated by the
second-order Cayley map and the step stays explicit. ``u_0`` is the input
at the start of the step and ``u_1`` at its end; a feedback ``u(t, x)`` is
evaluated at ``(t, (q, p))`` and at ``(t + dt, (q', p_{1/2}))``, which is
second order when ``u`` depends on ``t`` and ``q`` only and first order when
it feeds back the momentum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import NotSupportedError
from ..hamiltonians import MechanicalHamiltonian
from ..models import AbstractModel, PortHamiltonian
from ..structure import CanonicalJ
from ._base import _InputSchedule

__all__: list[str] = []


def explicit_step(
    model: AbstractModel,
    x: Tensor,
    t: float,
    h: float,
    k: int,
    j: int,
    substeps: int,
    schedule: _InputSchedule,
    method: str,
) -> tuple[Tensor, Tensor]:
    """Advance one Euler or RK4 step; return ``x'`` and the midpoint input."""

    def ut(tau: float, z: Tensor, w: float) -> Tensor:
        tt = torch.as_tensor(tau, dtype=x.dtype, device=x.device)
        return schedule.at(k, j, substeps, tt, z, w)

    f = model.vector_field
    if method == "euler":
        x_new = x + h * f(x, ut(t, x, 0.0))
    else:
        k1 = f(x, ut(t, x, 0.0))
        z2 = x + 0.5 * h * k1
        k2 = f(z2, ut(t + 0.5 * h, z2, 0.5))
        z3 = x + 0.5 * h * k2
        k3 = f(z3, ut(t + 0.5 * h, z3, 0.5))
        z4 = x + h * k3
        k4 = f(z4, ut(t + h, z4, 1.0))
        x_new = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    um = ut(t + 0.5 * h, 0.5 * (x + x_new), 0.5)
    return x_new, um


def _verlet_refusal(model: AbstractModel, like: Tensor) -> str | None:
    """Return why Verlet cannot step ``model``, or None when it can."""
    alt = "Use method='gonzalez' (exact energy balance) or 'implicit_midpoint'."
    if not isinstance(model, PortHamiltonian):
        return (
            f"method='verlet' needs a PortHamiltonian with a separable H; "
            f"{type(model).__name__} has no energy. Use method='rk4'."
        )
    H = model.H
    if not isinstance(H, MechanicalHamiltonian) or not H.separable:
        what = (
            "a state-dependent mass"
            if isinstance(H, MechanicalHamiltonian)
            else f"a {type(H).__name__} of the whole state"
        )
        return (
            "method='verlet' needs a separable H = ½ pᵀM⁻¹p + V(q) with constant M "
            f"(a MechanicalHamiltonian without state-dependent mass); this H is "
            f"{what}. {alt}"
        )
    if not isinstance(model.J, CanonicalJ):
        return (
            "method='verlet' needs the canonical J = [[0, I], [-I, 0]]; this model "
            f"has {type(model.J).__name__}. {alt}"
        )
    k = H.n_dof
    for name, part in (("R", model.R), ("G", model.G)):
        if part is None:
            continue
        if part.state_dependent:
            return (
                f"method='verlet' needs a constant {name}; this model's {name} "
                f"depends on the state. {alt}"
            )
        M = part(like.new_zeros(1, 2 * k))[0]
        if name == "R":
            if bool((M[:k] != 0).any()) or bool((M[:, :k] != 0).any()):
                return (
                    "method='verlet' needs R to act on the momenta only "
                    "(R = diag(0, R_p)); this R damps positions. Mask it with "
                    "CholeskyDissipation(..., mask=[False]*n_dof + [True]*n_dof). "
                    + alt
                )
        elif bool((M[:k] != 0).any()):
            return (
                "method='verlet' needs G to act on the momenta only "
                "(G = [0; G_p]); this G drives positions. " + alt
            )
    return None


def check_verlet(model: AbstractModel, like: Tensor) -> None:
    """Raise NotSupportedError when Verlet cannot step ``model``."""
    why = _verlet_refusal(model, like)
    if why is not None:
        raise NotSupportedError(why)


class VerletStepper:
    """Störmer-Verlet for a separable mechanical pH model (see module Notes)."""

    def __init__(self, model: PortHamiltonian, h: float, like: Tensor) -> None:
        H = model.H
        assert isinstance(H, MechanicalHamiltonian)
        self.H = H
        self.k = k = H.n_dof
        self.h = h
        x = like[:1]
        Minv = torch.linalg.inv(H.mass(x[:, :k])[0])
        self.Minv_T = Minv.T
        eye = torch.eye(k, dtype=like.dtype, device=like.device)
        if model.R is not None:
            Rp = model.R_matrix(x)[0, k:, k:]
            self.damp_T = (Rp @ Minv).T
            self.half_T = torch.linalg.inv(eye + 0.5 * h * Rp @ Minv).T
        else:
            self.damp_T = None
            self.half_T = None
        self.Gp_T = model.G_matrix(x)[0, k:].T if model.n_inputs else None
        self.grad_V: Tensor | None = None

    def step(
        self,
        x: Tensor,
        t: float,
        k_int: int,
        j: int,
        substeps: int,
        schedule: _InputSchedule,
    ) -> tuple[Tensor, Tensor]:
        """Advance one step; return ``x'`` and the input averaged over it."""
        k, h = self.k, self.h
        q, p = x[:, :k], x[:, k:]
        dV = self.H.potential_grad(q) if self.grad_V is None else self.grad_V
        rhs = p - 0.5 * h * dV
        u0 = u1 = None
        if self.Gp_T is not None:
            tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
            u0 = schedule.at(k_int, j, substeps, tt, x, 0.0)
            rhs = rhs + 0.5 * h * (u0 @ self.Gp_T)
        p_half = rhs if self.half_T is None else rhs @ self.half_T
        q_new = q + h * (p_half @ self.Minv_T)
        dV_new = self.H.potential_grad(q_new)
        p_new = p_half - 0.5 * h * dV_new
        if self.damp_T is not None:
            p_new = p_new - 0.5 * h * (p_half @ self.damp_T)
        if self.Gp_T is not None:
            tt = torch.as_tensor(t + h, dtype=x.dtype, device=x.device)
            u1 = schedule.at(
                k_int, j, substeps, tt, torch.cat([q_new, p_half], -1), 1.0
            )
            p_new = p_new + 0.5 * h * (u1 @ self.Gp_T)
        self.grad_V = dV_new
        x_new = torch.cat([q_new, p_new], dim=-1)
        if u0 is None or u1 is None:
            um = x.new_zeros(x.shape[0], 0)
        else:
            um = 0.5 * (u0 + u1)
        return x_new, um
