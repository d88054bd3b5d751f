r"""Time stepping: discrete gradients that keep the energy balance, and RK4.

A discrete gradient :math:`\bar\nabla H(x, x')` satisfies
:math:`H(x') - H(x) = \bar\nabla H^\top (x' - x)` and
:math:`\bar\nabla H(x, x) = \nabla H(x)`. The step

.. math:: x' = x + \Delta t\,[(J - R)(\bar x)\, \bar\nabla H + G(\bar x)\,\bar u],
   \qquad \bar x = (x + x')/2,

then gives :math:`H(x') - H(x) = -\Delta t\, \bar\nabla H^\top R \bar\nabla H
+ \Delta t\, \bar y^\top \bar u` with :math:`\bar y = G(\bar x)^\top\bar\nabla H`,
up to the implicit solve's tolerance.

Conventions: states are ``(batch, n_states)``, trajectories
``(batch, time, n)``; inputs are held over each sample interval (zero-order
hold) or interpolated linearly between samples (``input_hold="linear"``).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ._validation import check_batch, check_choice, check_positive, default_tol
from .errors import ConvergenceError, NotSupportedError, NumericsWarning, ShapeError
from .models import AbstractModel, PortHamiltonian

__all__ = ["Trajectory", "simulate", "gonzalez_gradient", "METHODS"]

logger = logging.getLogger(__name__)

Method = Literal["gonzalez", "rk4", "euler"]
METHODS: tuple[str, ...] = ("gonzalez", "rk4", "euler")
_IMPLICIT = ("gonzalez",)
InputFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Trajectory:
    """A simulated trajectory and its energy bookkeeping.

    Attributes
    ----------
    t : Tensor, shape (steps + 1,)
        Sample times.
    x : Tensor, shape (batch, steps + 1, n_states)
        States at the sample times.
    y : Tensor, shape (batch, steps, n_inputs)
        Discrete port output of each interval (averaged over sub-steps).
    energy : Tensor or None, shape (batch, steps + 1)
        ``H`` at the sample times (None for models without energy).
    supplied : Tensor or None, shape (batch, steps)
        Energy supplied through the port in each interval, ``dt y^T u``.
    dissipated : Tensor or None, shape (batch, steps)
        Energy dissipated in each interval, ``dt grad^T R grad``.
    residual : Tensor or None, shape (batch, steps)
        Power-balance residual ``dH + dissipated - supplied`` per interval.
    converged : Tensor, shape (batch,), bool
        False for a row whose implicit solve missed the tolerance.
    method : str
        The integrator used.
    """

    t: Tensor
    x: Tensor
    y: Tensor
    energy: Tensor | None
    supplied: Tensor | None
    dissipated: Tensor | None
    residual: Tensor | None
    converged: Tensor
    method: str


def gonzalez_gradient(
    H: Callable[[Tensor], Tensor],
    grad_H: Callable[[Tensor], Tensor],
    x: Tensor,
    x_next: Tensor,
    H_x: Tensor | None = None,
    H_next: Tensor | None = None,
) -> Tensor:
    r"""Return Gonzalez's midpoint discrete gradient.

    .. math:: \bar\nabla H = \nabla H(\bar x) + \frac{H(x') - H(x) -
       \nabla H(\bar x)^\top \delta}{\|\delta\|^2}\,\delta, \qquad \delta = x' - x.

    Where the correction would divide a rounding error by a tiny
    :math:`\|\delta\|`, that is when :math:`\|\delta\| \le 10^{-8}(1 + \|\bar x\|)`
    or when ``8 eps max(|H(x)|, |H(x')|) > 1e-8 (1 + |grad|) |delta|``, the
    midpoint gradient is returned instead; it is second-order accurate
    there and its energy error, of order :math:`\|\delta\|^3`, is below
    round-off.

    Parameters
    ----------
    H, grad_H : callable
        Energy ``(batch, n) -> (batch,)`` and its gradient.
    x, x_next : Tensor, shape (batch, n)
        The two states.
    H_x, H_next : Tensor, shape (batch,), optional
        ``H(x)`` and ``H(x_next)`` if already known.

    Returns
    -------
    Tensor, shape (batch, n)

    Examples
    --------
    >>> import torch
    >>> H = lambda x: (x**4).sum(-1)
    >>> dH = lambda x: 4 * x**3
    >>> x, xn = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, -0.8]])
    >>> g = gonzalez_gradient(H, dH, x, xn)
    >>> torch.allclose(H(xn) - H(x), (g * (xn - x)).sum(-1))
    True
    """
    xm = 0.5 * (x + x_next)
    d = x_next - x
    g = grad_H(xm)
    Hx = H(x) if H_x is None else H_x
    Hn = H(x_next) if H_next is None else H_next
    nrm2 = (d * d).sum(-1)
    nrm = nrm2.sqrt()
    eps = torch.finfo(x.dtype).eps
    scale = torch.maximum(Hx.abs(), Hn.abs())
    gnorm = g.norm(dim=-1)
    small = (nrm <= 1e-8 * (1.0 + xm.norm(dim=-1))) | (
        8.0 * eps * scale > 1e-8 * (1.0 + gnorm) * nrm
    )
    c = (Hn - Hx - (g * d).sum(-1)) / torch.where(small, torch.ones_like(nrm2), nrm2)
    return g + torch.where(small, torch.zeros_like(c), c).unsqueeze(-1) * d


class _InputSchedule:
    """Evaluates the input of sub-step ``j`` of interval ``k`` at its midpoint."""

    def __init__(
        self,
        u: Tensor | InputFn | None,
        steps: int | None,
        batch: int,
        n_inputs: int,
        hold: str,
        like: Tensor,
    ) -> None:
        self.fn: InputFn | None = None
        self.seq: Tensor | None = None
        self.hold = hold
        if callable(u) and not isinstance(u, Tensor):
            if steps is None:
                raise TypeError("`steps` is required when `u` is a callable u(t, x)")
            self.fn = u
            self.steps = steps
            return
        if u is None:
            if steps is None:
                raise TypeError("`steps` is required when there is no input `u`")
            self.steps = steps
            self.seq = like.new_zeros(batch, steps + 1, n_inputs)
            return
        u = torch.as_tensor(u).to(device=like.device, dtype=like.dtype)
        if u.dim() == 2:
            u = u.unsqueeze(0)
        extra = 1 if hold == "linear" else 0
        if u.dim() != 3 or u.shape[-1] != n_inputs or u.shape[0] not in (1, batch):
            raise ShapeError(
                f"`u` must have shape (batch, steps{' + 1' if extra else ''}, "
                f"{n_inputs}) with batch {batch} or 1; found {tuple(u.shape)}"
            )
        n = u.shape[1] - extra
        if steps is not None and steps != n:
            raise ShapeError(
                f"`steps`={steps} disagrees with `u`, which holds {n} intervals"
                + (" (linear hold needs steps + 1 samples)" if extra else "")
            )
        if n < 1:
            raise ShapeError("`u` must hold at least one interval")
        self.steps = n
        self.seq = u.expand(batch, -1, -1)

    def at(self, k: int, j: int, substeps: int, t: Tensor, x: Tensor) -> Tensor:
        if self.fn is not None:
            return self.fn(t, x)
        seq = self.seq
        assert seq is not None
        if self.hold == "linear":
            w = (j + 0.5) / substeps
            return (1.0 - w) * seq[:, k] + w * seq[:, k + 1]
        return seq[:, k]

    @property
    def depends_on_state(self) -> bool:
        return self.fn is not None


class _NewtonSolver:
    """Batched Newton iteration that reuses its Jacobian while it converges fast.

    The Jacobian of the residual is formed by ``n`` reverse passes of
    autograd over the batch (the rows are independent). It is kept across
    steps and refreshed when an iteration fails to shrink the residual by
    ``refresh_ratio``.
    """

    def __init__(self, tol: float, max_iter: int, refresh_ratio: float = 0.1) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.refresh_ratio = refresh_ratio
        self.jac: Tensor | None = None

    @staticmethod
    def jacobian(residual: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            F = residual(zg)
            rows = []
            for i in range(F.shape[-1]):
                (gi,) = torch.autograd.grad(
                    F[:, i].sum(), zg, retain_graph=i + 1 < F.shape[-1]
                )
                rows.append(gi)
        return torch.stack(rows, dim=1)

    def solve(
        self, residual: Callable[[Tensor], Tensor], z0: Tensor
    ) -> tuple[Tensor, Tensor, int]:
        z = z0
        with torch.no_grad():
            F = residual(z)
            err = F.abs().amax(-1) / (1.0 + z.abs().amax(-1))
            it = 0
            fresh = False
            while bool((err > self.tol).any()) and it < self.max_iter:
                if self.jac is None or self.jac.shape[0] != z.shape[0]:
                    self.jac = self.jacobian(residual, z)
                    fresh = True
                dz = torch.linalg.solve(self.jac, F.unsqueeze(-1)).squeeze(-1)
                z_new = z - dz
                F_new = residual(z_new)
                err_new = F_new.abs().amax(-1) / (1.0 + z_new.abs().amax(-1))
                bad = ~torch.isfinite(err_new)
                active = err > self.tol
                ratio = float(
                    (err_new / err.clamp_min(1e-300))
                    .masked_fill(bad, 1e9)
                    .masked_fill(~active, 0.0)
                    .max()
                )
                it += 1
                if ratio > self.refresh_ratio and not fresh:
                    self.jac = None  # stale: rebuild and retry from the old point
                    continue
                fresh = False
                z, F, err = z_new, F_new, err_new.masked_fill(bad, math.inf)
        return z, err <= self.tol, it


def _check_model(model: AbstractModel, method: str) -> None:
    if method in _IMPLICIT and not isinstance(model, PortHamiltonian):
        raise NotSupportedError(
            f"method={method!r} needs a PortHamiltonian (it uses H, J, R and G); "
            f"{type(model).__name__} has no energy. Use method='rk4'."
        )


def simulate(
    model: AbstractModel,
    x0: Tensor,
    u: Tensor | InputFn | None = None,
    dt: float = 0.01,
    *,
    steps: int | None = None,
    method: Method = "gonzalez",
    substeps: int = 1,
    input_hold: Literal["zoh", "linear"] = "zoh",
    tol: float | None = None,
    max_iter: int = 50,
    strict: bool = False,
    gradient: Literal["ift", "unroll"] = "ift",
    t0: float = 0.0,
) -> Trajectory:
    r"""Simulate a model from ``x0`` under the input ``u``.

    Parameters
    ----------
    model : AbstractModel
        A :class:`PortHamiltonian` (every method) or a baseline such as
        :class:`NeuralODE` (explicit methods only).
    x0 : Tensor, shape (batch, n_states) or (n_states,)
        Initial states. The trajectory uses its dtype and device.
    u : Tensor or callable or None
        Inputs. A tensor of shape ``(batch, steps, n_inputs)`` (or without the
        batch axis) is held over each interval; with ``input_hold="linear"``
        it has ``steps + 1`` samples and is interpolated linearly between
        them. A callable ``u(t, x) -> (batch, n_inputs)`` closes a loop; an
        implicit method evaluates it at the step's midpoint, so the closed
        loop's balance is exact too. None means no input.
    dt : float
        Sample interval; must be positive.
    steps : int, optional
        Number of intervals; taken from ``u`` when it is a tensor.
    method : {"gonzalez", "rk4", "euler"}, default "gonzalez"
        ``gonzalez`` keeps the energy balance exactly; ``rk4`` and ``euler``
        are for comparison and let the energy drift.
    substeps : int, default 1
        Integrator steps per sample interval.

    Returns
    -------
    Trajectory
        States, outputs, energies and the per-interval energy bookkeeping.

    Other Parameters
    ----------------
    input_hold : {"zoh", "linear"}, default "zoh"
        How a tensor input is held between samples.
    tol : float, optional
        Scaled residual tolerance of the implicit solve (default 1e-12 in
        float64, 1e-6 in float32).
    max_iter : int, default 50
        Iteration cap of the implicit solve.
    strict : bool, default False
        Raise :class:`ConvergenceError` instead of warning when a row does
        not converge.
    gradient : {"ift", "unroll"}, default "ift"
        How gradients pass through implicit solves: the implicit function
        theorem (memory independent of the iteration count) or unrolled
        iterations.
    t0 : float, default 0.0
        Start time.

    Raises
    ------
    ConvergenceError
        With ``strict=True`` when a row's implicit solve misses ``tol``.
    NotSupportedError
        For an implicit method on a model without energy.

    Warns
    -----
    NumericsWarning
        When a row's implicit solve misses ``tol`` (its ``converged`` entry
        is then False).

    Notes
    -----
    With ``method="gonzalez"`` each interval satisfies

    .. math:: H(x_{k+1}) - H(x_k) = -\Delta t\, \bar\nabla H^\top R\,
       \bar\nabla H + \Delta t\, \bar y^\top \bar u

    up to ``tol`` times the size of the discrete gradient plus round-off
    in ``H``; ``Trajectory.residual`` reports the difference.

    Examples
    --------
    A lossless oscillator keeps its energy to round-off:

    >>> import torch
    >>> import phcontrol as phc
    >>> model = phc.PortHamiltonian(phc.QuadraticHamiltonian(2), phc.CanonicalJ(2))
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> traj = phc.simulate(model.double(), x0, dt=0.1, steps=100)
    >>> bool((traj.energy - traj.energy[:, :1]).abs().max() < 1e-12)
    True
    """
    method = check_choice(method, "method", METHODS)  # type: ignore[assignment]
    input_hold = check_choice(input_hold, "input_hold", ("zoh", "linear"))  # type: ignore[assignment]
    gradient = check_choice(gradient, "gradient", ("ift", "unroll"))  # type: ignore[assignment]
    dt = check_positive(dt, "dt")
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"`substeps` must be a positive integer; found {substeps!r}")
    _check_model(model, method)
    x = check_batch(x0, "x0", model.n_states)
    batch = x.shape[0]
    schedule = _InputSchedule(u, steps, batch, model.n_inputs, input_hold, x)
    steps = schedule.steps
    tol = default_tol(x.dtype) if tol is None else float(tol)
    h = dt / substeps
    has_energy = isinstance(model, PortHamiltonian)
    solver = _NewtonSolver(tol, max_iter)

    xs, ys = [x], []
    sup, dis, res = [], [], []
    H_x = model.H(x) if has_energy else None
    energies = [H_x] if has_energy else []
    converged = torch.ones(batch, dtype=torch.bool, device=x.device)
    for k in range(steps):
        y_acc = x.new_zeros(batch, model.n_inputs)
        s_acc = x.new_zeros(batch)
        d_acc = x.new_zeros(batch)
        for j in range(substeps):
            t = t0 + k * dt + j * h
            if method == "gonzalez":
                assert isinstance(model, PortHamiltonian)
                x_new, H_new, y, s, d, ok = _gonzalez_step(
                    model, x, H_x, t, h, k, j, substeps, schedule, solver, gradient
                )
                converged &= ok
            else:
                x_new, y, s, d = _explicit_step(model, x, t, h, k, j, substeps, schedule, method)
                H_new = model.H(x_new) if has_energy else None
            y_acc = y_acc + y / substeps
            s_acc = s_acc + s
            d_acc = d_acc + d
            x, H_x = x_new, H_new
        xs.append(x)
        ys.append(y_acc)
        if has_energy:
            assert H_x is not None
            sup.append(s_acc)
            dis.append(d_acc)
            energies.append(H_x)
    if not bool(converged.all()):
        bad = int((~converged).sum())
        msg = (
            f"the implicit solve missed tol={tol:g} within max_iter={max_iter} in "
            f"{bad} of {batch} trajectories; see Trajectory.converged, reduce dt or "
            "raise max_iter"
        )
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, NumericsWarning, stacklevel=2)
    t_grid = t0 + dt * torch.arange(steps + 1, dtype=x.dtype, device=x.device)
    energy = supplied = dissipated = residual = None
    if has_energy:
        energy = torch.stack(energies, dim=1)
        supplied = torch.stack(sup, dim=1)
        dissipated = torch.stack(dis, dim=1)
        residual = energy[:, 1:] - energy[:, :-1] + dissipated - supplied
    return Trajectory(
        t=t_grid,
        x=torch.stack(xs, dim=1),
        y=torch.stack(ys, dim=1),
        energy=energy,
        supplied=supplied,
        dissipated=dissipated,
        residual=residual,
        converged=converged,
        method=method,
    )


def _gonzalez_step(
    model: PortHamiltonian,
    x: Tensor,
    H_x: Tensor,
    t: float,
    h: float,
    k: int,
    j: int,
    substeps: int,
    schedule: _InputSchedule,
    solver: _NewtonSolver,
    gradient: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    H, dH = model.H, model.H.grad
    t_mid = torch.as_tensor(t + 0.5 * h, dtype=x.dtype, device=x.device)

    def residual(z: Tensor, x: Tensor = x, H_x: Tensor = H_x) -> Tensor:
        xm = 0.5 * (x + z)
        g = gonzalez_gradient(H, dH, x, z, H_x=H_x)
        um = schedule.at(k, j, substeps, t_mid, xm)
        return z - x - h * model.flow(xm, g, um)

    with torch.no_grad():
        xm0 = x.detach()
        guess = x.detach() + h * model.flow(
            xm0, dH(xm0), schedule.at(k, j, substeps, t_mid, xm0)
        )
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in model.parameters())
    )
    if needs_grad and gradient == "unroll":
        z = guess
        ok = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for _ in range(solver.max_iter):
            F = residual(z)
            jac = _NewtonSolver.jacobian(residual, z)
            z = z - torch.linalg.solve(jac, F.unsqueeze(-1)).squeeze(-1)
            err = F.detach().abs().amax(-1) / (1.0 + z.detach().abs().amax(-1))
            ok = err <= solver.tol
            if bool(ok.all()):
                break
    else:
        x_det, H_det = x.detach(), H_x.detach()
        z, ok, _ = solver.solve(lambda z: residual(z, x_det, H_det), guess)
        if needs_grad:
            jac = _NewtonSolver.jacobian(lambda z: residual(z, x_det, H_det), z)
            F = residual(z.detach())
            z = z.detach() - torch.linalg.solve(jac, F.unsqueeze(-1)).squeeze(-1)
    H_new = H(z)
    xm = 0.5 * (x + z)
    g = gonzalez_gradient(H, dH, x, z, H_x=H_x, H_next=H_new)
    um = schedule.at(k, j, substeps, t_mid, xm)
    y = model.output(xm, g) if model.n_inputs else x.new_zeros(x.shape[0], 0)
    supplied = h * (y * um).sum(-1)
    R = model.R_matrix(xm)
    dissipated = h * (g * (R @ g.unsqueeze(-1)).squeeze(-1)).sum(-1)
    return z, H_new, y, supplied, dissipated, ok


def _explicit_step(
    model: AbstractModel,
    x: Tensor,
    t: float,
    h: float,
    k: int,
    j: int,
    substeps: int,
    schedule: _InputSchedule,
    method: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    def ut(tau: float, z: Tensor, w: float) -> Tensor:
        tt = torch.as_tensor(tau, dtype=x.dtype, device=x.device)
        if schedule.fn is not None:
            return schedule.fn(tt, z)
        seq = schedule.seq
        assert seq is not None
        if schedule.hold == "linear":
            a = (j + w) / substeps
            return (1.0 - a) * seq[:, k] + a * seq[:, k + 1]
        return seq[:, k]

    f = model.vector_field
    if method == "euler":
        u0 = ut(t, x, 0.0)
        x_new = x + h * f(x, u0)
    else:
        k1 = f(x, ut(t, x, 0.0))
        z2 = x + 0.5 * h * k1
        k2 = f(z2, ut(t + 0.5 * h, z2, 0.5))
        z3 = x + 0.5 * h * k2
        k3 = f(z3, ut(t + 0.5 * h, z3, 0.5))
        z4 = x + h * k3
        k4 = f(z4, ut(t + h, z4, 1.0))
        x_new = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    batch = x.shape[0]
    if isinstance(model, PortHamiltonian):
        xm = 0.5 * (x + x_new)
        um = ut(t + 0.5 * h, xm, 0.5)
        g = model.H.grad(xm)
        y = model.output(xm, g)
        R = model.R_matrix(xm)
        supplied = h * (y * um).sum(-1)
        dissipated = h * (g * (R @ g.unsqueeze(-1)).squeeze(-1)).sum(-1)
    else:
        y = x.new_zeros(batch, model.n_inputs)
        supplied = dissipated = x.new_zeros(batch)
    return x_new, y, supplied, dissipated
