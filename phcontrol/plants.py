r"""Reference plants with known ``H``, ``J``, ``R`` and ``G``, and their logs.

Every plant is a :class:`~phcontrol.PortHamiltonian` with a mechanical
energy :math:`H = \tfrac12 p^\top M(q)^{-1} p + V(q)`, canonical ``J``,
dissipation on the momenta and (where there is a port) an input on the
momenta, ``x = (q, p)``. ``M`` is constant for the one-degree-of-freedom
plants and the inertia-wheel pendulum, and depends on ``q`` for the
two-link arm and the cart-pole (closed forms in
:mod:`phcontrol._plant_parts`). Circuits use the same shape: charge is the
position, flux linkage the momentum, inductance the mass; the boost
converter is the exception, with its duty ratio entering through a
state-dependent ``G(x)``.

Analytic solutions: :func:`linear_solution` (matrix exponential, any
linear plant under a constant input) and :func:`pendulum_solution` (Jacobi
elliptic functions, the ideal pendulum released from rest).
:func:`make_log` turns a simulation into a :class:`~phcontrol.data.Log`
with seeded measurement noise and, if asked, seeded irregular sampling.
The plants' parameters are plain values, fixed (not learned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ._plant_parts import (
    BoostInputMatrix,
    CartPoleEnergy,
    TwoLinkArmEnergy,
    WheelPendulumEnergy,
)
from .data import Log
from .errors import NotSupportedError, ShapeError
from .hamiltonians import (
    CosinePotential,
    GravitationalPotential,
    MechanicalHamiltonian,
    PolynomialPotential,
    QuadraticHamiltonian,
    QuadraticPotential,
)
from .integrators import simulate
from .models import PortHamiltonian
from .structure import CanonicalJ, CholeskyDissipation, InputMatrix, SkewSymmetric

__all__ = [
    "mass_spring_damper",
    "lc_circuit",
    "rlc_circuit",
    "pendulum",
    "duffing",
    "two_body",
    "two_link_arm",
    "cart_pole",
    "inertia_wheel_pendulum",
    "boost_converter",
    "boost_equilibrium",
    "linear_solution",
    "pendulum_solution",
    "make_log",
]


def _positive(value: float, name: str, *, zero_ok: bool = False) -> float:
    value = float(value)
    ok = value >= 0 if zero_ok else value > 0
    if not (ok and math.isfinite(value)):
        rule = "non-negative" if zero_ok else "positive"
        raise ValueError(f"`{name}` must be {rule} and finite; found {value!r}")
    return value


def _one_dof(
    potential: torch.nn.Module, mass: float, damping: float, with_input: bool
) -> PortHamiltonian:
    dtype = torch.get_default_dtype()
    H = MechanicalHamiltonian(
        1,
        potential=potential,
        mass=torch.tensor([[mass]], dtype=dtype),
        learn_mass=False,
        eps=0.0,
    )
    R = None
    if damping > 0:
        R = CholeskyDissipation(2, mask=[False, True], init_scale=math.sqrt(damping))
        R.requires_grad_(False)
    G = None
    if with_input:
        G = InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]], dtype=dtype))
        G.requires_grad_(False)
    return PortHamiltonian(H, CanonicalJ(2), R, G)


def mass_spring_damper(
    mass: float = 1.0, stiffness: float = 1.0, damping: float = 0.1
) -> PortHamiltonian:
    r"""Return a force-driven mass-spring-damper.

    :math:`H = p^2/(2m) + k q^2/2`, :math:`R = \mathrm{diag}(0, c)`,
    :math:`G = (0, 1)^\top`; the port output is the velocity ``p/m``.

    Parameters
    ----------
    mass, stiffness : float
        ``m`` and ``k``; positive.
    damping : float, default 0.1
        Viscous coefficient ``c``; non-negative (0 gives no ``R``).

    Returns
    -------
    PortHamiltonian
        Two states ``(q, p)``, one input (force).

    Examples
    --------
    >>> import torch
    >>> model = mass_spring_damper(2.0, 8.0, 0.5)
    >>> model.energy(torch.tensor([[1.0, 2.0]])).item()  # 2**2/4 + 8/2
    5.0
    """
    m = _positive(mass, "mass")
    k = _positive(stiffness, "stiffness")
    c = _positive(damping, "damping", zero_ok=True)
    V = QuadraticPotential(torch.tensor([[k]], dtype=torch.get_default_dtype()))
    return _one_dof(V, m, c, with_input=True)


def rlc_circuit(
    resistance: float = 0.1, inductance: float = 1.0, capacitance: float = 1.0
) -> PortHamiltonian:
    r"""Return a series RLC circuit driven by a voltage source.

    States: capacitor charge ``q`` and inductor flux linkage ``φ``;
    :math:`H = q^2/(2C) + \phi^2/(2L)`, :math:`R = \mathrm{diag}(0, r)`,
    :math:`G = (0, 1)^\top`. The port output is the loop current ``φ/L``.

    Parameters
    ----------
    resistance : float, default 0.1
        Series resistance ``r``; non-negative.
    inductance, capacitance : float
        ``L`` and ``C``; positive.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> import torch
    >>> model = rlc_circuit(0.0, 2.0, 0.5)
    >>> round(model.output(torch.tensor([[0.0, 4.0]])).item(), 6)  # current phi / L
    2.0
    """
    r = _positive(resistance, "resistance", zero_ok=True)
    L = _positive(inductance, "inductance")
    C = _positive(capacitance, "capacitance")
    V = QuadraticPotential(torch.tensor([[1.0 / C]], dtype=torch.get_default_dtype()))
    return _one_dof(V, L, r, with_input=True)


def lc_circuit(inductance: float = 1.0, capacitance: float = 1.0) -> PortHamiltonian:
    r"""Return a lossless LC circuit driven by a voltage source.

    The :func:`rlc_circuit` without resistance: it oscillates at
    :math:`\omega = 1/\sqrt{LC}` and conserves ``H``.

    Parameters
    ----------
    inductance, capacitance : float
        ``L`` and ``C``; positive.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> lc_circuit().R is None
    True
    """
    return rlc_circuit(0.0, inductance, capacitance)


def pendulum(
    mass: float = 1.0,
    length: float = 1.0,
    gravity: float = 9.81,
    damping: float = 0.0,
) -> PortHamiltonian:
    r"""Return a torque-driven pendulum, ideal or damped.

    Angle ``q`` from the downward vertical, angular momentum
    :math:`p = m \ell^2 \dot q`;
    :math:`H = p^2/(2 m \ell^2) + m g \ell (1 - \cos q)`,
    :math:`R = \mathrm{diag}(0, c)`, :math:`G = (0, 1)^\top`.

    Parameters
    ----------
    mass, length, gravity : float
        ``m``, ``ℓ`` and ``g``; positive.
    damping : float, default 0.0
        Rotational damping ``c``; non-negative.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> import math, torch
    >>> model = pendulum(gravity=10.0)
    >>> model.energy(torch.tensor([[math.pi, 0.0]])).item()  # 2 m g l
    20.0
    """
    m = _positive(mass, "mass")
    ell = _positive(length, "length")
    g = _positive(gravity, "gravity")
    c = _positive(damping, "damping", zero_ok=True)
    return _one_dof(CosinePotential(m * g * ell), m * ell * ell, c, with_input=True)


def duffing(
    mass: float = 1.0, alpha: float = 1.0, beta: float = 1.0, damping: float = 0.0
) -> PortHamiltonian:
    r"""Return a forced hardening Duffing oscillator.

    :math:`H = p^2/(2m) + \alpha q^2/2 + \beta q^4/4`, so
    :math:`\ddot q = -(\alpha q + \beta q^3 + c \dot q - u)/m` in force units.

    Parameters
    ----------
    mass : float, default 1.0
        ``m``; positive.
    alpha : float, default 1.0
        Linear stiffness; any sign (negative gives a double well).
    beta : float, default 1.0
        Cubic stiffness; positive, so ``H`` is bounded below.
    damping : float, default 0.0
        ``c``; non-negative.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> import torch
    >>> duffing(alpha=-1.0, beta=1.0).energy(torch.tensor([[1.0, 0.0]])).item()
    -0.25
    """
    m = _positive(mass, "mass")
    b = _positive(beta, "beta")
    c = _positive(damping, "damping", zero_ok=True)
    coeff = torch.tensor(
        [[0.0, 0.5 * float(alpha), 0.0, 0.25 * b]], dtype=torch.get_default_dtype()
    )
    V = PolynomialPotential(1, degree=4, coefficients=coeff, eps=0.0)
    V.requires_grad_(False)
    return _one_dof(V, m, c, with_input=True)


def two_body(
    mass_1: float = 1.0,
    mass_2: float = 1.0,
    gravitational_constant: float = 1.0,
    softening: float = 0.0,
) -> PortHamiltonian:
    r"""Return the planar two-body problem: 8 states, canonical ``J``, no ports.

    ``x = (q_1, q_2, p_1, p_2)`` with planar positions and momenta;
    :math:`H = |p_1|^2/(2m_1) + |p_2|^2/(2m_2) - G m_1 m_2 / |q_1 - q_2|`.
    Total momentum :math:`p_1 + p_2` and angular momentum are invariants.

    Parameters
    ----------
    mass_1, mass_2, gravitational_constant : float
        Positive.
    softening : float, default 0.0
        See :class:`~phcontrol.hamiltonians.GravitationalPotential`.

    Returns
    -------
    PortHamiltonian

    Warnings
    --------
    Without softening ``H`` is not bounded below (collisions).

    Examples
    --------
    >>> import torch
    >>> model = two_body()
    >>> x = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    >>> model.energy(x).item()
    -1.0
    """
    m1 = _positive(mass_1, "mass_1")
    m2 = _positive(mass_2, "mass_2")
    G = _positive(gravitational_constant, "gravitational_constant")
    V = GravitationalPotential(G * m1 * m2, dim=2, softening=softening)
    M = torch.diag(torch.tensor([m1, m1, m2, m2], dtype=torch.get_default_dtype()))
    H = MechanicalHamiltonian(4, potential=V, mass=M, learn_mass=False, eps=0.0)
    return PortHamiltonian(H, CanonicalJ(8))


def _momentum_parts(
    n_dof: int, damping: Sequence[float], inputs: Sequence[Sequence[float]]
) -> tuple[CholeskyDissipation | None, InputMatrix]:
    """Damping on the momenta and an input matrix acting on the momenta."""
    dtype = torch.get_default_dtype()
    R = None
    if any(d > 0 for d in damping):
        R = CholeskyDissipation(2 * n_dof, mask=[False] * n_dof + [True] * n_dof)
        with torch.no_grad():
            R.L.copy_(
                torch.diag(
                    torch.tensor([0.0] * n_dof + [math.sqrt(d) for d in damping])
                )
            )
    Gp = torch.as_tensor(inputs, dtype=dtype).reshape(n_dof, -1)
    G = InputMatrix(
        2 * n_dof, Gp.shape[1], init=torch.cat([torch.zeros_like(Gp), Gp], dim=0)
    )
    return R, G


def two_link_arm(
    masses: Sequence[float] = (1.0, 1.0),
    lengths: Sequence[float] = (1.0, 1.0),
    gravity: float = 9.81,
    damping: Sequence[float] = (0.1, 0.1),
) -> PortHamiltonian:
    r"""Return a fully actuated planar two-link arm hanging under gravity.

    Uniform rods: centre of mass at mid-length, inertia :math:`m\ell^2/12`
    about it. ``x = (q_1, q_2, p_1, p_2)`` with the shoulder angle from the
    downward vertical and the elbow angle relative to the first link; a
    torque at each joint, :math:`G = [0; I]`, viscous joint damping
    :math:`R = \mathrm{diag}(0, 0, d_1, d_2)`. See
    :class:`~phcontrol._plant_parts.TwoLinkArmEnergy` for ``H``.

    Parameters
    ----------
    masses, lengths : pair of float
        Link masses and lengths; positive.
    gravity : float, default 9.81
        ``g``; non-negative.
    damping : pair of float, default (0.1, 0.1)
        Joint damping; non-negative.

    Returns
    -------
    PortHamiltonian
        Four states, two inputs (joint torques); ``y`` is the joint velocity.

    Examples
    --------
    >>> import torch
    >>> arm = two_link_arm()
    >>> arm.energy(torch.zeros(1, 4)).item(), arm.n_inputs
    (0.0, 2)
    """
    m1, m2 = (_positive(v, "masses") for v in masses)
    l1, l2 = (_positive(v, "lengths") for v in lengths)
    g = _positive(gravity, "gravity", zero_ok=True)
    d = [_positive(v, "damping", zero_ok=True) for v in damping]
    r1, r2 = 0.5 * l1, 0.5 * l2
    i1, i2 = m1 * l1 * l1 / 12.0, m2 * l2 * l2 / 12.0
    H = TwoLinkArmEnergy(
        a=i1 + i2 + m1 * r1 * r1 + m2 * (l1 * l1 + r2 * r2),
        b=m2 * l1 * r2,
        c=i2 + m2 * r2 * r2,
        g1=(m1 * r1 + m2 * l1) * g,
        g2=m2 * r2 * g,
    )
    R, G = _momentum_parts(2, d, [[1.0, 0.0], [0.0, 1.0]])
    return PortHamiltonian(H, CanonicalJ(4), R, G).requires_grad_(False)


def cart_pole(
    cart_mass: float = 1.0,
    pole_mass: float = 0.1,
    length: float = 0.5,
    gravity: float = 9.81,
    damping: float = 0.0,
) -> PortHamiltonian:
    r"""Return a cart-pole driven by a horizontal force on the cart.

    ``x = (s, theta, p_s, p_theta)``: cart position, pole angle from the
    downward vertical (upright at :math:`\pi`), and their momenta;
    :math:`G = (0, 0, 1, 0)^\top`, so ``y`` is the cart velocity. See
    :class:`~phcontrol._plant_parts.CartPoleEnergy` for ``H``; it has one
    actuator for two degrees of freedom (underactuated).

    Parameters
    ----------
    cart_mass, pole_mass, length, gravity : float
        Positive.
    damping : float, default 0.0
        Viscous friction of the cart; non-negative.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> import math, torch
    >>> model = cart_pole()
    >>> x = torch.tensor([[0.0, math.pi, 0.0, 0.0]])
    >>> model.vector_field(x).abs().max().item() < 1e-5  # upright is at rest
    True
    """
    H = CartPoleEnergy(cart_mass, pole_mass, length, gravity)
    c = _positive(damping, "damping", zero_ok=True)
    R, G = _momentum_parts(2, [c, 0.0], [[1.0], [0.0]])
    return PortHamiltonian(H, CanonicalJ(4), R, G).requires_grad_(False)


def inertia_wheel_pendulum(
    pendulum_inertia: float = 0.1,
    wheel_inertia: float = 0.01,
    gravity_torque: float = 1.0,
) -> PortHamiltonian:
    r"""Return an inertia-wheel pendulum, actuated through its wheel only.

    ``x = (theta, phi, p_theta, p_phi)``; the motor torque acts on the
    relative wheel angle ``phi``, :math:`G = (0, 0, 0, 1)^\top`, so the
    pendulum angle is unactuated. Lossless. See
    :class:`~phcontrol._plant_parts.WheelPendulumEnergy` for ``H``.

    Parameters
    ----------
    pendulum_inertia, wheel_inertia, gravity_torque : float
        ``I_p``, ``I_w`` and ``m g l``; positive.

    Returns
    -------
    PortHamiltonian

    Examples
    --------
    >>> import math, torch
    >>> model = inertia_wheel_pendulum()
    >>> round(model.energy(torch.tensor([[math.pi, 0.0, 0.0, 0.0]])).item(), 12)
    2.0
    """
    H = WheelPendulumEnergy(pendulum_inertia, wheel_inertia, gravity_torque)
    _, G = _momentum_parts(2, [0.0, 0.0], [[0.0], [1.0]])
    return PortHamiltonian(H, CanonicalJ(4), None, G).requires_grad_(False)


def boost_converter(
    inductance: float = 2e-3,
    capacitance: float = 470e-6,
    load: float = 20.0,
) -> PortHamiltonian:
    r"""Return the averaged DC-DC boost converter with a resistive load.

    ``x = (phi_L, q_C)``: inductor flux and capacitor charge;
    :math:`H = \phi_L^2/(2L) + q_C^2/(2C)`,
    :math:`J = [[0, -1], [1, 0]]`, :math:`R = \mathrm{diag}(0, 1/R_L)` and
    inputs ``(d, E)``, the duty ratio and the source voltage (see
    :class:`~phcontrol._plant_parts.BoostInputMatrix`), so that

    .. math:: L \dot i_L = E - (1 - d) v_C, \qquad
       C \dot v_C = (1 - d) i_L - v_C / R_L .

    Parameters
    ----------
    inductance, capacitance, load : float
        ``L`` (H), ``C`` (F) and ``R_L`` (ohm); positive.

    Returns
    -------
    PortHamiltonian
        Two states, two inputs; the duty ratio's port output is 0.

    Examples
    --------
    >>> import torch
    >>> model = boost_converter()
    >>> x, u = boost_equilibrium(model, 24.0, 12.0)
    >>> model.vector_field(x[None], u[None]).abs().max().item() < 1e-9
    True
    """
    L = _positive(inductance, "inductance")
    C = _positive(capacitance, "capacitance")
    RL = _positive(load, "load")
    dtype = torch.get_default_dtype()
    H = QuadraticHamiltonian(
        2, Q=torch.diag(torch.tensor([1.0 / L, 1.0 / C], dtype=dtype)), eps=0.0
    )
    J = SkewSymmetric(2, init=torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=dtype))
    R = CholeskyDissipation(2, mask=[False, True], init_scale=math.sqrt(1.0 / RL))
    return PortHamiltonian(H, J, R, BoostInputMatrix(L, C)).requires_grad_(False)


def boost_equilibrium(
    model: PortHamiltonian, voltage: float, source: float
) -> tuple[Tensor, Tensor]:
    r"""Return the equilibrium ``(x*, u*)`` of a boost converter at a voltage.

    With :math:`v^* > E`: :math:`d^* = 1 - E/v^*`,
    :math:`i^* = v^{*2}/(R_L E)`, ``x* = (L i*, C v*)``, ``u* = (d*, E)``.

    Parameters
    ----------
    model : PortHamiltonian
        Built by :func:`boost_converter`.
    voltage : float
        Output voltage ``v*``; must exceed ``source``.
    source : float
        Source voltage ``E``; positive.

    Returns
    -------
    x_star : Tensor, shape (2,)
    u_star : Tensor, shape (2,)

    Examples
    --------
    >>> x, u = boost_equilibrium(boost_converter(), 24.0, 12.0)
    >>> [round(v, 6) for v in u.tolist()]
    [0.5, 12.0]
    """
    E = _positive(source, "source")
    v = _positive(voltage, "voltage")
    if not v > E:
        raise ValueError(
            f"`voltage` must exceed `source` (a boost converter steps up); found "
            f"voltage={v}, source={E}"
        )
    G = model.G
    if not isinstance(G, BoostInputMatrix):
        raise NotSupportedError(
            "boost_equilibrium needs a model built by boost_converter(); this one "
            f"has G of type {type(G).__name__}"
        )
    L, C = (1.0 / float(w) for w in G.inv)
    like = G.inv
    RL = 1.0 / float(model.R_matrix(like.new_zeros(1, 2))[0, 1, 1])
    i = v * v / (RL * E)
    x = torch.tensor([L * i, C * v], dtype=like.dtype)
    u = torch.tensor([1.0 - E / v, E], dtype=like.dtype)
    return x, u


def linear_solution(
    model: PortHamiltonian, x0: Tensor, t: Tensor, u: Tensor | None = None
) -> Tensor:
    r"""Return the exact response of a linear plant under a constant input.

    For :math:`\dot x = A x + B u` with :math:`A = (J - R) Q`, :math:`B = G`
    and ``u`` constant,
    :math:`x(t) = e^{At} x_0 + \int_0^t e^{As} ds\, B u`, computed with one
    matrix exponential of an augmented matrix per time.

    Parameters
    ----------
    model : PortHamiltonian
        A linear model: constant ``J``, ``R``, ``G`` and quadratic ``H``
        with minimum at 0 (the plants above with quadratic potentials).
    x0 : Tensor, shape (batch, n_states)
        Initial states.
    t : Tensor, shape (T,)
        Times.
    u : Tensor, shape (batch, n_inputs) or (n_inputs,), optional
        Constant input (default zero).

    Returns
    -------
    Tensor, shape (batch, T, n_states)

    Raises
    ------
    NotSupportedError
        If ``model`` is not linear.

    Examples
    --------
    >>> import math, torch
    >>> model = lc_circuit()
    >>> x = linear_solution(model, torch.tensor([[1.0, 0.0]]),
    ...                     torch.tensor([math.pi / 2]))
    >>> [round(v, 6) + 0.0 for v in x[0, 0].tolist()]
    [0.0, -1.0]
    """
    x0 = x0 if x0.dim() == 2 else x0.unsqueeze(0)
    n, m = model.n_states, model.n_inputs
    dtype, dev = x0.dtype, x0.device
    with torch.no_grad():
        zero = torch.zeros(1, n, dtype=dtype, device=dev)
        Q = model.H.grad(torch.eye(n, dtype=dtype, device=dev)) - model.H.grad(zero)
        probe = torch.randn(3, n, dtype=dtype, device=dev, generator=_gen(dev))
        linear = torch.allclose(model.H.grad(probe), probe @ Q, rtol=1e-10, atol=1e-12)
        linear &= bool((model.H.grad(zero).abs() < 1e-12).all())
        structural = [model.J, model.R, model.G]
        linear &= not any(p is not None and p.state_dependent for p in structural)
        if not linear:
            raise NotSupportedError(
                "linear_solution needs a linear model (quadratic H with minimum at "
                "0, constant J, R and G); this one is not. Simulate it with "
                "simulate(..., method='gonzalez') and a small dt instead."
            )
        JR, G = model.structure(zero)
        A = JR[0] @ Q.T
        B = G[0]
        uu = (
            torch.zeros(x0.shape[0], m, dtype=dtype, device=dev)
            if u is None
            else torch.as_tensor(u, dtype=dtype, device=dev).reshape(-1, m)
        )
        aug = torch.zeros(n + m, n + m, dtype=dtype, device=dev)
        aug[:n, :n] = A
        aug[:n, n:] = B
        out = []
        for tau in torch.as_tensor(t, dtype=dtype, device=dev).reshape(-1):
            E = torch.linalg.matrix_exp(aug * tau)
            out.append(x0 @ E[:n, :n].T + uu @ E[:n, n:].T)
    return torch.stack(out, dim=1)


def _gen(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


def pendulum_solution(
    angle: float,
    t: Tensor,
    *,
    mass: float = 1.0,
    length: float = 1.0,
    gravity: float = 9.81,
) -> Tensor:
    r"""Return the ideal pendulum released from rest at ``angle``.

    With :math:`k = \sin(\theta_0/2)`, :math:`\omega = \sqrt{g/\ell}` and
    ``K`` the complete elliptic integral of the first kind,

    .. math:: q(t) = 2 \arcsin\bigl(k\, \mathrm{sn}(K - \omega t, k)\bigr),
       \qquad p(t) = -2 m \ell^2 k \omega\, \mathrm{cn}(K - \omega t, k).

    Parameters
    ----------
    angle : float
        Release angle :math:`\theta_0`, with :math:`|\theta_0| < \pi`.
    t : Tensor, shape (T,)
        Times.

    Returns
    -------
    Tensor, shape (T, 2)
        ``(q, p)`` at the times, in ``t``'s dtype.

    Other Parameters
    ----------------
    mass, length, gravity : float
        As in :func:`pendulum`.

    Examples
    --------
    >>> import torch
    >>> x = pendulum_solution(0.5, torch.tensor([0.0]))
    >>> [round(v, 12) + 0.0 for v in x[0].tolist()]
    [0.5, 0.0]
    """
    from scipy.special import ellipj, ellipk

    if not abs(angle) < math.pi:
        raise ValueError(f"`angle` must satisfy |angle| < pi; found {angle!r}")
    tt = torch.as_tensor(t)
    k = math.sin(0.5 * angle)
    omega = math.sqrt(gravity / length)
    K = float(ellipk(k * k))
    sn, cn, _, _ = ellipj(K - omega * tt.detach().cpu().double().numpy(), k * k)
    q = 2.0 * np.arcsin(k * sn)
    p = -2.0 * mass * length * length * k * omega * cn
    out = np.stack([q, p], axis=-1)
    dtype = tt.dtype if tt.is_floating_point() else torch.get_default_dtype()
    return torch.as_tensor(out, dtype=dtype, device=tt.device)


def make_log(
    model: PortHamiltonian,
    x0: Tensor,
    u: Tensor | np.ndarray | None = None,
    dt: float = 0.01,
    *,
    steps: int | None = None,
    outputs: Sequence[int] | None = None,
    noise_std: float = 0.0,
    jitter: float = 0.0,
    seed: int = 0,
    substeps: int = 4,
) -> Log:
    r"""Simulate ``model`` and record it as a log, with noise if asked.

    The states are simulated with the Gonzalez discrete gradient and
    ``substeps`` steps per sample interval; ``u[k]`` is held on
    ``[t_k, t_{k+1})``.

    Parameters
    ----------
    model : PortHamiltonian
        The plant.
    x0 : Tensor, shape (n_states,) or (1, n_states)
        Initial state.
    u : array_like, shape (N, n_inputs), optional
        Input samples; by default zero, with ``N = steps + 1``.
    dt : float, default 0.01
        Nominal sample step.

    Returns
    -------
    Log
        ``t`` (N,), ``u`` (N, n_inputs), ``z`` (N, n_outputs) with noise,
        and the noise-free states ``x`` (N, n_states).

    Other Parameters
    ----------------
    steps : int, optional
        Number of intervals; needed when ``u`` is None.
    outputs : sequence of int, optional
        State coordinates measured as ``z`` (default the positions ``q``).
    noise_std : float, default 0.0
        Standard deviation of the Gaussian noise added to ``z``.
    jitter : float, default 0.0
        Irregular sampling: each interval is ``dt (1 + jitter e_k)`` with
        ``e_k`` uniform in ``[-1/2, 1/2]``; ``0 <= jitter < 1`` keeps the
        times increasing.
    seed : int, default 0
        Seed of the noise and the jitter (a private generator; the global
        one is untouched).
    substeps : int, default 4
        Integrator steps per interval.

    Examples
    --------
    >>> import torch
    >>> log = make_log(mass_spring_damper(), torch.tensor([1.0, 0.0]), steps=50,
    ...                dt=0.1, noise_std=1e-3, jitter=0.2, seed=1)
    >>> len(log), log.n_inputs, log.n_outputs, log.n_states
    (51, 1, 1, 2)
    """
    dt = _positive(dt, "dt")
    _positive(noise_std, "noise_std", zero_ok=True)
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"`jitter` must be in [0, 1); found {jitter!r}")
    x = torch.as_tensor(x0)
    x = x if x.dim() == 2 else x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ShapeError(
            f"`x0` must be one state (1, n_states); found {tuple(x.shape)}"
        )
    m = model.n_inputs
    if u is None:
        if steps is None:
            raise TypeError("`steps` is required when `u` is None")
        u_arr = np.zeros((steps + 1, m))
    else:
        u_arr = np.asarray(u, dtype=np.float64).reshape(-1, m)
        steps = u_arr.shape[0] - 1
    rng = np.random.default_rng(seed)
    widths = dt * (1.0 + jitter * (rng.random(steps) - 0.5)) if jitter else None
    ut = torch.as_tensor(u_arr, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        if widths is None:
            X = simulate(
                model, x, ut[None, :-1], dt, method="gonzalez", substeps=substeps
            ).x[0]
            t = dt * np.arange(steps + 1)
        else:
            rows = [x]
            for k in range(steps):
                traj = simulate(
                    model, rows[-1], ut[None, k : k + 1], float(widths[k]),
                    method="gonzalez", substeps=substeps,
                )  # fmt: skip
                rows.append(traj.x[:, -1])
            X = torch.cat(rows, dim=0)
            t = np.concatenate([[0.0], np.cumsum(widths)])
    xs = X.detach().cpu().double().numpy()
    cols = list(range(model.n_states // 2)) if outputs is None else list(outputs)
    z = xs[:, cols] + noise_std * rng.standard_normal((xs.shape[0], len(cols)))
    return Log(
        t=t,
        u=u_arr,
        z=z,
        x=xs,
        output_names=tuple(f"x{c}" for c in cols),
        source=f"phcontrol.plants ({type(model.H.potentials[0]).__name__})"
        if isinstance(model.H, MechanicalHamiltonian)
        else "phcontrol.plants",
        dt=dt,
    )
