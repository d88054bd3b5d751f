r"""Two cascaded water tanks as a port-Hamiltonian model, and its exact step.

States are the stored volumes ``x = (x_1, x_2)`` of the upper and lower
tank, in level units (each tank's area is one; the output gain absorbs the
lower tank's scale). The energy is the water's potential energy, each tank
raised by an elevation ``e_i`` above what it drains into:

.. math:: H(x) = \sum_i e_i \bigl(\sqrt{x_i^2 + \epsilon^2} - \epsilon\bigr)
   + \tfrac12 x_i^2,
   \qquad p_i = \partial H / \partial x_i \approx e_i + x_i \ (x_i \gg \epsilon),

strictly convex with its strict minimum, zero, at the empty tanks. The
pressures ``p_i`` drive every flow through a dissipation matrix that is
positive semidefinite for any parameters,

.. math:: R(x) = a \begin{pmatrix} 1 & -1 \\ -1 & 1 \end{pmatrix}
   + \begin{pmatrix} d_1 & 0 \\ 0 & b \end{pmatrix}, \qquad a, b, d_1 \ge 0,

with ``a = f_12 / (p_1 - p_2)`` (the Torricelli outflow of the upper tank
and the share of its overflow that falls into the lower tank),
``d_1 = f_lost / p_1`` (overflow lost from the upper tank) and
``b = f_2 / p_2`` (the lower tank's outflow and overflow). ``J = 0`` and
the pump fills the upper tank through ``G = (g, 0)^T``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ._config import Configurable
from .hamiltonians import AbstractHamiltonian
from .models import PortHamiltonian
from .structure import AbstractStructureMatrix, InputMatrix

__all__: list[str] = []

ELEVATION = (30.0, 10.0)
"""Elevations ``(e_1, e_2)`` in level units: far above any level the fitted
tanks reach, so the flow between them never meets the cut-off of
:class:`TankDissipation` in operation."""

SMOOTHING = 0.5
"""Width ``epsilon`` over which the elevation term of ``H`` rounds off at an
empty tank (level units)."""

_HALVINGS = 12
"""Step halvings a Newton iteration of :class:`TankStepper` may take."""

_TORRICELLI_EPS = 5e-2
"""Level below which the square-root outflow law becomes linear (finite
slope at an empty tank)."""

_OVERFLOW_WIDTH = 0.2
"""Level width over which an overflow switches on."""

_CUTOFF = 1.0
"""Pressure difference below which the flow between the tanks is cut off
smoothly, keeping its conductance finite."""


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


def _softabs(x: Tensor, eps: float) -> Tensor:
    return torch.sqrt(x * x + eps * eps) - eps


class TankHamiltonian(AbstractHamiltonian):
    r"""Potential energy of water in tanks stacked above each other.

    .. math:: H(x) = \sum_i e_i \bigl(\sqrt{x_i^2 + \epsilon^2} - \epsilon\bigr)
       + \tfrac12 x_i^2

    Strictly convex (second derivative at least one), with its strict
    minimum ``H = 0`` at the empty tanks ``x = 0``.

    Parameters
    ----------
    elevation : sequence of float, default ELEVATION
        Elevation ``e_i > 0`` of each tank above what it drains into.
    smoothing : float, default SMOOTHING
        Width ``epsilon > 0`` of the rounding at an empty tank.

    Examples
    --------
    >>> import torch
    >>> H = TankHamiltonian(elevation=(3.0, 1.0), smoothing=1e-9)
    >>> round(H(torch.tensor([[2.0, 1.0]])).item(), 6)  # 3*2 + 2 + 1*1 + 0.5
    9.5
    """

    def __init__(
        self, elevation: Sequence[float] = ELEVATION, smoothing: float = SMOOTHING
    ) -> None:
        super().__init__()
        e = torch.as_tensor(list(elevation), dtype=torch.float64)
        if e.ndim != 1 or bool((e <= 0).any()) or smoothing <= 0:
            raise ValueError(
                "`elevation` must be positive numbers and `smoothing` positive; "
                f"found {list(elevation)} and {smoothing}"
            )
        self.n_states = int(e.numel())
        self.smoothing = float(smoothing)
        self.register_buffer("elevation", e.to(torch.get_default_dtype()))

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        e = self.elevation.to(x.dtype)
        return (e * _softabs(x, self.smoothing) + 0.5 * x * x).sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        """Return the pressures ``p = grad H(x)``, shape (batch, n_states)."""
        e = self.elevation.to(x.dtype)
        eps = self.smoothing
        return e * x / torch.sqrt(x * x + eps * eps) + x

    def discrete_gradient(self, x: Tensor, x_next: Tensor) -> Tensor:
        """Return the coordinate-wise difference quotient of ``H``.

        It satisfies ``H(x') - H(x) = grad_bar . (x' - x)`` exactly and is
        formed without subtracting two values of ``H``; shape (batch, n).
        """
        e = self.elevation.to(x.dtype)
        eps = self.smoothing
        s, s_next = torch.sqrt(x * x + eps * eps), torch.sqrt(x_next * x_next + eps**2)
        total = x + x_next
        return e * total / (s + s_next) + 0.5 * total

    def discrete_gradient_slope(self, x: Tensor, x_next: Tensor) -> Tensor:
        """Return d(discrete gradient)_i / d x'_i, shape (batch, n)."""
        e = self.elevation.to(x.dtype)
        eps = self.smoothing
        s, s_next = torch.sqrt(x * x + eps * eps), torch.sqrt(x_next * x_next + eps**2)
        den = s + s_next
        return e * (den - (x + x_next) * x_next / s_next) / (den * den) + 0.5

    def lower_bound(self) -> float:
        """Return 0, the energy of the empty tanks."""
        return 0.0


