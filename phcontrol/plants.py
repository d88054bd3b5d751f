r"""Reference plants with known ``H``, ``J``, ``R`` and ``G``, and their logs.

Every plant is a :class:`~phcontrol.PortHamiltonian` with a separable
mechanical energy :math:`H = \tfrac12 p^\top M^{-1} p + V(q)`, canonical
``J``, dissipation on the momenta and (where there is a port) an input on
the momenta, ``x = (q, p)``. Circuits use the same shape: charge is the
position, flux linkage the momentum, inductance the mass.

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

from .data import Log
from .errors import NotSupportedError, ShapeError
from .hamiltonians import (
    CosinePotential,
    GravitationalPotential,
    MechanicalHamiltonian,
    PolynomialPotential,
    QuadraticPotential,
)
from .integrators import simulate
from .models import PortHamiltonian
from .structure import CanonicalJ, CholeskyDissipation, InputMatrix

__all__ = [
    "mass_spring_damper",
    "lc_circuit",
    "rlc_circuit",
    "pendulum",
    "duffing",
    "two_body",
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
