r"""Energy pumping for swing-up, and the switch to a local stabiliser.

:class:`EnergyPumping` drives the energy
:math:`H_s = H + \tfrac12 k_x \|G_p^\top q\|^2` (the plant's, plus an
optional spring on the actuated positions, which keeps a cart near the
origin) to the energy ``E*`` of the target:

.. math:: u = -k_x G_p^\top q - \sigma(x)\, y, \qquad
   \sigma = k (H_s - E^*) \min\Bigl(1, \frac{u_{max}}{|k (H_s - E^*)|\,\|y\|}\Bigr),

so :math:`\dot H_s = -\nabla H_s^\top R \nabla H_s - \sigma \|y\|^2`: energy
flows in while it is below ``E*`` and out above. The loop is pH-like with
:math:`R_d = R + \sigma(x) G G^\top`, *indefinite* while ``σ < 0``; a
certificate of it says so. At rest with ``y = 0`` the law gives ``u = 0``
whatever the energy deficit; :class:`SwingUp` kicks the plant there, pumps
elsewhere and hands over to a local stabiliser near the target.

References
----------
K. J. Åström and K. Furuta, "Swinging up a pendulum by energy control",
Automatica 36 (2000) 287-295.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..hamiltonians import AbstractHamiltonian
from ..models import PortHamiltonian
from ._base import (
    AbstractController,
    ClosedLoopForm,
    MatrixSum,
    StateMatrix,
    actuated_momenta,
    as_state,
    mechanical_energy,
    plant_dtype,
)

__all__ = ["CartPolePumping", "EnergyPumping", "LQR", "PumpedEnergy", "SwingUp"]


class PumpedEnergy(AbstractHamiltonian):
    r"""``H_s = H + k_x ||G_p^T q||^2 / 2``: the energy the pumping law regulates.

    Parameters
    ----------
    H : AbstractHamiltonian
        The plant's energy, ``x = (q, p)``.
    selector : Tensor, shape (n_dof, n_inputs)
        ``G_p``.
    position_gain : float
        ``k_x >= 0``.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.cart_pole()
    >>> Hs = PumpedEnergy(plant.H, torch.tensor([[1.0], [0.0]]), 2.0)
    >>> Hs(torch.tensor([[1.0, 0.0, 0.0, 0.0]])).item()
    1.0
    """

    def __init__(
        self, H: AbstractHamiltonian, selector: Tensor, position_gain: float
    ) -> None:
        super().__init__()
        self.H = H
        self.n_states = H.n_states
        self.register_buffer("selector", torch.as_tensor(selector).clone())
        self.position_gain = float(position_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H_s(x)``, shape (batch,)."""
        k = self.n_states // 2
        s = x[:, :k] @ self.selector.to(x.dtype)
        return self.H(x) + 0.5 * self.position_gain * (s * s).sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``grad H_s(x)``, shape (batch, n_states)."""
        k = self.n_states // 2
        S = self.selector.to(x.dtype)
        dq = self.position_gain * (x[:, :k] @ S) @ S.T
        return self.H.grad(x) + torch.cat([dq, torch.zeros_like(dq)], dim=-1)

    def lower_bound(self) -> float:
        """Return the plant energy's bound (the spring is >= 0)."""
        return self.H.lower_bound()