class ZeroInterconnection(AbstractStructureMatrix):
    """The zero interconnection ``J = 0`` (water has no inertia here).

    Parameters
    ----------
    n_states : int
        Number of states.

    Examples
    --------
    >>> import torch
    >>> ZeroInterconnection(2)(torch.zeros(3, 2)).shape
    torch.Size([3, 2, 2])
    """

    def __init__(self, n_states: int) -> None:
        super().__init__()
        self.n_states = n_states
        self.state_dependent = False

    def forward(self, x: Tensor) -> Tensor:
        """Return zeros, shape (batch, n_states, n_states)."""
        return x.new_zeros(x.shape[0], self.n_states, self.n_states)


class TankDissipation(AbstractStructureMatrix):
    r"""Flows of two cascaded tanks with overflow, as a dissipation matrix.

    Flows, in level units per unit time, for levels ``h = x``:

    * upper to lower tank: :math:`f_{12} = k_1 h_1^{\alpha_1} + \rho\, o_1(h_1)`;
    * lost from the upper tank: :math:`(1 - \rho)\, o_1(h_1)`;
    * out of the lower tank: :math:`f_2 = k_2 h_2^{\alpha_2} + o_2(h_2)`,

    where the exponents start at Torricelli's 1/2 and stay in (0, 1), and
    :math:`o_i(h) \approx r_i\, \max(h - L_i, 0)` switches on smoothly
    at the overflow level ``L_i``. The square root becomes linear below a
    small level, so every conductance stays finite. Each flow runs down
    the pressure difference that drives it (:math:`p_1 - p_2`, :math:`p_1`,
    :math:`p_2`), which makes ``R`` a sum of positive semidefinite terms.

    Parameters
    ----------
    elevation, smoothing
        As in :class:`TankHamiltonian` (the pressures are its gradient).
    outflow : sequence of float, default (0.4, 0.4)
        Initial ``k_1, k_2`` (positive).
    overflow_level : sequence of float, default (8.0, 9.0)
        Initial ``L_1, L_2``.
    overflow_rate : sequence of float, default (1.0, 0.05)
        Initial ``r_1, r_2`` (positive).
    overflow_share : float, default 0.5
        Initial ``rho`` in (0, 1), the share of the upper tank's overflow
        that falls into the lower tank.
    exponent : sequence of float, default (0.5, 0.5)
        Initial ``alpha_1, alpha_2`` in (0, 1).

    Examples
    --------
    >>> import torch
    >>> R = TankDissipation()
    >>> M = R(torch.tensor([[4.0, 3.0], [0.0, 0.0]])).detach()
    >>> bool((torch.linalg.eigvalsh(M) >= 0).all())
    True
    """

    def __init__(
        self,
        elevation: Sequence[float] = ELEVATION,
        smoothing: float = SMOOTHING,
        *,
        outflow: Sequence[float] = (0.4, 0.4),
        overflow_level: Sequence[float] = (8.0, 9.0),
        overflow_rate: Sequence[float] = (1.0, 0.05),
        overflow_share: float = 0.5,
        exponent: Sequence[float] = (0.5, 0.5),
    ) -> None:
        super().__init__()
        self.n_states = 2
        self.state_dependent = True
        self.pressure = TankHamiltonian(elevation, smoothing)

        def raw(values: Sequence[float]) -> nn.Parameter:
            return nn.Parameter(torch.tensor([_inverse_softplus(v) for v in values]))

        self.raw_outflow = raw(outflow)
        self.raw_overflow_rate = raw(overflow_rate)
        self.overflow_level = nn.Parameter(torch.tensor(list(overflow_level)))
        share = float(overflow_share)
        self.raw_share = nn.Parameter(torch.tensor(math.log(share / (1.0 - share))))
        self.raw_exponent = nn.Parameter(
            torch.tensor([math.log(a / (1.0 - a)) for a in exponent])
        )
        self.register_buffer(
            "_pattern", torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), persistent=False
        )

    def coefficients(self) -> dict[str, list[float] | float]:
        """Return the flow parameters as plain numbers (level units)."""
        with torch.no_grad():
            k, rate, level, share, alpha = self.values()
            return {
                "outflow": k.tolist(),
                "overflow_level": level.tolist(),
                "overflow_rate": rate.tolist(),
                "overflow_share": float(share),
                "exponent": alpha.tolist(),
            }

    def values(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Return ``k``, ``r``, ``L``, ``rho`` and ``alpha`` as constrained tensors."""
        sp = nn.functional.softplus
        return (
            sp(self.raw_outflow),
            sp(self.raw_overflow_rate),
            self.overflow_level,
            torch.sigmoid(self.raw_share),
            torch.sigmoid(self.raw_exponent),
        )

    def flows(
        self, x: Tensor, values: tuple[Tensor, ...] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``f_12``, the lost overflow and ``f_2``, each (batch,).

        ``values`` (from :meth:`values`) saves recomputing the parameters.
        """
        k, rate, level, share, alpha = self.values() if values is None else values
        hp = torch.relu(x)
        # h**alpha above _TORRICELLI_EPS, linear near 0, 0 below.
        base = k * hp * (hp + _TORRICELLI_EPS) ** (alpha - 1.0)
        w = _OVERFLOW_WIDTH
        sp = nn.functional.softplus
        on = torch.relu(sp((x - level) / w) - sp(-level / w))
        over = (rate * w) * on * (x > 0)
        spill = share * over[:, 0]
        return base[:, 0] + spill, over[:, 0] - spill, base[:, 1] + over[:, 1]

    def forward(self, x: Tensor, values: tuple[Tensor, ...] | None = None) -> Tensor:
        """Return R(x), shape (batch, 2, 2)."""
        f12, lost, f2 = self.flows(x, values)
        p = self.pressure.grad(x)
        t = ((p[:, 0] - p[:, 1]) / _CUTOFF).clamp(0.0, None)
        # f12 * s(d) / d with s the smoothstep 3t^2 - 2t^3 on [0, 1], 1 above.
        per_d = torch.where(
            t < 1.0, t * (3.0 - 2.0 * t) / _CUTOFF, 1.0 / (t * _CUTOFF).clamp_min(1.0)
        )
        a = f12 * per_d
        # Drains: flow / pressure where the tank holds water (the flows are
        # zero elsewhere, and at most linear in the level near empty).
        drains = torch.stack([lost, f2], dim=-1)
        wet = p > 0
        drains = torch.where(wet, drains / torch.where(wet, p, 1.0), 0.0)
        R = a[:, None, None] * self._pattern.to(x.dtype)
        return R + torch.diag_embed(drains)


class TankOutput(nn.Module, Configurable):
    r"""Measured output of the lower tank: gain, offset and saturation.

    .. math:: z = \min(\gamma\, x_2 + \beta,\; z_{\max}), \qquad \gamma > 0.

    The clip acts on the measurement only; the pH model stays passive.

    Parameters
    ----------
    gain : float
        Initial ``gamma`` (positive).
    offset : float
        Initial ``beta``.
    saturation : float
        ``z_max``, in the same (normalised) units as ``z``; ``inf`` for none.

    Examples
    --------
    >>> import torch
    >>> out = TankOutput(gain=2.0, offset=1.0, saturation=5.0)
    >>> out(torch.tensor([[0.0, 1.0], [0.0, 3.0]])).squeeze(-1).tolist()
    [3.0, 5.0]
    """

    def __init__(self, gain: float, offset: float, saturation: float) -> None:
        super().__init__()
        self.raw_gain = nn.Parameter(torch.tensor(_inverse_softplus(float(gain))))
        self.offset = nn.Parameter(torch.tensor(float(offset)))
        self.saturation = float(saturation)

    def gain(self) -> Tensor:
        """Return ``gamma``, a scalar tensor."""
        return nn.functional.softplus(self.raw_gain)

    def forward(self, x: Tensor) -> Tensor:
        """Map states (..., 2) to measured outputs (..., 1)."""
        z = self.gain().to(x.dtype) * x[..., 1:2] + self.offset.to(x.dtype)
        return z.clamp(max=self.saturation)

    def inverse(self, z: Tensor) -> Tensor:
        """Return the lower tank's level that reads ``z`` (no saturation)."""
        return (z - self.offset.to(z.dtype)) / self.gain().to(z.dtype)


def supports(model: PortHamiltonian) -> bool:
    """Return True when ``model`` is a tank model :class:`TankStepper` steps."""
    G = model.G
    return (
        isinstance(model.H, TankHamiltonian)
        and isinstance(model.R, TankDissipation)
        and isinstance(model.J, ZeroInterconnection)
        and (G is None or (isinstance(G, InputMatrix) and not G.state_dependent))
    )


class TankStepper:
    r"""A discrete-gradient step for a tank model, exact in its energy balance.

    With the structure frozen at an explicit midpoint predictor
    :math:`\tilde x \approx x + \tfrac{\Delta t}{2} f(x)` (a draining tank
    decays exponentially instead, so the predictor never overshoots to an
    empty tank), the step solves

    .. math:: x' = x + \Delta t\,\bigl(-R(\tilde x)\, \bar\nabla H(x, x')
       + G \bar u\bigr)

    for ``x'``, with :math:`\bar\nabla H` the coordinate-wise difference
    quotient of ``H``. Hence, to the solve's tolerance,
    :math:`H(x') - H(x) = -\Delta t\, \bar\nabla H^\top R(\tilde x)
    \bar\nabla H + \Delta t\, \bar y^\top \bar u`. The 2 x 2 Newton solve
    runs without autograd; gradients pass through it by one differentiable
    Newton correction at the solution (implicit function theorem).

    Parameters
    ----------
    model : PortHamiltonian
        A model for which :func:`supports` is True.
    dt : float
        Step size.
    tol : float
        Scaled residual tolerance.
    max_iter : int
        Newton iteration cap.
    """

    def __init__(self, model: PortHamiltonian, dt: float, tol: float, max_iter: int):
        self.model = model
        self.H = model.H
        self.R = model.R
        self.dt = dt
        self.tol = tol
        self.max_iter = max_iter
        self.values = model.R.values()
        like = next(model.parameters())
        self.g = (
            model.G_matrix(like.new_zeros(1, 2))[0]
            if model.n_inputs
            else like.new_zeros(2, 0)
        )

    def _drive(self, u: Tensor) -> Tensor:
        if self.g.shape[1] == 0:
            return u.new_zeros(u.shape[0], 2)
        return u @ self.g.to(u.dtype).T

    def _residual(self, x: Tensor, xn: Tensor, R: Tensor, drive: Tensor) -> Tensor:
        grad_bar = self.H.discrete_gradient(x, xn)
        flow = -(R @ grad_bar.unsqueeze(-1)).squeeze(-1)
        return xn - x - self.dt * (flow + drive)

    def structure(self, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``R`` at the predictor and the pump term ``G u``."""
        drive = self._drive(u)
        R0 = self.R(x, self.values)
        f0 = -(R0 @ self.H.grad(x).unsqueeze(-1)).squeeze(-1) + drive
        # A draining tank follows x exp(dt f / 2x), which equals the Euler
        # half step to second order but never empties it: with stiff
        # outflows an Euler predictor would land on an empty tank and freeze
        # the structure there.
        half = 0.5 * self.dt * f0
        draining = (half < 0) & (x > 0)
        safe = torch.where(draining, x, torch.ones_like(x))
        decay = safe * torch.exp(torch.where(draining, half / safe, 0.0 * half))
        self._predictor = torch.where(draining, decay, x + half)
        return self.R(self._predictor, self.values), drive

    def step(self, x: Tensor, u_mid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Advance one step.

        Parameters
        ----------
        x : Tensor, shape (batch, 2)
        u_mid : Tensor, shape (batch, n_inputs)

        Returns
        -------
        x_next : Tensor, shape (batch, 2)
        R : Tensor, shape (batch, 2, 2)
            Dissipation used by the step (at the predictor).
        converged : Tensor, shape (batch,), bool
        """
        dt = self.dt
        R, drive = self.structure(x, u_mid)
        with torch.no_grad():
            xd, Rd, dd = x.detach(), R.detach(), drive.detach()
            # Start from the explicit midpoint step, third-order close.
            p_mid = self.H.grad(self._predictor.detach())
            xn = xd - dt * (Rd @ p_mid.unsqueeze(-1)).squeeze(-1) + dt * dd
            F = self._residual(xd, xn, Rd, dd)
            for _ in range(self.max_iter):
                size = F.abs().amax(-1)
                ok = size <= self.tol * (1.0 + xn.abs().amax(-1))
                if bool((ok | ~torch.isfinite(size)).all()):
                    break
                # Newton with backtracking: near an empty tank the elevation
                # term of the discrete gradient turns steeply, where full
                # Newton steps can cycle.
                step = _solve_2x2(self._jacobian(xd, xn, Rd), F)
                frac = torch.ones_like(size)[:, None]
                for _ in range(_HALVINGS):
                    trial = xn - frac * step
                    F_trial = self._residual(xd, trial, Rd, dd)
                    worse = (F_trial.abs().amax(-1) > size) & ~ok
                    if not bool(worse.any()):
                        break
                    frac = torch.where(worse[:, None], 0.5 * frac, frac)
                xn, F = trial, F_trial
            ok = F.abs().amax(-1) <= self.tol * (1.0 + xn.abs().amax(-1))
            jac = self._jacobian(xd, xn, Rd)
        if torch.is_grad_enabled() and (x.requires_grad or R.requires_grad):
            xn = xn - _solve_2x2(jac, self._residual(x, xn, R, drive))
        return xn, R, ok

    def _jacobian(self, x: Tensor, xn: Tensor, R: Tensor) -> Tensor:
        slope = self.H.discrete_gradient_slope(x, xn)
        eye = torch.eye(2, dtype=x.dtype, device=x.device)
        return eye + self.dt * R * slope[:, None, :]

    def balance_terms(
        self, x: Tensor, x_next: Tensor, R: Tensor, u_mid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Return the supplied and dissipated energy of a step, each (batch,)."""
        grad_bar = self.H.discrete_gradient(x, x_next)
        dissipated = self.dt * (grad_bar * (R @ grad_bar.unsqueeze(-1))[..., 0]).sum(-1)
        supplied = self.dt * (grad_bar * self._drive(u_mid)).sum(-1)
        return supplied, dissipated


def _solve_2x2(A: Tensor, b: Tensor) -> Tensor:
    """Solve batched 2 x 2 systems ``A y = b`` in closed form."""
    a, c = A[:, 0, 0], A[:, 0, 1]
    d, e = A[:, 1, 0], A[:, 1, 1]
    det = a * e - c * d
    y0 = (e * b[:, 0] - c * b[:, 1]) / det
    y1 = (a * b[:, 1] - d * b[:, 0]) / det
    return torch.stack([y0, y1], dim=-1)


def rollout(
    model: PortHamiltonian,
    x0: Tensor,
    u_sub: Tensor,
    substeps: int,
    tol: float = 1e-12,
    max_iter: int = 20,
) -> tuple[Tensor, Tensor]:
    """Simulate from ``x0`` (batch, 2) under sub-step inputs (batch, T*S, m).

    Returns the states at the samples (batch, T + 1, 2) and convergence flags.
    """
    stepper = TankStepper(model, 1.0 / substeps, tol, max_iter)
    x = x0
    xs = [x]
    ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for i in range(u_sub.shape[1]):
        x, _, conv = stepper.step(x, u_sub[:, i])
        ok = ok & conv
        if (i + 1) % substeps == 0:
            xs.append(x)
    return torch.stack(xs, dim=1), ok


@torch.no_grad()
def audit(model: PortHamiltonian, starts: Tensor, u_sub: Tensor, substeps: int):
    """Energy-balance audit of every step from ``starts`` (see energy_audit)."""
    stepper = TankStepper(model, 1.0 / substeps, 1e-12, 50)
    x = starts
    worst = worst_rel = x.new_zeros(())
    supplied = dissipated = x.new_zeros(())
    for i in range(u_sub.shape[1]):
        xn, R, _ = stepper.step(x, u_sub[:, i])
        s, d = stepper.balance_terms(x, xn, R, u_sub[:, i])
        H_next = model.H(xn)
        r = (H_next - model.H(x) + d - s).abs()
        worst = torch.maximum(worst, r.max())
        worst_rel = torch.maximum(worst_rel, (r / (1.0 + H_next.abs())).max())
        supplied, dissipated = supplied + s.sum(), dissipated + d.sum()
        x = xn
    return {
        "max_residual": float(worst),
        "max_relative_residual": float(worst_rel),
        "steps": int(u_sub.shape[0] * u_sub.shape[1]),
        "supplied": float(supplied),
        "dissipated": float(dissipated),
    }


def build_tank_system(
    u: np.ndarray, z: np.ndarray, z_max: float, jitter: float = 0.0, seed: int = 0
) -> tuple[PortHamiltonian, TankOutput, np.ndarray]:
    """Build a tank model for scaled data, with states for the encoder.

    Parameters
    ----------
    u : ndarray, shape (N, 1)
        Pump input scaled by its standard deviation (not centred: a pump at
        zero volts adds no water).
    z : ndarray, shape (N, 1)
        Lower-tank reading, centred and scaled.
    z_max : float
        Saturation of the reading, in the scaled units of ``z``.
    jitter : float, default 0.0
        Relative spread of the initial outflow coefficients (one common
        factor ``exp(jitter * N(0, 1))``) and of the pump gain (another), so
        that seeds start apart.
    seed : int, default 0
        Seed of the jitter.

    Returns
    -------
    system, output, states
        The pH model, its output map and a state estimate per sample
        (N, 2) from inverting the output and the lower tank's mass balance.
    """
    from scipy.signal import savgol_filter

    span = float(z.max() - z.min())
    # Level units of about a volt: the reading spans some 7 V on these logs.
    gain = span / 7.0
    offset = float(z.min()) - 2.0 * gain
    h2 = np.clip((z[:, 0] - offset) / gain, 0.05, None)
    u_mean = float(u.mean())
    # One factor for both outflows keeps the estimated upper level, and so
    # the overflow level placed above it, on the same scale for every seed.
    spread = np.exp(jitter * np.random.default_rng(seed).standard_normal(2))
    k1 = k2 = 0.4 * spread[0]
    # Steady state: pump inflow = k1 sqrt(h1) = k2 sqrt(h2).
    g = spread[1] * k2 * float(np.sqrt(h2).mean()) / u_mean
    dh2 = savgol_filter(h2, 11, 2, deriv=1)
    inflow = np.clip(dh2 + k2 * np.sqrt(h2), 0.05, None)
    h1 = (inflow / k1) ** 2
    level1 = float(np.quantile(h1, 0.98))
    level2 = float((z_max - offset) / gain) + 1.0
    R = TankDissipation(
        outflow=(k1, k2),
        overflow_level=(level1, level2),
        overflow_rate=(1.0, 0.05),
    )
    G = InputMatrix(
        2, 1, mask=torch.tensor([[1.0], [0.0]]), init=torch.tensor([[g], [0.0]])
    )
    system = PortHamiltonian(TankHamiltonian(), ZeroInterconnection(2), R, G)
    output = TankOutput(gain=gain, offset=offset, saturation=z_max)
    return system, output, np.stack([h1, h2], axis=1)


def initial_model(train, n_past: int, substeps: int, input_hold: str, seed: int):
    """Build the tank :class:`~phcontrol.fitted.IdentifiedModel` for a log.

    The pump input is scaled but not centred; the reading is centred and
    scaled, and its saturation (10 V on the benchmark log, else the largest
    reading) becomes the output map's clip.
    """
    from .errors import NotSupportedError
    from .fitted import Encoder, IdentifiedModel
    from .identify import _encoder_lstsq

    if train.n_inputs != 1 or train.n_outputs != 1:
        raise NotSupportedError(
            f"model='tanks' fits one pump input and one level reading; the log "
            f"has {train.n_inputs} inputs and {train.n_outputs} outputs. Use "
            "model='linear'."
        )
    u_std = train.u.std(0) + 1e-12
    z_mean, z_std = train.z.mean(0), train.z.std(0) + 1e-12
    un = train.u / u_std
    zn = (train.z - z_mean) / z_std
    z_max = (max(float(train.z.max()), 10.0) - float(z_mean[0])) / float(z_std[0])
    # Each seed starts from its own jittered guess.
    system, output, states = build_tank_system(un, zn, z_max, jitter=0.2, seed=seed)
    encoder = Encoder(n_past, 1, 1, 2)
    _encoder_lstsq(encoder, un, zn, states)
    return IdentifiedModel(
        system.to(torch.float64),
        encoder.to(torch.float64),
        dt=train.dt,
        u_mean=[0.0],
        u_std=u_std.tolist(),
        z_mean=z_mean.tolist(),
        z_std=z_std.tolist(),
        substeps=substeps,
        input_hold=input_hold,
        output_map=output.to(torch.float64),
    )
