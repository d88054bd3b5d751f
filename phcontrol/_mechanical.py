r"""A fast exact step for one-degree-of-freedom mechanical pH models.

For ``x = (q, p)``, :math:`H = p^2/(2m) + V(q)`, canonical ``J``,
dissipation on the momentum only, :math:`R = \mathrm{diag}(0, r(p))` with
``r`` constant, an even polynomial in ``p``, or viscous plus smoothed
Coulomb friction :math:`c + F \tanh(p/w)/p` (evaluated at the midpoint
:math:`\bar p = m \bar v`), and an
input acting on the momentum, :math:`G = (0, g)^\top`, the coordinate-
increment (Itoh–Abe) discrete gradient in the order ``(q, p)`` is

.. math:: \bar\nabla H = \Bigl(\frac{V(q') - V(q)}{q' - q},\; \frac{p + p'}{2m}\Bigr),

which is symmetric in ``(x, x')``, so the step is second order. Writing
:math:`\bar v = (q' - q)/\Delta t` eliminates ``p'`` (:math:`p' = 2m\bar v - p`)
and leaves one scalar equation per trajectory,

.. math:: (2m/\Delta t + r)(q' - q) - 2p + \Delta t\, \bar\nabla_q H
   - \Delta t\, g^\top \bar u = 0,

solved by Newton's method without autograd. Gradients pass through the
solve by the implicit function theorem: one differentiable Newton
correction at the converged point. The energy balance
:math:`H' - H = -\Delta t\, r \bar v^2 + \Delta t\, g^\top\bar u\, \bar v` holds
to the solve's tolerance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .greybox import MomentumDamping
from .hamiltonians import MechanicalHamiltonian, MLPPotential, PolynomialPotential
from .models import PortHamiltonian
from .structure import (
    CanonicalJ,
    CholeskyDissipation,
    CoulombViscousDissipation,
    InputMatrix,
    PolynomialDissipation,
)

__all__: list[str] = []


def supports(model: PortHamiltonian) -> bool:
    """Return True when ``model`` has the structure the scalar step needs."""
    H = model.H
    if not (isinstance(H, MechanicalHamiltonian) and H.n_dof == 1 and H.separable):
        return False
    if not isinstance(model.J, CanonicalJ):
        return False
    R, G = model.R, model.G
    if R is not None:
        constant = isinstance(R, CholeskyDissipation) and not R.state_dependent
        laws = (PolynomialDissipation, CoulombViscousDissipation, MomentumDamping)
        if not (constant or isinstance(R, laws)):
            return False
        if float(R.mask[0]) != 0.0:
            return False
    return G is None or _input_on_momentum(G)


def _input_on_momentum(G: object) -> bool:
    if not isinstance(G, InputMatrix) or G.state_dependent:
        return False
    return not bool((G.mask[0] != 0).any())


def _potential_functions(H: MechanicalHamiltonian):
    """Return ``V(q)``, ``dV/dq`` and the difference quotient of ``V``.

    Polynomials are evaluated by Horner's rule and tanh networks layer by
    layer, so one call costs a handful of tensor operations. The quotient
    ``(V(q') - V(q)) / (q' - q)`` is formed without subtracting two values
    of ``V`` where the parts allow it (polynomials, and tanh networks with
    one hidden layer), so it keeps full precision as ``q' -> q``; it is
    None otherwise.
    """
    parts = []
    for pot in H.potentials:
        if isinstance(pot, PolynomialPotential):
            c = pot.coefficients()[0]
            k = torch.arange(1, pot.degree + 1, dtype=c.dtype, device=c.device)
            parts.append(("poly", (c, c * k)))
        elif isinstance(pot, MLPPotential):
            net = pot.net
            ws = [(lay.weight, lay.bias) for lay in net.layers]
            parts.append(("mlp", (ws, net.out.weight, net.out.bias)))
        else:
            parts.append(("generic", pot))

    def V(q: Tensor) -> Tensor:
        total = None
        for kind, data in parts:
            if kind == "poly":
                c = data[0]
                acc = c[-1] * q
                for ci in reversed(c[:-1]):
                    acc = (acc + ci) * q
                val = acc
            elif kind == "mlp":
                ws, wo, bo = data
                a = q
                for w, b in ws:
                    a = torch.tanh(torch.addmm(b, a, w.T))
                val = torch.addmm(bo, a, wo.T)
            else:
                val = data(q).unsqueeze(-1)
            total = val if total is None else total + val
        assert total is not None
        return total

    def dV(q: Tensor) -> Tensor:
        total = None
        for kind, data in parts:
            if kind == "poly":
                ck = data[1]
                acc = ck[-1]
                for ci in reversed(ck[:-1]):
                    acc = acc * q + ci
                val = acc * torch.ones_like(q) if acc.dim() == 0 else acc
            elif kind == "mlp":
                ws, wo, _ = data
                acts = []
                a = q
                for w, b in ws:
                    a = torch.tanh(torch.addmm(b, a, w.T))
                    acts.append(a)
                g = wo
                for (w, _b), a in zip(reversed(ws), reversed(acts), strict=True):
                    g = (g * (1.0 - a * a)) @ w
                val = g
            else:
                val = data.grad(q)
            total = val if total is None else total + val
        assert total is not None
        return total

    def quotient(q: Tensor, qn: Tensor) -> Tensor:
        # Polynomial: (q'^k - q^k) / (q' - q) = sum_j q'^j q^(k-1-j), built by
        # s_k = q' s_(k-1) + q^(k-1). Tanh layer: tanh(a') - tanh(a) =
        # sinh(a' - a) / (cosh(a') cosh(a)) with a' - a = w (q' - q).
        total = None
        for kind, data in parts:
            if kind == "poly":
                c = data[0]
                s, qpow = torch.ones_like(q), torch.ones_like(q)
                val = c[0] * s
                for ck in c[1:]:
                    qpow = qpow * q
                    s = qn * s + qpow
                    val = val + ck * s
            else:
                ws, wo, _ = data
                (w, b), d = ws[0], qn - q
                a, an = torch.addmm(b, q, w.T), torch.addmm(b, qn, w.T)
                wd = d * w.T
                small = wd.abs() < 1e-4
                ratio = torch.where(
                    small,
                    1.0 + wd * wd / 6.0,
                    torch.sinh(wd) / torch.where(small, torch.ones_like(wd), wd),
                )
                val = ((w.T * ratio) / (torch.cosh(a) * torch.cosh(an))) @ wo.T
            total = val if total is None else total + val
        assert total is not None
        return total

    exact = all(
        kind == "poly" or (kind == "mlp" and len(data[0]) == 1) for kind, data in parts
    )
    return V, dV, (quotient if exact else None)


class MechanicalStepper:
    """Steps a supported model; build one per forward pass (it caches weights).

    Parameters
    ----------
    model : PortHamiltonian
        A model for which :func:`supports` is True.
    dt : float
        Step size.
    tol : float
        Scaled residual tolerance of the scalar Newton solve.
    max_iter : int
        Iteration cap.
    """

    def __init__(self, model: PortHamiltonian, dt: float, tol: float, max_iter: int):
        H = model.H
        assert isinstance(H, MechanicalHamiltonian)
        like = next(model.parameters())
        self.m = H.mass(like.new_zeros(1, 1))[0, 0, 0]
        R = model.R
        self._friction = R if isinstance(R, CoulombViscousDissipation) else None
        self.r_fn = R.rate if isinstance(R, MomentumDamping) else None
        if self._friction is not None:
            self.r_coeffs = like.new_zeros(0)
        elif self.r_fn is not None:
            self.r_coeffs = like.new_zeros(1)
        elif isinstance(R, PolynomialDissipation):
            # r(p) = sum_k c_k p^(2k) on the momentum.
            self.r_coeffs = R.coefficients()[1] * R.mask[1]
        else:
            self.r_coeffs = model.R_matrix(like.new_zeros(1, 2))[0, 1, 1:2]
        self.g = (
            model.G_matrix(like.new_zeros(1, 2))[0, 1]
            if model.n_inputs
            else like.new_zeros(0)
        )
        self.V, self.dV, self._quotient = _potential_functions(H)
        self.dt = dt
        self.tol = tol
        self.max_iter = max_iter
        self.params_need_grad = any(w.requires_grad for w in model.parameters())

    def _dq_gradient(
        self, q: Tensor, qn: Tensor, Vq: Tensor, Vn: Tensor | None = None
    ) -> Tensor:
        """Return the discrete dV/dq, shape (batch, 1).

        The difference quotient is replaced by ``V'`` at the midpoint where
        it would divide a rounding error by a tiny ``|q' - q|``.
        """
        if self._quotient is not None:
            return self._quotient(q, qn)
        if Vn is None:
            Vn = self.V(qn)
        d = qn - q
        dVal = Vn - Vq
        eps = torch.finfo(q.dtype).eps
        small = (d.abs() <= 1e-8 * (1.0 + (q + qn).abs())) | (
            8.0 * eps * torch.maximum(Vq.abs(), Vn.abs())
            > 1e-8 * (d.abs() + dVal.abs())
        )
        dg = dVal / torch.where(small, torch.ones_like(d), d)
        if bool(small.any()):
            dg = torch.where(small, self.dV(0.5 * (q + qn)), dg)
        return dg

    def step(
        self, x: Tensor, u_mid: Tensor, Vq: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Advance one step.

        Parameters
        ----------
        x : Tensor, shape (batch, 2)
        u_mid : Tensor, shape (batch, n_inputs)
            Input over the step (its midpoint value).
        Vq : Tensor, shape (batch, 1), optional
            ``V(q)`` if already known.

        Returns
        -------
        x_next : Tensor, shape (batch, 2)
        V_next : Tensor, shape (batch, 1)
        converged : Tensor, shape (batch,), bool
        """
        dt = self.dt
        q, p = x[:, :1], x[:, 1:]
        if Vq is None:
            Vq = self.V(q)
        force = (u_mid * self.g).sum(-1, keepdim=True) if self.g.numel() else 0.0
        m = self.m

        def residual(qn: Tensor, q: Tensor, p: Tensor, Vq: Tensor) -> Tensor:
            d = qn - q
            r, _ = self.damping(m * d / dt)
            dg = self._dq_gradient(q, qn, Vq)
            return (2.0 * m / dt + r) * d - 2.0 * p + dt * dg - dt * force

        def friction_slope(d: Tensor) -> Tensor:
            # d/dq' of r(m (q' - q) / dt) (q' - q) = r(s) + s r'(s)
            r, sr = self.damping(m.detach() * d / dt)
            return r + sr

        with torch.no_grad():
            qd, pd, Vd = q.detach(), p.detach(), Vq.detach()
            md = m.detach()
            # Explicit midpoint predictor, then the chord method: the slope
            # df/dq' = 2m/dt + r + s r'(s) + dt V''/2 + O(dt^2) barely changes
            # over a step.
            dV0 = self.dV(qd)
            r0, _ = self.damping(pd)
            qn = qd + dt / md * (pd + 0.5 * dt * (force - dV0 - r0 * pd / md))
            d0 = qn - qd
            tiny = d0.abs() < 1e-10
            curv = (self.dV(qn) - dV0) / torch.where(tiny, torch.ones_like(d0), d0)
            slope = (
                2.0 * md / dt
                + friction_slope(d0)
                + 0.5 * dt * torch.where(tiny, torch.zeros_like(d0), curv)
            )
            ok = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            eps = torch.finfo(qd.dtype).eps
            it = 0
            base = slope - friction_slope(d0)
            lo = torch.full_like(qn, -torch.inf)
            hi = torch.full_like(qn, torch.inf)

            def update(qn: Tensor, f: Tensor, slope: Tensor):
                if self._friction is None:
                    return qn - f / slope, slope
                # A Coulomb law is steep near rest and flat beyond, so the
                # slope is renewed every iteration (Newton, not a chord), and
                # the residual, increasing in q' for a convex V, brackets the
                # root: a Newton step that leaves the bracket is replaced by
                # its midpoint, which stops Newton cycling across the step.
                nonlocal lo, hi
                hi = torch.where(f > 0, torch.minimum(hi, qn), hi)
                lo = torch.where(f < 0, torch.maximum(lo, qn), lo)
                cand = qn - f / slope
                outside = (cand <= lo) | (cand >= hi)
                bracketed = torch.isfinite(lo) & torch.isfinite(hi)
                cand = torch.where(outside & bracketed, 0.5 * (lo + hi), cand)
                return cand, base + friction_slope(cand - qd)

            while it < self.max_iter:
                for _ in range(2):
                    f = residual(qn, qd, pd, Vd)
                    qn, slope = update(qn, f, slope)
                it += 2
                f = residual(qn, qd, pd, Vd)
                # f is the momentum equation's residual: scale it like a state.
                pn = (2.0 * md / dt) * (qn - qd) - pd
                size = 1.0 + torch.maximum(qn.abs(), pn.abs()).squeeze(-1)
                ok = f.abs().squeeze(-1) <= self.tol * size
                # A heavy mass (large 2m/dt) can leave f above that even when
                # the correction f / slope is below the rounding of q': no
                # iteration can improve such a root, so it counts as solved.
                at_rounding = (f / slope).abs() <= 4.0 * eps * (1.0 + qn.abs())
                ok = ok | at_rounding.squeeze(-1)
                # A row gone non-finite cannot converge: stop iterating it.
                if bool((ok | ~torch.isfinite(f.squeeze(-1))).all()):
                    break
                qn, slope = update(qn, f, slope)
        if torch.is_grad_enabled() and (x.requires_grad or self.params_need_grad):
            # Implicit function theorem: one differentiable Newton correction
            # at the solution carries d q'/d(theta, x) = -f_theta / f_q'.
            with torch.no_grad():
                d = qn - qd
                Vn = self.V(qn)
                dg = self._dq_gradient(qd, qn, Vd, Vn)
                safe = torch.where(d.abs() > 0, d, torch.ones_like(d))
                curv = torch.where(d.abs() > 0, (self.dV(qn) - dg) / safe, 0.0 * d)
                exact_slope = 2.0 * md / dt + friction_slope(d) + dt * curv
            qn = qn - residual(qn, q, p, Vq) / exact_slope
        Vn = self.V(qn)
        v = (qn - q) / dt
        pn = 2.0 * m * v - p
        return torch.cat([qn, pn], dim=-1), Vn, ok

    def damping(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``r(p)`` and ``p r'(p)``, each shaped like ``p``."""
        if self._friction is not None:
            return self._friction.law(p, 1)
        if self.r_fn is not None:
            with torch.enable_grad():
                pg = p.detach().requires_grad_(True)
                (slope,) = torch.autograd.grad(self.r_fn(pg).sum(), pg)
            return self.r_fn(p), p * slope
        c = self.r_coeffs
        p2 = p * p
        r = c[-1] * torch.ones_like(p)
        pr = 2.0 * (len(c) - 1) * c[-1] * torch.ones_like(p)
        for k in range(len(c) - 2, -1, -1):
            r = r * p2 + c[k]
            pr = pr * p2 + 2.0 * k * c[k]
        return r, pr

    def balance_terms(
        self, x: Tensor, x_next: Tensor, u_mid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Return the supplied and dissipated energy of a step, each (batch,)."""
        v = (x_next[:, 0] - x[:, 0]) / self.dt
        if self.g.numel():
            supplied = self.dt * v * (u_mid * self.g).sum(-1)
        else:
            supplied = torch.zeros_like(v)
        r, _ = self.damping(self.m * v)
        dissipated = self.dt * r * v * v
        return supplied, dissipated