class EnergyPumping(AbstractController):
    r"""Drive the energy to that of a target state (Åström-Furuta style).

    Parameters
    ----------
    plant : PortHamiltonian
        Mechanical design model with constant ``G = [0; G_p]``.
    x_star : array_like, shape (n_states,)
        The target whose energy ``E* = H_s(x*)`` is pumped to (upright,
        at rest, for a swing-up).
    gain : float
        ``k > 0``.
    max_input : float, optional
        Bound on the pumping part of ``u`` (Euclidean norm); none by default.
    position_gain : float, default 0.0
        ``k_x``: spring on the actuated positions (a cart).

    Examples
    --------
    At rest at the bottom the law gives no input:

    >>> import math, torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.pendulum().double()
    >>> pump = EnergyPumping(plant, [math.pi, 0.0], gain=1.0, max_input=3.0)
    >>> pump(0.0, torch.zeros(1, 2, dtype=torch.float64)).tolist()
    [[0.0]]
    >>> pump(0.0, torch.tensor([[0.0, 1.0]], dtype=torch.float64)).tolist()
    [[3.0]]
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        x_star: Any,
        gain: float,
        *,
        max_input: float | None = None,
        position_gain: float = 0.0,
    ) -> None:
        H = mechanical_energy(plant)
        dtype = plant_dtype(plant)
        Gp = actuated_momenta(plant, torch.zeros(1, plant.n_states, dtype=dtype))
        for name, value in (("gain", gain), ("position_gain", position_gain)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be >= 0 and finite; found {value!r}")
        if not gain > 0:
            raise ValueError(f"`gain` must be positive; found {gain!r}")
        if max_input is not None and not (max_input > 0 and math.isfinite(max_input)):
            raise ValueError(f"`max_input` must be positive; found {max_input!r}")
        self.plant = plant
        self.n_states = plant.n_states
        self.n_inputs = plant.n_inputs
        self.gain = float(gain)
        self.max_input = None if max_input is None else float(max_input)
        self.position_gain = float(position_gain)
        self.Gp = Gp
        self.H_s = PumpedEnergy(H, Gp, position_gain)
        self.x_star = as_state(x_star, plant.n_states, "x_star", dtype)
        with torch.no_grad():
            self.target_energy = float(self.H_s(self.x_star[None])[0])
        self.lower_energy = float(self.H_s.lower_bound())

    def energy_error(self, x: Tensor) -> Tensor:
        """Return ``H_s(x) - E*``, shape (batch,)."""
        return self.H_s(x) - self.target_energy

    def pumping_gain(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        r"""Return :math:`\sigma(x)`, shape (batch,): the injected damping."""
        y = self.plant.output(x) if y is None else y
        s = self.gain * self.energy_error(x)
        if self.max_input is None:
            return s
        size = (s.abs() * y.norm(dim=-1)).clamp_min(1e-300)
        return s * torch.clamp(self.max_input / size, max=1.0)

    def control(self, x: Tensor) -> Tensor:
        """Return ``u(x)``, shape (batch, n_inputs)."""
        k = self.n_states // 2
        y = self.plant.output(x)
        u = -self.pumping_gain(x, y).unsqueeze(-1) * y
        if self.position_gain:
            u = u - self.position_gain * (x[:, :k] @ self.Gp.to(x.dtype))
        return u

    def form(self) -> ClosedLoopForm:
        r"""Return ``(H_s, J, R + sigma G G^T, G)``; ``R_d`` is indefinite."""
        p = self.plant
        assert p.G is not None

        def injected(x: Tensor) -> Tensor:
            G = p.G_matrix(x)
            return self.pumping_gain(x)[:, None, None] * (G @ G.transpose(1, 2))

        R = MatrixSum(p.R, StateMatrix(injected, p.n_states))
        return ClosedLoopForm(self.H_s, p.J, R, p.G, self.x_star)

    def _parameters(self) -> dict[str, Any]:
        return {
            "gain": self.gain,
            "max_input": self.max_input,
            "position_gain": self.position_gain,
            "target_energy": self.target_energy,
        }


def _wrap(angle: Tensor) -> Tensor:
    return torch.atan2(torch.sin(angle), torch.cos(angle))


class SwingUp(AbstractController):
    """Pump energy away from the target, stabilise near it, kick at rest.

    Parameters
    ----------
    pump : EnergyPumping or CartPolePumping
        The law used far from the target.
    local : AbstractController
        The stabiliser near the target (energy shaping, LQR, ...); its
        ``x_star`` is the target.
    angle : int
        Index of the angle coordinate in ``x`` that must reach its target.
    switch_angle : float, default 0.3
        The local law acts where the wrapped angle error is below this
        (radians).
    kick : float, optional
        Input applied where the pumping law is blind: near rest at the
        bottom (see :meth:`kick_input`). Default: the pump's ``max_input``,
        or 1.
    rest_band : float, default 0.05
        Width of the kick region, as a fraction of the energy gap and of
        the speed scale.

    Notes
    -----
    The switch is static (a function of ``x``), so the loop has no single
    energy: :func:`~phcontrol.control.closed_loop` returns the plant under
    the feedback, audited in the plant's ``H``.

    Examples
    --------
    >>> import math, torch
    >>> import phcontrol as phc
    >>> from phcontrol.control import EnergyShaping
    >>> plant = phc.plants.pendulum().double()
    >>> pump = EnergyPumping(plant, [math.pi, 0.0], gain=1.0, max_input=3.0)
    >>> local = EnergyShaping(plant, [math.pi], 30.0, 8.0, periodic=True)
    >>> ctrl = SwingUp(pump, local, angle=0)
    >>> ctrl(0.0, torch.zeros(1, 2, dtype=torch.float64)).tolist()  # the kick
    [[3.0]]
    """

    def __init__(
        self,
        pump: EnergyPumping,
        local: AbstractController,
        angle: int,
        *,
        switch_angle: float = 0.3,
        kick: float | None = None,
        rest_band: float = 0.05,
    ) -> None:
        if local.n_states != pump.n_states or local.n_inputs != pump.n_inputs:
            raise ValueError("`pump` and `local` must act on the same model")
        if not 0 <= angle < pump.n_states // 2:
            raise ValueError(
                f"`angle` must index a position in [0, {pump.n_states // 2}); "
                f"found {angle}"
            )
        self.plant = pump.plant
        self.pump = pump
        self.local = local
        self.angle = int(angle)
        self.switch_angle = float(switch_angle)
        default = pump.max_input if pump.max_input is not None else 1.0
        self.kick = float(default if kick is None else kick)
        if not 0 < rest_band < 1:
            raise ValueError(f"`rest_band` must be in (0, 1); found {rest_band!r}")
        self.rest_band = float(rest_band)
        self.low = float(pump.lower_energy)
        if not math.isfinite(self.low) or not self.low < pump.target_energy:
            raise ValueError(
                "the pumped energy needs a finite lower bound below the target "
                f"energy; found bound {self.low!r}, target {pump.target_energy!r}"
            )
        self.n_states = pump.n_states
        self.n_inputs = pump.n_inputs
        self.x_star = local.x_star

    def near_target(self, x: Tensor) -> Tensor:
        """Return where the local law acts, shape (batch,), bool."""
        i = self.angle
        err = _wrap(x[:, i] - self.x_star[i].to(x.dtype))
        return err.abs() < self.switch_angle

    def control(self, x: Tensor) -> Tensor:
        """Return ``u(x)``, shape (batch, n_inputs)."""
        near = self.near_target(x).unsqueeze(-1)
        u_far = self.pump.control(x) + self.kick_input(x)
        return torch.where(near, self.local.control(x), u_far)

    def kick_input(self, x: Tensor) -> Tensor:
        r"""Return the kick, shape (batch, n_inputs): continuous, zero away from rest.

        :math:`\kappa\, \max(0, 1 - \|y\|/y_0)\, \max(0, 1 - e/e_0)` with
        ``e`` the energy above the lowest and ``e_0``, ``y_0`` the
        ``rest_band`` fractions of the energy gap and of
        :math:`\sqrt{2 E^*}`; being continuous in ``x``, it keeps the
        implicit step's equation solvable.
        """
        gap = self.pump.target_energy - self.low
        y = self.plant.output(x)
        e = self.pump.energy_error(x) + gap
        y0 = self.rest_band * math.sqrt(2.0 * max(gap, 1e-300))
        w = torch.clamp(1.0 - y.norm(dim=-1) / y0, min=0.0)
        w = w * torch.clamp(1.0 - e / (self.rest_band * gap), min=0.0)
        return self.kick * w.unsqueeze(-1) * torch.ones_like(y)

    def _parameters(self) -> dict[str, Any]:
        return {
            "pump": self.pump.to_dict(),
            "local": self.local.to_dict(),
            "angle": self.angle,
            "switch_angle": self.switch_angle,
            "kick": self.kick,
        }


class LQR(AbstractController):
    r"""Linear-quadratic regulator on the linearisation at an equilibrium.

    ``A, B`` from :func:`phcontrol.to_state_space` at ``x_star`` and
    ``K`` from ``control.lqr``; :math:`u = -K (x - x^*)` with the listed
    angle errors wrapped to :math:`(-\pi, \pi]`.

    Parameters
    ----------
    plant : PortHamiltonian
        Design model; ``x_star`` must be an equilibrium with ``u = 0``.
    x_star : array_like, shape (n_states,)
        Equilibrium to stabilise.
    state_weight : float or array_like
        ``Q`` of the cost (number, diagonal or matrix).
    input_weight : float or array_like
        ``R`` of the cost.
    angles : sequence of int, default ()
        State indices that are angles.

    Examples
    --------
    >>> import math, torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.pendulum().double()
    >>> lqr = LQR(plant, [math.pi, 0.0], 1.0, 1.0, angles=[0])
    >>> bool(lqr(0.0, torch.tensor([[math.pi + 0.1, 0.0]]))[0, 0] < 0)
    True
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        x_star: Any,
        state_weight: Any,
        input_weight: Any,
        *,
        angles: tuple[int, ...] | list[int] = (),
    ) -> None:
        import control

        from ..linear import to_state_space
        from ._base import as_gain

        dtype = plant_dtype(plant)
        n, m = plant.n_states, plant.n_inputs
        self.plant = plant
        self.n_states = n
        self.n_inputs = m
        self.x_star = as_state(x_star, n, "x_star", dtype)
        Qw = as_gain(state_weight, n, "state_weight", dtype=torch.float64)
        Rw = as_gain(
            input_weight, m, "input_weight", dtype=torch.float64, definite=True
        )
        ss = to_state_space(plant, x_eq=self.x_star.detach().cpu().numpy())
        K, S, _ = control.lqr(ss.A, ss.B, Qw.numpy(), Rw.numpy())
        self.K = torch.as_tensor(np.asarray(K), dtype=dtype)
        self.S = torch.as_tensor(np.asarray(S), dtype=dtype)
        self.angles = [int(i) for i in angles]

    def error(self, x: Tensor) -> Tensor:
        """Return ``x - x*`` with angle errors wrapped, shape (batch, n_states)."""
        d = x - self.x_star.to(x.dtype)
        if self.angles:
            d = d.clone()
            d[:, self.angles] = _wrap(d[:, self.angles])
        return d

    def control(self, x: Tensor) -> Tensor:
        """Return ``-K (x - x*)``, shape (batch, n_inputs)."""
        return -self.error(x) @ self.K.to(x.dtype).T

    def _parameters(self) -> dict[str, Any]:
        return {"K": np.asarray(self.K.cpu()).tolist(), "angles": self.angles}


