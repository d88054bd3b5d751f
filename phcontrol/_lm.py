r"""Levenberg–Marquardt fitting of a model's physical parameters.

The first stage of :func:`phcontrol.identify` fits the few physical
parameters of a model (mass, potential coefficients, damping law, input
gain) by output error over windows of the training record. Each window
starts from a state of its own, which is estimated with the parameters
(multiple shooting with free initial states), so an early error in the
state does not bias the parameters.

The residual is the simulated output minus the measured one over every
window, ``r(theta, x_1 .. x_B)``. Its Jacobian is taken by forward
differences: one simulation per parameter, and one per state coordinate
for all windows at once, since a window's output depends on its own
initial state only. The normal equations then have an arrow shape (a
dense parameter block and one small block per window), which the Schur
complement reduces to a system the size of the parameter vector. The
damping is Marquardt's: ``lambda * diag(A)``, so the step does not depend
on how the parameters are scaled.

Windows start short and grow (by default 25, 50, 100 and 200 samples).
A lightly damped oscillator fitted over long windows from a poor start
has many local minima; over short windows the output depends nearly
linearly on the parameters, and each longer stage starts from the fit
of the one before, with the same window starts and initial states.

After each stage the encoder's linear part is refitted by least squares
to the simulated states along the windows, so that the model can be
validated and used from past samples as before.

Under ``torchrun`` each process holds a share of the windows and their
initial states. The parameter blocks of the normal equations, the Schur
terms, the costs and the encoder's Gram matrices are sums over windows:
they are summed over the processes (see :mod:`._distributed`), so every
process solves the same reduced system and takes the same step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from . import _distributed
from .fitted import IdentifiedModel

__all__: list[str] = []

logger = logging.getLogger(__name__)

RAW_FLOOR = -12.0
"""Lowest value of a softplus-parametrised (``*raw``) parameter during the
fit. Below it the softplus is flat to round-off and the parameter would no
longer move; its value there (about 6e-6) is zero for every practical
purpose."""

_FD_STEP = 1e-6
"""Relative forward-difference step, for parameters and states."""


class LevenbergMarquardt:
    """Fit ``params`` of ``fitted`` over windows with free initial states.

    Parameters
    ----------
    fitted : IdentifiedModel
        The model; its parameters in ``params`` are changed in place.
    params : sequence of (str, Parameter)
        The named parameters to fit.
    record : tuple of Tensor
        ``(u, z, u_sub)`` of the training record (see ``identify._record``).
    starts : Tensor, shape (B,)
        First sample of each of this process's windows (at least
        ``n_past``); may be empty when other processes hold every window.
    tol : float
        Tolerance of the implicit steps.
    """

    def __init__(
        self,
        fitted: IdentifiedModel,
        params: Sequence[tuple[str, nn.Parameter]],
        record: tuple[Tensor, Tensor, Tensor],
        starts: Tensor,
        tol: float = 1e-13,
    ) -> None:
        self.fitted = fitted
        self.params = [p for _, p in params]
        self.floor = torch.cat(
            [
                torch.full(
                    (p.numel(),),
                    RAW_FLOOR if name.endswith("raw") else -math.inf,
                    dtype=torch.float64,
                )
                for name, p in params
            ]
        )
        self.record = record
        self.starts = starts
        self.tol = tol
        with torch.no_grad():
            u, z, _ = record
            past = starts[:, None] + torch.arange(-fitted.n_past, 0)[None, :]
            self.x0 = fitted.encoder(u[past], z[past]).detach().clone()

    # -- parameter vector -------------------------------------------------
    def theta(self) -> Tensor:
        return torch.cat([p.detach().flatten() for p in self.params])

    @torch.no_grad()
    def set_theta(self, theta: Tensor) -> None:
        i = 0
        for p in self.params:
            k = p.numel()
            p.copy_(theta[i : i + k].view_as(p))
            i += k

    # -- residual and Jacobian ---------------------------------------------
    def _inputs(self, length: int) -> tuple[Tensor, Tensor]:
        _, z, u_sub = self.record
        fut = self.starts[:, None] + torch.arange(length + 1)[None, :]
        return u_sub[fut[:, :-1]].flatten(1, 2), z[fut]

    @torch.no_grad()
    def residual(self, theta: Tensor, x0: Tensor, length: int) -> Tensor:
        """Simulated minus measured outputs, (B, (length + 1) * n_outputs);
        non-finite where a simulation diverged or did not converge."""
        self.set_theta(theta)
        u, z = self._inputs(length)
        z_sim, ok = self.fitted.rollout(x0, u, substep_inputs=True, tol=self.tol)
        r = (z_sim - z).flatten(1)
        return torch.where(ok[:, None], r, torch.full_like(r, math.nan))

    def jacobian(
        self, theta: Tensor, x0: Tensor, r: Tensor, length: int
    ) -> tuple[Tensor, Tensor]:
        """Forward-difference Jacobians (B, K, P) and (B, K, n)."""
        cols = []
        for j in range(theta.numel()):
            h = _FD_STEP * max(1.0, abs(float(theta[j])))
            step = theta.clone()
            step[j] += h
            cols.append((self.residual(step, x0, length) - r) / h)
        state_cols = []
        # One step per state coordinate for every window of every process.
        local = x0.abs().amax(0) if len(x0) else torch.zeros(x0.shape[1])
        scale = _distributed.all_reduce_max(local.to(x0.dtype))
        for i in range(x0.shape[1]):
            h = _FD_STEP * max(1.0, float(scale[i]))
            x = x0.clone()
            x[:, i] += h
            state_cols.append((self.residual(theta, x, length) - r) / h)
        self.set_theta(theta)
        Jp = torch.nan_to_num(torch.stack(cols, -1), nan=0.0, posinf=0.0, neginf=0.0)
        Js = torch.stack(state_cols, -1)
        Js = torch.nan_to_num(Js, nan=0.0, posinf=0.0, neginf=0.0)
        return Jp, Js

    @staticmethod
    def mean_square(r: Tensor) -> float:
        """Mean of ``r**2`` over every window of every process."""
        total, count = _distributed.all_reduce_sums(
            (r**2).sum(), torch.tensor(float(r.numel()), dtype=r.dtype)
        )
        return float(total / count)

    # -- one stage -----------------------------------------------------------
    def fit(
        self,
        length: int,
        iterations: int,
        *,
        lam: float = 1e-3,
        rtol: float = 1e-6,
        stop: Callable[[], bool] = lambda: False,
        on_step: Callable[[int, float], None] | None = None,
    ) -> float:
        """Run up to ``iterations`` damped Gauss–Newton steps on windows of
        ``length`` samples; return the final mean squared residual."""
        theta, x0 = self.theta(), self.x0
        r = self.residual(theta, x0, length)
        failed = ~torch.isfinite(r).all(1)
        n_failed, n_windows = (
            int(v)
            for v in _distributed.all_reduce_sum(
                torch.tensor([float(failed.sum()), float(len(failed))])
            )
        )
        if 0 < n_failed < n_windows:
            # A window the model cannot simulate from its start says nothing
            # about the parameters; fit on the others.
            logger.info(
                "LM: %d of %d windows fail to simulate and are dropped",
                n_failed,
                n_windows,
            )
            self.starts, x0, r = self.starts[~failed], x0[~failed], r[~failed]
            self.x0 = x0
        cost = self.mean_square(r)
        if not math.isfinite(cost):
            self.set_theta(theta)
            return cost
        n = x0.shape[1]
        eye_n = torch.eye(n, dtype=x0.dtype)
        for k in range(iterations):
            Jp, Js = self.jacobian(theta, x0, r, length)
            A, g, size = _distributed.all_reduce_sums(
                torch.einsum("bki,bkj->ij", Jp, Jp),
                torch.einsum("bki,bk->i", Jp, r),
                Jp.abs().sum((0, 1)),
            )
            live = size > 0  # masked entries have no effect
            C = torch.einsum("bki,bkj->bij", Jp, Js)
            S = torch.einsum("bki,bkj->bij", Js, Js)
            gs = torch.einsum("bki,bk->bi", Js, r)
            dead = ~live
            A[dead, :] = 0.0
            A[:, dead] = 0.0
            A[dead, dead] = 1.0
            g[dead] = 0.0
            C[:, dead, :] = 0.0
            improved = False
            while lam < 1e10:
                Si = torch.linalg.inv(
                    S
                    + lam * torch.diag_embed(S.diagonal(dim1=1, dim2=2))
                    + 1e-14 * eye_n
                )
                schur, schur_rhs = _distributed.all_reduce_sums(
                    torch.einsum("bij,bjk,blk->il", C, Si, C),
                    torch.einsum("bij,bjk,bk->i", C, Si, gs),
                )
                reduced = A + lam * torch.diag(A.diagonal()) - schur
                rhs = g - schur_rhs
                try:
                    dp = -torch.linalg.solve(reduced, rhs)
                except RuntimeError:  # singular: damp harder
                    lam *= 10.0
                    continue
                dp = torch.maximum(theta + dp, self.floor) - theta
                ds = -torch.einsum(
                    "bij,bj->bi", Si, gs + torch.einsum("bij,i->bj", C, dp)
                )
                r_new = self.residual(theta + dp, x0 + ds, length)
                new = self.mean_square(r_new)
                if math.isfinite(new) and new < cost:
                    small = cost - new <= rtol * cost
                    theta, x0, r, cost = theta + dp, x0 + ds, r_new, new
                    lam = max(lam / 3.0, 1e-9)
                    improved = not small
                    break
                lam *= 10.0
            self.set_theta(theta)
            self.x0 = x0
            if on_step is not None:
                on_step(k, cost)
            if not improved or stop():
                break
        self.set_theta(theta)
        self.x0 = x0
        return cost

    @torch.no_grad()
    def refit_encoder(self, length: int, ridge: float = 1e-8) -> float:
        """Least-squares fit of the encoder's linear part to the simulated
        states at every sample of the windows; return the RMS misfit.

        The Gram matrices are sums over the windows of every process."""
        fitted = self.fitted
        u_all, z_all, _ = self.record
        u, _ = self._inputs(length)
        from .fitted import _rollout_states

        xs, _ = _rollout_states(
            fitted.system,
            self.x0,
            u,
            fitted.substeps,
            "substeps",
            self.tol,
            50,
            fitted.time_step,
        )
        idx = self.starts[:, None] + torch.arange(length + 1)[None, :]
        past = idx[..., None] + torch.arange(-fitted.n_past, 0)
        feats = torch.cat([u_all[past], z_all[past]], -1).flatten(2).flatten(0, 1)
        X = torch.cat([feats, torch.ones(len(feats), 1, dtype=feats.dtype)], 1)
        Y = xs.flatten(0, 1)
        ok = torch.isfinite(Y).all(1)
        X, Y = X[ok], Y[ok]
        gram, moment = _distributed.all_reduce_sums(X.T @ X, X.T @ Y)
        reg = (
            ridge * float(gram.diagonal().mean()) * torch.eye(len(gram), dtype=X.dtype)
        )
        W = torch.linalg.solve(gram + reg, moment)
        lin = fitted.encoder.linear
        lin.weight.copy_(W[:-1].T)
        lin.bias.copy_(W[-1])
        return math.sqrt(self.mean_square(X @ W - Y))
