r"""Pieces every integrator shares: the result type, inputs and the Newton solve.

:class:`Trajectory` is what :func:`~phcontrol.simulate` returns.
:class:`_InputSchedule` evaluates a held input sequence or a feedback
``u(t, x)`` at a fraction of a step. :class:`_NewtonSolver` solves the
implicit equation :math:`F(z) = 0` of an implicit step row by row, with a
fixed-point fallback, and reports which rows met the tolerance.

Convergence test (the numerics contract): a row has converged when
:math:`\max_i |F_i| / (1 + \max_i |z_i|) \le` ``tol``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConvergenceError, NumericsWarning, ShapeError

__all__ = ["Trajectory"]

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
        Discrete port output of each interval, ``G(x̄)ᵀ ḡ`` averaged over
        sub-steps, where ``ḡ`` is the method's gradient (see ``simulate``).
    energy : Tensor or None, shape (batch, steps + 1)
        ``H`` at the sample times (None for models without energy).
    supplied : Tensor or None, shape (batch, steps)
        Energy supplied through the port in each interval, ``dt ȳᵀū``.
    dissipated : Tensor or None, shape (batch, steps)
        Energy dissipated in each interval, ``dt ḡᵀ R(x̄) ḡ``.
    residual : Tensor or None, shape (batch, steps)
        Power-balance residual ``dH + dissipated - supplied`` per interval.
    converged : Tensor, shape (batch,), bool
        False for a row whose implicit solve missed the tolerance.
    method : str
        The integrator used.

    Examples
    --------
    >>> import torch, phcontrol as phc
    >>> H, J = phc.QuadraticHamiltonian(2), phc.CanonicalJ(2)
    >>> model = phc.PortHamiltonian(H, J).double()
    >>> x0 = torch.ones(3, 2, dtype=torch.float64)
    >>> traj = phc.simulate(model, x0, dt=0.1, steps=4)
    >>> tuple(traj.x.shape), tuple(traj.residual.shape), bool(traj.converged.all())
    ((3, 5, 2), (3, 4), True)
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


class _InputSchedule:
    """Evaluates the input at fraction ``w`` of sub-step ``j`` of interval ``k``."""

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

    def at(
        self,
        k: int,
        j: int,
        substeps: int,
        t: Tensor,
        x: Tensor,
        w: float = 0.5,
    ) -> Tensor:
        """Return ``u`` at ``(t, x)``, a fraction ``w`` into the step."""
        if self.fn is not None:
            return self.fn(t, x)
        seq = self.seq
        assert seq is not None
        if self.hold == "linear":
            a = (j + w) / substeps
            return (1.0 - a) * seq[:, k] + a * seq[:, k + 1]
        return seq[:, k]


def _scaled_error(F: Tensor, z: Tensor) -> Tensor:
    return F.abs().amax(-1) / (1.0 + z.abs().amax(-1))


class _NewtonSolver:
    """Batched Newton iteration that reuses its Jacobian while it converges fast.

    The Jacobian of the residual is formed by ``n`` reverse passes of
    autograd over the batch (the rows are independent) and inverted once,
    so an iteration costs a batched matrix-vector product, not a
    factorisation. The inverse is kept across steps and refreshed when an
    iteration fails to shrink the residual by ``refresh_ratio``; a row
    whose Jacobian is singular gets a non-finite update. Converged rows
    take ``polish`` last updates (the first with the residual already at
    hand), which take the energy balance from ``tol`` times the gradient's
    size to round-off. Rows that Newton leaves unconverged (or non-finite)
    get a fixed-point iteration ``z <- z - F(z)`` from the initial guess,
    which converges when the step is contractive.
    """

    def __init__(
        self,
        tol: float,
        max_iter: int,
        refresh_ratio: float = 0.1,
        polish: int = 2,
    ) -> None:
        self.tol = tol
        self.polish = polish
        self.max_iter = max_iter
        self.refresh_ratio = refresh_ratio
        self.jac_inv: Tensor | None = None

    @staticmethod
    def jacobian(residual: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
        """Return ``dF/dz``, shape (batch, n, n), by ``n`` reverse passes."""
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

    @staticmethod
    def inverse(jac: Tensor) -> Tensor:
        """Return ``jac``'s inverse; NaN in the rows where it is singular."""
        inv, info = torch.linalg.inv_ex(jac)
        return torch.where((info == 0).view(-1, 1, 1), inv, math.nan)

    def _update(self, F: Tensor) -> Tensor:
        assert self.jac_inv is not None
        return (self.jac_inv @ F.unsqueeze(-1)).squeeze(-1)

    def solve(
        self, residual: Callable[[Tensor], Tensor], z0: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Return the solution (batch, n) and the per-row converged mask."""
        z = z0
        with torch.no_grad():
            F = residual(z)
            err = _scaled_error(F, z)
            it = 0
            fresh = False
            while bool((err > self.tol).any()) and it < self.max_iter:
                if self.jac_inv is None or self.jac_inv.shape[0] != z.shape[0]:
                    self.jac_inv = self.inverse(self.jacobian(residual, z))
                    fresh = True
                dz = self._update(F)
                z_new = z - dz
                F_new = residual(z_new)
                err_new = _scaled_error(F_new, z_new)
                bad = ~torch.isfinite(err_new)
                active = err > self.tol
                # Rows that reach the tolerance count as fast, however
                # little they had left to gain.
                ratio = float(
                    (err_new / err.clamp_min(1e-300))
                    .masked_fill(bad, 1e9)
                    .masked_fill(~active | (err_new <= self.tol), 0.0)
                    .max()
                )
                it += 1
                if ratio > self.refresh_ratio and not fresh:
                    self.jac_inv = None  # stale: rebuild, retry from the old point
                    continue
                fresh = False
                # Converged rows keep their value; the others take the step.
                keep = (~active).unsqueeze(-1)
                z = torch.where(keep, z, z_new)
                F = torch.where(keep, F, F_new)
                err = torch.where(~active, err, err_new.masked_fill(bad, math.inf))
            ok = err <= self.tol
            if self.jac_inv is not None and bool((ok & (err > 0)).any()):
                # One more update with the residual already at hand costs a
                # matrix-vector product and shrinks the error by the
                # contraction ratio, which takes the energy balance to
                # round-off.
                dz = self._update(F)
                z = torch.where(ok.unsqueeze(-1) & torch.isfinite(dz), z - dz, z)
                if self.polish > 1:
                    F = residual(z)
                    dz = self._update(F)
                    z = torch.where(ok.unsqueeze(-1) & torch.isfinite(dz), z - dz, z)
            if not bool(ok.all()):
                z, ok = self._fixed_point(residual, z0, z, ok)
        return z, ok

    def _fixed_point(
        self,
        residual: Callable[[Tensor], Tensor],
        z0: Tensor,
        z: Tensor,
        ok: Tensor,
    ) -> tuple[Tensor, Tensor]:
        todo = (~ok).unsqueeze(-1)
        w = torch.where(todo & ~torch.isfinite(z), z0, z)
        w = torch.where(torch.isfinite(w), w, z0)
        for _ in range(self.max_iter):
            F = residual(w)
            err = _scaled_error(F, w)
            done = (err <= self.tol) & torch.isfinite(err)
            if bool((done | ok).all()):
                break
            w = torch.where(done.unsqueeze(-1), w, w - F)
        F = residual(w)
        err = _scaled_error(F, w)
        fixed = (err <= self.tol) & ~ok
        z = torch.where(fixed.unsqueeze(-1), w, z)
        return z, ok | fixed


def _report_convergence(
    converged: Tensor, tol: float, max_iter: int, strict: bool, method: str
) -> None:
    """Warn (or raise with ``strict``) when a row missed the tolerance."""
    if bool(converged.all()):
        return
    bad = int((~converged).sum())
    msg = (
        f"the implicit solve of method={method!r} missed tol={tol:g} within "
        f"max_iter={max_iter} in {bad} of {converged.numel()} trajectories; see "
        "Trajectory.converged, reduce dt (or use substeps) or raise max_iter"
    )
    if strict:
        raise ConvergenceError(msg)
    warnings.warn(msg, NumericsWarning, stacklevel=4)
