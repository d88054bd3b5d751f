r"""PI passivity-based control of switched circuits through incremental passivity.

For a circuit :math:`\dot x = (J - R) Q x + \sum_i g_i(x) u_i + B e` whose
switched inputs enter as :math:`g_i(x) = J_i Q x` with :math:`J_i` skew
(and constant sources ``e``), the increments
:math:`\tilde x = x - x^*`, :math:`\tilde u = u - u^*` about an equilibrium
obey

.. math:: \dot{\tilde x} = (J(u) - R)\, Q \tilde x + \tilde g\, \tilde u, \qquad
   \tilde y = \tilde g^\top Q \tilde x, \qquad \tilde g = [J_i Q x^*]_i,

with :math:`J(u) = J + \sum_i J_i u_i`: passive from :math:`\tilde u` to
:math:`\tilde y` with storage :math:`\tfrac12 \tilde x^\top Q \tilde x`. The
PI law :math:`\tilde u = -K_p \tilde y - K_i z`, :math:`\dot z = \tilde y`
closes a pH loop in ``(x, z)``,

.. math:: \frac{d}{dt}\begin{bmatrix}\tilde x \\ z\end{bmatrix} =
   \left(\begin{bmatrix} J(u) & -\tilde g \\ \tilde g^\top & 0 \end{bmatrix}
   - \begin{bmatrix} R + \tilde g K_p \tilde g^\top & 0 \\ 0 & 0\end{bmatrix}
   \right) \nabla W, \qquad
   W = \tfrac12 \tilde x^\top Q \tilde x + \tfrac12 z^\top K_i z .

References
----------
M. Hernández-Gómez, R. Ortega, F. Lamnabhi-Lagarrigue and G. Escobar,
"Adaptive PI stabilization of switched power converters", IEEE TCST 18
(2010) 688-698.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_batch
from ..errors import NotSupportedError
from ..hamiltonians import QuadraticHamiltonian
from ..models import PortHamiltonian
from ._base import (
    AbstractController,
    ClosedLoopForm,
    ConstantMatrix,
    StateMatrix,
    as_gain,
    as_state,
    plant_dtype,
)

__all__ = ["PIPBC"]

_STRUCTURE_RTOL = 1e-9


class PIPBC(AbstractController):
    r"""PI control of a switched circuit through its incremental passive output.

    The controller has its own state: it reads ``(x, z)`` with ``z`` the
    integral of :math:`\tilde y` (one entry per switched input), so
    ``n_states = plant.n_states + len(switched)``; its closed loop comes
    from :func:`~phcontrol.control.closed_loop` with that augmented state.

    Parameters
    ----------
    plant : PortHamiltonian
        Design model: quadratic ``H`` with minimum at 0, constant ``J`` and
        ``R``; the ``switched`` columns of ``G(x)`` must be :math:`J_i Q x`
        with :math:`J_i` skew and the other columns constant.
    x_star, u_star : array_like
        Equilibrium, ``f(x*, u*) = 0``; other inputs are held at ``u*``.
    proportional, integral : float or array_like
        ``K_p`` (positive semidefinite) and ``K_i`` (positive definite),
        size ``len(switched)``.
    switched : sequence of int, default (0,)
        Inputs the PI law drives.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> old = torch.get_default_dtype()
    >>> torch.set_default_dtype(torch.float64)  # build the plant in float64
    >>> plant = phc.plants.boost_converter()
    >>> torch.set_default_dtype(old)
    >>> x_star, u_star = phc.plants.boost_equilibrium(plant, 24.0, 12.0)
    >>> ctrl = PIPBC(plant, x_star, u_star, proportional=0.2, integral=50.0)
    >>> x = torch.cat([x_star, torch.zeros(1, dtype=torch.float64)])[None]
    >>> ctrl(0.0, x).tolist()  # at the equilibrium, u = u*
    [[0.5, 12.0]]
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        x_star: Any,
        u_star: Any,
        proportional: Any,
        integral: Any,
        switched: Sequence[int] = (0,),
    ) -> None:
        dtype = plant_dtype(plant)
        n, m = plant.n_states, plant.n_inputs
        sw = [int(i) for i in switched]
        if not sw or len(set(sw)) != len(sw) or not all(0 <= i < m for i in sw):
            raise ValueError(
                f"`switched` must list distinct input indices in [0, {m}); found "
                f"{list(switched)}"
            )
        if not isinstance(plant.H, QuadraticHamiltonian):
            raise NotSupportedError(
                "PIPBC needs a quadratic energy H = x^T Q x / 2 (a linear circuit "
                f"with switches); the model's H is {type(plant.H).__name__}"
            )
        for name, part in (("J", plant.J), ("R", plant.R)):
            if part is not None and part.state_dependent:
                raise NotSupportedError(f"PIPBC needs a constant {name}")
        self.plant = plant
        self.switched = sw
        self.n_inputs = m
        self.n_states = n + len(sw)
        self.x_plant = as_state(x_star, n, "x_star", dtype)
        self.u_star = as_state(u_star, m, "u_star", dtype)
        self.K_p = as_gain(proportional, len(sw), "proportional", dtype=dtype)
        self.K_i = as_gain(integral, len(sw), "integral", dtype=dtype, definite=True)
        self.Q = plant.H.Q.detach().to(dtype)
        with torch.no_grad():
            drift = plant.vector_field(self.x_plant[None], self.u_star[None])[0]
        scale = 1.0 + float(
            (plant.J_matrix(self.x_plant[None])[0].abs().sum(-1).max())
            * (self.Q @ self.x_plant).abs().max()
        )
        if float(drift.abs().max()) > 1e-9 * scale:
            raise ValueError(
                f"`x_star`, `u_star` must be an equilibrium (f = 0); |f| = "
                f"{float(drift.abs().max()):.3g}. Use plants.boost_equilibrium or "
                "solve f(x, u) = 0 first"
            )
        self.J_i = self._switch_matrices()
        G_star = plant.G_matrix(self.x_plant[None])[0]
        self.g_tilde = G_star[:, sw]
        self.x_star = torch.cat([self.x_plant, torch.zeros(len(sw), dtype=dtype)])

    def _switch_matrices(self) -> Tensor:
        """Return ``J_i`` (k, n, n) with ``g_i(x) = J_i Q x``; check the rule."""
        plant, n = self.plant, self.plant.n_states
        dtype = self.Q.dtype
        gen = torch.Generator().manual_seed(0)
        probe = self.x_plant + (1.0 + self.x_plant.abs()) * torch.randn(
            3, n, generator=gen, dtype=dtype
        )
        mats = []
        Q_inv = torch.linalg.inv(self.Q)
        for i in range(plant.n_inputs):
            jac = torch.autograd.functional.jacobian(
                lambda x, i=i: plant.G_matrix(x[None])[0, :, i], self.x_plant
            )
            G_probe = plant.G_matrix(probe)[:, :, i]
            if i in self.switched:
                Ji = jac @ Q_inv
                pred = probe @ (Ji @ self.Q).T
                size = 1.0 + float(G_probe.abs().max())
                if float((pred - G_probe).abs().max()) > _STRUCTURE_RTOL * size:
                    raise NotSupportedError(
                        f"input {i} is switched but its column of G is not linear in "
                        "x (g_i(x) = J_i Q x); PIPBC covers switched linear circuits"
                    )
                if float((Ji + Ji.T).abs().max()) > _STRUCTURE_RTOL * (
                    1.0 + float(Ji.abs().max())
                ):
                    raise NotSupportedError(
                        f"input {i} enters as J_i Q x with J_i not skew; the switch "
                        "would not be lossless and the increments not passive"
                    )
                mats.append(0.5 * (Ji - Ji.T))
            elif float(jac.abs().max()) != 0.0:
                raise NotSupportedError(
                    f"input {i} is held constant but its column of G depends on x; "
                    "list it in `switched` or hold a constant-column input"
                )
        return torch.stack(mats)

    def retarget(self, x_star: Any, u_star: Any) -> PIPBC:
        """Return the same gains about another equilibrium (a new set-point)."""
        return PIPBC(
            self.plant, x_star, u_star, self.K_p, self.K_i, switched=self.switched
        )

    def incremental_output(self, x: Tensor) -> Tensor:
        r"""Return :math:`\tilde y = \tilde g^\top Q (x - x^*)`, shape (batch, k)."""
        d = x - self.x_plant.to(x.dtype)
        return d @ self.Q.to(x.dtype) @ self.g_tilde.to(x.dtype)

    def control(self, x: Tensor) -> Tensor:
        """Return ``u`` for augmented states ``(x, z)``, shape (batch, n_inputs)."""
        n = self.plant.n_states
        xp, z = x[:, :n], x[:, n:]
        du = -self.incremental_output(xp) @ self.K_p.to(x.dtype).T
        du = du - z @ self.K_i.to(x.dtype).T
        u = self.u_star.to(x.dtype).expand(x.shape[0], -1).clone()
        u[:, self.switched] = u[:, self.switched] + du
        return u

    def loop_field(self, plant: PortHamiltonian, x: Tensor) -> Tensor:
        """Return ``d(x, z)/dt`` of ``plant`` under the PI law."""
        x = check_batch(x, "x", self.n_states)
        n = plant.n_states
        dx = plant.vector_field(x[:, :n], self.control(x))
        return torch.cat([dx, self.incremental_output(x[:, :n])], dim=-1)

    def form(self) -> ClosedLoopForm:
        """Return ``(W, J_aug(x, z), R_aug, [B; 0])`` of the PI loop."""
        plant = self.plant
        n, k = plant.n_states, len(self.switched)
        dtype = self.Q.dtype
        Qa = torch.zeros(n + k, n + k, dtype=dtype)
        Qa[:n, :n] = self.Q
        Qa[n:, n:] = self.K_i
        W = QuadraticHamiltonian(n + k, Q=Qa, eps=0.0).to(dtype)
        W.requires_grad_(False)
        W.x0.copy_(self.x_star)
        zero = torch.zeros(1, n, dtype=dtype)
        J0 = plant.J_matrix(zero)[0]
        R0 = plant.R_matrix(zero)[0]
        g = self.g_tilde
        Ji = self.J_i

        def J_aug(xa: Tensor) -> Tensor:
            u = self.control(xa)[:, self.switched]
            top = J0.to(xa.dtype) + torch.einsum("bk,kij->bij", u, Ji.to(xa.dtype))
            out = xa.new_zeros(xa.shape[0], n + k, n + k)
            out[:, :n, :n] = top
            out[:, :n, n:] = -g.to(xa.dtype)
            out[:, n:, :n] = g.T.to(xa.dtype)
            return out

        Ra = torch.zeros(n + k, n + k, dtype=dtype)
        Ra[:n, :n] = R0 + g @ self.K_p @ g.T
        held = [i for i in range(plant.n_inputs) if i not in self.switched]
        G = None
        if held:
            B = plant.G_matrix(zero)[0][:, held]
            Ga = torch.zeros(n + k, len(held), dtype=dtype)
            Ga[:n] = B
            G = ConstantMatrix(Ga)
        return ClosedLoopForm(
            W, StateMatrix(J_aug, n + k), ConstantMatrix(Ra), G, self.x_star
        )

    def _parameters(self) -> dict[str, Any]:
        return {
            "u_star": self.u_star.tolist(),
            "proportional": np.asarray(self.K_p.cpu()).tolist(),
            "integral": np.asarray(self.K_i.cpu()).tolist(),
            "switched": self.switched,
        }