class CartPolePumping(AbstractController):
    r"""Pump the pole's energy of a cart-pole through the cart's acceleration.

    With the pole energy
    :math:`E_p = \tfrac12 m_p \ell^2 \dot\theta^2 + m_p g \ell (1 - \cos\theta)`,
    a cart acceleration ``a`` gives
    :math:`\dot E_p = -m_p \ell\, a\, \dot\theta \cos\theta`, so

    .. math:: a = \mathrm{sat}_{a_{max}}\bigl(k (E_p - E^*)\, \dot\theta
       \cos\theta\bigr) - k_x s - k_v \dot s

    drives :math:`E_p` to the upright energy :math:`E^* = 2 m_p g \ell`
    while a spring and a damper hold the cart. The force that produces
    ``a`` follows from the equations of motion (collocated partial
    feedback linearisation):
    :math:`u = (m_c + m_p \sin^2\theta)\, a - m_p g \sin\theta\cos\theta
    - m_p \ell \dot\theta^2 \sin\theta + c\, \dot s`.

    Parameters
    ----------
    plant : PortHamiltonian
        Built by :func:`phcontrol.plants.cart_pole`.
    gain : float
        ``k > 0``.
    max_acceleration : float
        ``a_max > 0``, bound of the pumping part.
    position_gain, velocity_gain : float
        ``k_x`` and ``k_v``, non-negative.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.cart_pole().double()
    >>> pump = CartPolePumping(plant, gain=5.0, max_acceleration=5.0)
    >>> pump(0.0, torch.zeros(1, 4, dtype=torch.float64)).tolist()  # blind at rest
    [[0.0]]
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        gain: float,
        max_acceleration: float,
        *,
        position_gain: float = 0.0,
        velocity_gain: float = 0.0,
    ) -> None:
        from .._plant_parts import CartPoleEnergy
        from ..errors import NotSupportedError

        if not isinstance(plant.H, CartPoleEnergy):
            raise NotSupportedError(
                "CartPolePumping needs plants.cart_pole(); the model's H is "
                f"{type(plant.H).__name__}. Use EnergyPumping for other models"
            )
        for name, value in (
            ("gain", gain),
            ("max_acceleration", max_acceleration),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"`{name}` must be positive; found {value!r}")
        for name, value in (
            ("position_gain", position_gain),
            ("velocity_gain", velocity_gain),
        ):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"`{name}` must be >= 0; found {value!r}")
        dtype = plant_dtype(plant)
        self.plant = plant
        self.n_states = 4
        self.n_inputs = 1
        self.gain = float(gain)
        self.max_acceleration = float(max_acceleration)
        self.max_input = None
        self.position_gain = float(position_gain)
        self.velocity_gain = float(velocity_gain)
        mc, mp, ell, g = (float(v) for v in plant.H.params)
        self.params = (mc, mp, ell, g)
        self.target_energy = 2.0 * mp * g * ell
        self.lower_energy = 0.0
        self.x_star = torch.tensor([0.0, math.pi, 0.0, 0.0], dtype=dtype)

    def energy_error(self, x: Tensor) -> Tensor:
        """Return ``E_p(x) - E*``, shape (batch,)."""
        _, mp, ell, g = self.params
        v = self.plant.H.velocity(x[:, :2], x[:, 2:])  # type: ignore[operator]
        s = torch.sin(0.5 * x[:, 1])
        pole = 0.5 * mp * ell * ell * v[:, 1] ** 2 + 2.0 * mp * g * ell * s * s
        return pole - self.target_energy

    def acceleration(self, x: Tensor) -> Tensor:
        """Return the commanded cart acceleration ``a(x)``, shape (batch,)."""
        v = self.plant.H.velocity(x[:, :2], x[:, 2:])  # type: ignore[operator]
        pump = self.gain * self.energy_error(x) * v[:, 1] * torch.cos(x[:, 1])
        pump = pump.clamp(-self.max_acceleration, self.max_acceleration)
        return pump - self.position_gain * x[:, 0] - self.velocity_gain * v[:, 0]

    def control(self, x: Tensor) -> Tensor:
        """Return the cart force ``u(x)``, shape (batch, 1)."""
        mc, mp, ell, g = self.params
        v = self.plant.H.velocity(x[:, :2], x[:, 2:])  # type: ignore[operator]
        th, w = x[:, 1], v[:, 1]
        sn, cs = torch.sin(th), torch.cos(th)
        friction = self.plant.R_matrix(x)[:, 2, 2] * v[:, 0]
        a = self.acceleration(x)
        u = (mc + mp * sn * sn) * a - mp * g * sn * cs - mp * ell * w * w * sn
        return (u + friction).unsqueeze(-1)

    def _parameters(self) -> dict[str, Any]:
        return {
            "gain": self.gain,
            "max_acceleration": self.max_acceleration,
            "position_gain": self.position_gain,
            "velocity_gain": self.velocity_gain,
        }
