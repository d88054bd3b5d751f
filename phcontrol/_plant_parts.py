r"""Closed-form energies and port matrices of the multi-body reference plants.

Each rigid-body energy is :math:`H = \tfrac12 p^\top M(q)^{-1} p + V(q)` with
``x = (q, p)`` and ``M(q)``, its derivatives :math:`\partial M/\partial q_i`
and ``V`` written out, so that

.. math:: \nabla_q H = -\tfrac12\, v^\top \frac{\partial M}{\partial q_i} v
   + \nabla V(q), \qquad \nabla_p H = v = M(q)^{-1} p .

Angles are measured from the downward vertical (``V`` is smallest hanging
down). The parameters are fixed buffers; the plants in
:mod:`phcontrol.plants` build these parts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .hamiltonians import AbstractHamiltonian
from .structure import AbstractStructureMatrix

__all__ = [
    "AbstractRigidEnergy",
    "TwoLinkArmEnergy",
    "CartPoleEnergy",
    "WheelPendulumEnergy",
    "BoostInputMatrix",
]


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"`{name}` must be positive and finite; found {value!r}")
    return value


class AbstractRigidEnergy(AbstractHamiltonian):
    """Base of the closed-form rigid-body energies.

    Subclasses set ``n_dof`` and define :meth:`mass`, :meth:`mass_derivative`,
    :meth:`potential` and :meth:`potential_grad`.
    """

    n_dof: int
    separable = False

    def mass(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Return ``M(q)``, shape (batch, n_dof, n_dof)."""
        raise NotImplementedError

    def mass_derivative(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Return ``dM/dq_i`` stacked on axis 1, shape (batch, n_dof, n_dof, n_dof)."""
        raise NotImplementedError

    def potential(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Return ``V(q)``, shape (batch,)."""
        raise NotImplementedError

    def potential_grad(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Return ``dV/dq``, shape (batch, n_dof)."""
        raise NotImplementedError

    def velocity(self, q: Tensor, p: Tensor) -> Tensor:
        """Return ``M(q)^{-1} p``, shape (batch, n_dof)."""
        return torch.linalg.solve(self.mass(q), p.unsqueeze(-1)).squeeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        k = self.n_dof
        q, p = x[:, :k], x[:, k:]
        return 0.5 * (p * self.velocity(q, p)).sum(-1) + self.potential(q)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``(dH/dq, dH/dp)``, shape (batch, 2 n_dof), in closed form."""
        k = self.n_dof
        q, p = x[:, :k], x[:, k:]
        v = self.velocity(q, p)
        dM = self.mass_derivative(q)
        kinetic_q = -0.5 * torch.einsum("bj,bijk,bk->bi", v, dM, v)
        return torch.cat([kinetic_q + self.potential_grad(q), v], dim=-1)

    def lower_bound(self) -> float:
        """Return 0: the kinetic energy is >= 0 and ``V`` >= 0 by construction."""
        return 0.0


class TwoLinkArmEnergy(AbstractRigidEnergy):
    r"""A planar two-link arm hanging under gravity.

    .. math::
        M(q) = \begin{bmatrix} a + 2b\cos q_2 & c + b\cos q_2 \\
        c + b\cos q_2 & c \end{bmatrix},\quad
        V(q) = g_1 (1 - \cos q_1) + g_2 (1 - \cos(q_1 + q_2)),

    with ``q_1`` the shoulder angle from the downward vertical and ``q_2``
    the elbow angle relative to the first link. For links of mass
    ``m_i``, length ``l_i``, centre of mass at ``r_i`` and inertia ``I_i``
    about it: :math:`a = I_1 + I_2 + m_1 r_1^2 + m_2 (l_1^2 + r_2^2)`,
    :math:`b = m_2 l_1 r_2`, :math:`c = I_2 + m_2 r_2^2`,
    :math:`g_1 = (m_1 r_1 + m_2 l_1) g`, :math:`g_2 = m_2 r_2 g`. The energy is
    linear in ``(a, b, c, g_1, g_2)``, which identification uses.

    Parameters
    ----------
    a, b, c : float
        Inertia parameters; ``M(q)`` is positive definite for every ``q``
        exactly when ``c > 0`` and :math:`a c - c^2 - b^2 > 0`.
    g1, g2 : float
        Gravity parameters; non-negative.

    Examples
    --------
    >>> import torch
    >>> H = TwoLinkArmEnergy(a=2.0, b=0.5, c=0.5, g1=10.0, g2=3.0)
    >>> x = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    >>> H(x).item(), H.grad(x).abs().max().item()
    (0.0, 0.0)
    """

    def __init__(self, a: float, b: float, c: float, g1: float, g2: float) -> None:
        super().__init__()
        a, b, c = float(a), float(b), _positive(c, "c")
        # det M(q) = a c - c^2 - b^2 cos^2 q2, smallest at cos^2 q2 = 1.
        if not a * c - c * c - b * b > 0:
            raise ValueError(
                "`a`, `b`, `c` must give a positive definite mass matrix at every "
                f"elbow angle (a c - c^2 - b^2 > 0); found a={a}, b={b}, c={c}"
            )
        for name, value in (("g1", g1), ("g2", g2)):
            if not (float(value) >= 0 and math.isfinite(float(value))):
                raise ValueError(f"`{name}` must be >= 0 and finite; found {value!r}")
        self.n_dof = 2
        self.n_states = 4
        dtype = torch.get_default_dtype()
        self.register_buffer(
            "params", torch.tensor([a, b, c, float(g1), float(g2)], dtype=dtype)
        )

    def mass(self, q: Tensor) -> Tensor:
        """Return ``M(q)``, shape (batch, 2, 2)."""
        a, b, c = self.params.to(q.dtype)[:3]
        cos2 = torch.cos(q[:, 1])
        m11 = a + 2.0 * b * cos2
        m12 = c + b * cos2
        m22 = c.expand_as(cos2)
        return torch.stack(
            [torch.stack([m11, m12], -1), torch.stack([m12, m22], -1)], -2
        )

    def mass_derivative(self, q: Tensor) -> Tensor:
        """Return ``dM/dq``, shape (batch, 2, 2, 2); ``dM/dq_1 = 0``."""
        b = self.params.to(q.dtype)[1]
        s = -b * torch.sin(q[:, 1])
        out = q.new_zeros(q.shape[0], 2, 2, 2)
        out[:, 1, 0, 0] = 2.0 * s
        out[:, 1, 0, 1] = s
        out[:, 1, 1, 0] = s
        return out

    def potential(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        g1, g2 = self.params.to(q.dtype)[3:]
        s1 = torch.sin(0.5 * q[:, 0])
        s12 = torch.sin(0.5 * (q[:, 0] + q[:, 1]))
        return 2.0 * (g1 * s1 * s1 + g2 * s12 * s12)

    def potential_grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, 2)."""
        g1, g2 = self.params.to(q.dtype)[3:]
        s12 = g2 * torch.sin(q[:, 0] + q[:, 1])
        return torch.stack([g1 * torch.sin(q[:, 0]) + s12, s12], -1)


class CartPoleEnergy(AbstractRigidEnergy):
    r"""A pole (point mass on a massless rod) on a cart: ``q = (s, theta)``.

    .. math::
        M(\theta) = \begin{bmatrix} m_c + m_p & m_p \ell\cos\theta \\
        m_p \ell \cos\theta & m_p \ell^2 \end{bmatrix}, \quad
        V = m_p g \ell\,(1 - \cos\theta),

    ``s`` the cart position, ``theta`` the pole angle from the downward
    vertical (upright at :math:`\theta = \pi`).

    Parameters
    ----------
    cart_mass, pole_mass, length, gravity : float
        ``m_c``, ``m_p``, ``\ell`` and ``g``; positive.

    Examples
    --------
    >>> import math, torch
    >>> H = CartPoleEnergy(1.0, 0.1, 0.5, 10.0)
    >>> round(H(torch.tensor([[0.0, math.pi, 0.0, 0.0]])).item(), 12)  # 2 m g l
    1.0
    """

    def __init__(
        self, cart_mass: float, pole_mass: float, length: float, gravity: float
    ) -> None:
        super().__init__()
        mc = _positive(cart_mass, "cart_mass")
        mp = _positive(pole_mass, "pole_mass")
        ell = _positive(length, "length")
        g = _positive(gravity, "gravity")
        self.n_dof = 2
        self.n_states = 4
        self.register_buffer(
            "params", torch.tensor([mc, mp, ell, g], dtype=torch.get_default_dtype())
        )

    def mass(self, q: Tensor) -> Tensor:
        """Return ``M(q)``, shape (batch, 2, 2)."""
        mc, mp, ell, _ = self.params.to(q.dtype)
        c = mp * ell * torch.cos(q[:, 1])
        m11 = (mc + mp).expand_as(c)
        m22 = (mp * ell * ell).expand_as(c)
        return torch.stack([torch.stack([m11, c], -1), torch.stack([c, m22], -1)], -2)

    def mass_derivative(self, q: Tensor) -> Tensor:
        """Return ``dM/dq``, shape (batch, 2, 2, 2); only ``dM/dtheta`` is non-zero."""
        _, mp, ell, _ = self.params.to(q.dtype)
        s = -mp * ell * torch.sin(q[:, 1])
        out = q.new_zeros(q.shape[0], 2, 2, 2)
        out[:, 1, 0, 1] = s
        out[:, 1, 1, 0] = s
        return out

    def potential(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        _, mp, ell, g = self.params.to(q.dtype)
        s = torch.sin(0.5 * q[:, 1])
        return 2.0 * mp * g * ell * s * s

    def potential_grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, 2)."""
        _, mp, ell, g = self.params.to(q.dtype)
        return torch.stack(
            [torch.zeros_like(q[:, 0]), mp * g * ell * torch.sin(q[:, 1])], -1
        )


class WheelPendulumEnergy(AbstractRigidEnergy):
    r"""An inertia-wheel pendulum: ``q = (theta, phi)``, constant mass matrix.

    ``theta`` is the pendulum angle from the downward vertical and ``phi``
    the wheel angle relative to the pendulum;

    .. math:: M = \begin{bmatrix} I_p + I_w & I_w \\ I_w & I_w \end{bmatrix},
       \qquad V = k\,(1 - \cos\theta),

    with ``I_p`` the pendulum's inertia about the pivot (wheel mass
    included), ``I_w`` the wheel's inertia and ``k = m g \ell``.

    Parameters
    ----------
    pendulum_inertia, wheel_inertia, gravity_torque : float
        ``I_p``, ``I_w`` and ``k``; positive.

    Examples
    --------
    >>> import torch
    >>> H = WheelPendulumEnergy(0.1, 0.01, 1.0)
    >>> [[round(v, 6) for v in row] for row in H.mass(torch.zeros(1, 2))[0].tolist()]
    [[0.11, 0.01], [0.01, 0.01]]
    """

    def __init__(
        self, pendulum_inertia: float, wheel_inertia: float, gravity_torque: float
    ) -> None:
        super().__init__()
        ip = _positive(pendulum_inertia, "pendulum_inertia")
        iw = _positive(wheel_inertia, "wheel_inertia")
        k = _positive(gravity_torque, "gravity_torque")
        self.n_dof = 2
        self.n_states = 4
        dtype = torch.get_default_dtype()
        self.register_buffer("M", torch.tensor([[ip + iw, iw], [iw, iw]], dtype=dtype))
        self.register_buffer("k", torch.tensor(k, dtype=dtype))

    def mass(self, q: Tensor) -> Tensor:
        """Return ``M``, shape (batch, 2, 2)."""
        return self.M.to(q.dtype).expand(q.shape[0], 2, 2)

    def mass_derivative(self, q: Tensor) -> Tensor:
        """Return zeros, shape (batch, 2, 2, 2): ``M`` is constant."""
        return q.new_zeros(q.shape[0], 2, 2, 2)

    def velocity(self, q: Tensor, p: Tensor) -> Tensor:
        """Return ``M^{-1} p``, shape (batch, 2)."""
        return p @ torch.linalg.inv(self.M.to(p.dtype)).T

    def grad(self, x: Tensor) -> Tensor:
        """Return ``(dH/dq, dH/dp)``, shape (batch, 4)."""
        q, p = x[:, :2], x[:, 2:]
        return torch.cat([self.potential_grad(q), self.velocity(q, p)], dim=-1)

    def potential(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        s = torch.sin(0.5 * q[:, 0])
        return 2.0 * self.k.to(q.dtype) * s * s

    def potential_grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, 2)."""
        k = self.k.to(q.dtype)
        return torch.stack([k * torch.sin(q[:, 0]), torch.zeros_like(q[:, 1])], -1)


class BoostInputMatrix(AbstractStructureMatrix):
    r"""Port matrix of the averaged boost converter, ``x = (phi_L, q_C)``.

    .. math:: G(x) = \begin{bmatrix} v_C & 1 \\ -i_L & 0 \end{bmatrix}, \qquad
       i_L = \phi_L / L, \quad v_C = q_C / C,

    for the inputs ``(d, E)``: the duty ratio ``d`` of the switch and the
    source voltage ``E``. The first column is :math:`J_1 \nabla H` with
    :math:`J_1 = [[0, 1], [-1, 0]]` skew, so the switch supplies no power
    (its port output is 0) and ``E`` supplies ``E i_L``.

    Parameters
    ----------
    inductance, capacitance : float
        ``L`` and ``C``; positive.

    Examples
    --------
    >>> import torch
    >>> G = BoostInputMatrix(0.5, 0.25)
    >>> G(torch.tensor([[1.0, 1.0]]))[0].tolist()
    [[4.0, 1.0], [-2.0, 0.0]]
    """

    def __init__(self, inductance: float, capacitance: float) -> None:
        super().__init__()
        self.n_states = 2
        self.n_inputs = 2
        self.state_dependent = True
        dtype = torch.get_default_dtype()
        self.register_buffer(
            "inv",
            torch.tensor(
                [1.0 / _positive(inductance, "inductance"),
                 1.0 / _positive(capacitance, "capacitance")],
                dtype=dtype,
            ),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """Return ``G(x)``, shape (batch, 2, 2)."""
        inv = self.inv.to(x.dtype)
        i, v = x[:, 0] * inv[0], x[:, 1] * inv[1]
        one, zero = torch.ones_like(i), torch.zeros_like(i)
        return torch.stack([torch.stack([v, one], -1), torch.stack([-i, zero], -1)], -2)
