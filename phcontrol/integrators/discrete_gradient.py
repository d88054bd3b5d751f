r"""Discrete gradients and the implicit steps built on them.

A discrete gradient :math:`\bar\nabla H(x, x')` satisfies
:math:`H(x') - H(x) = \bar\nabla H^\top (x' - x)` and
:math:`\bar\nabla H(x, x) = \nabla H(x)`. The step

.. math:: x' = x + \Delta t\,[(J - R)(\bar x)\, \bar\nabla H + G(\bar x)\,\bar u],
   \qquad \bar x = (x + x')/2,

gives :math:`H(x') - H(x) = -\Delta t\, \bar\nabla H^\top R \bar\nabla H
+ \Delta t\, \bar y^\top \bar u` with :math:`\bar y = G(\bar x)^\top\bar\nabla H`,
up to the implicit solve's tolerance. Gonzalez's midpoint and Itoh and
Abe's coordinate increments are exact discrete gradients for any ``H``;
the averaged vector field is one when its quadrature is exact (polynomial
``H``); ``invariant`` asks the energy for a discrete gradient built on its
invariants (``H.invariant_gradient``); the implicit midpoint rule uses
:math:`\nabla H(\bar x)`, which is one only for quadratic ``H``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .._tensor import rowdot, rownorm
from ..models import PortHamiltonian
from ._base import _InputSchedule, _NewtonSolver, _scaled_error

__all__ = ["gonzalez_gradient", "itoh_abe_gradient", "avf_gradient"]

EnergyFn = Callable[[Tensor], Tensor]

# Rounding in ``H(x') - H(x)`` is at most a few ulps of max(|H(x)|, |H(x')|);
# this factor bounds "a few".
_ROUNDING_ULPS = 8.0


def _noise_floor(dtype: torch.dtype) -> float:
    # Largest rounding noise accepted in a difference quotient, relative to
    # 1 + |gradient|: eps^(3/4) keeps the implicit solve's residual (and so
    # the energy balance) near round-off; below it a quadrature is used.
    return float(torch.finfo(dtype).eps) ** 0.75


def gonzalez_gradient(
    H: EnergyFn,
    grad_H: EnergyFn,
    x: Tensor,
    x_next: Tensor,
    H_x: Tensor | None = None,
    H_next: Tensor | None = None,
) -> Tensor:
    r"""Return Gonzalez's midpoint discrete gradient.

    .. math:: \bar\nabla H = \nabla H(\bar x) + \frac{H(x') - H(x) -
       \nabla H(\bar x)^\top \delta}{\|\delta\|^2}\,\delta, \qquad \delta = x' - x.

    The correction divides a rounding error of ``H(x') - H(x)`` by
    :math:`\|\delta\|`. Where that error could exceed
    :math:`\epsilon^{3/4}(1 + \|\nabla H(\bar x)\|)`, that is where
    :math:`8\epsilon \max(|H(x)|, |H(x')|) > \epsilon^{3/4}(1 +
    \|\nabla H(\bar x)\|)\,\|\delta\|` (about :math:`\|\delta\| < 10^{-3}`
    for ``H`` of order one in float64), the two-node Gauss average of
    :func:`avf_gradient` is returned instead: it differs from the exact
    discrete gradient by :math:`O(\|\delta\|^4)` and its energy error,
    :math:`O(\|\delta\|^5)`, is below round-off there. A constant added to
    ``H`` changes the result only through that switch.

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

    References
    ----------
    O. Gonzalez, "Time integration and discrete Hamiltonian systems",
    J. Nonlinear Science 6 (1996) 449-467.

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
    nrm2 = rowdot(d, d)
    nrm = nrm2.sqrt()
    eps = torch.finfo(x.dtype).eps
    root = _noise_floor(x.dtype)
    scale = torch.maximum(Hx.abs(), Hn.abs())
    gnorm = rownorm(g)
    small = (nrm2 == 0) | (_ROUNDING_ULPS * eps * scale > root * (1.0 + gnorm) * nrm)
    c = (Hn - Hx - rowdot(g, d)) / torch.where(small, torch.ones_like(nrm2), nrm2)
    out = g + torch.where(small, torch.zeros_like(c), c).unsqueeze(-1) * d
    if bool(small.any()):
        out = torch.where(small.unsqueeze(-1), avf_gradient(grad_H, x, x_next, 2), out)
    return out


def itoh_abe_gradient(
    H: EnergyFn,
    grad_H: EnergyFn,
    x: Tensor,
    x_next: Tensor,
    H_x: Tensor | None = None,
    H_next: Tensor | None = None,
) -> Tensor:
    r"""Return Itoh and Abe's coordinate-increment discrete gradient.

    With :math:`w_0 = x`, :math:`w_i = (x'_1, \dots, x'_i, x_{i+1}, \dots,
    x_n)` and :math:`w_n = x'`,

    .. math:: \bar\nabla_i H = \frac{H(w_i) - H(w_{i-1})}{x'_i - x_i},

    so the increments telescope to :math:`H(x') - H(x)` exactly. A
    coordinate whose increment is too small for the quotient to keep
    :math:`\epsilon^{3/4}` relative accuracy uses the two-node Gauss
    average of :math:`\partial_i H` along the segment from
    :math:`w_{i-1}` to :math:`w_i` instead (energy error
    :math:`O(|x'_i - x_i|^5)`). It costs ``n + 1``
    evaluations of ``H``, depends on the order of the coordinates and is
    not symmetric in ``(x, x')``, so the step it gives is first order.

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

    References
    ----------
    T. Itoh and K. Abe, "Hamiltonian-conserving discrete canonical equations
    based on variational difference quotients", J. Comput. Phys. 76 (1988)
    85-102.

    Examples
    --------
    >>> import torch
    >>> H = lambda x: (x**4).sum(-1) + x[:, 0] * x[:, 1]
    >>> dH = lambda x: 4 * x**3 + x.flip(-1)
    >>> x, xn = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, -0.8]])
    >>> g = itoh_abe_gradient(H, dH, x, xn)
    >>> torch.allclose(H(xn) - H(x), (g * (xn - x)).sum(-1))
    True
    """
    batch, n = x.shape
    d = x_next - x
    # w[i] takes the first i coordinates from x_next: shape (n + 1, batch, n).
    take = torch.ones(n + 1, n, dtype=torch.bool, device=x.device).tril(-1)
    w = torch.where(take[:, None, :], x_next.unsqueeze(0), x.unsqueeze(0))
    inner = H(w[1:n].reshape(-1, n)).reshape(n - 1, batch) if n > 1 else None
    Hx = H(x) if H_x is None else H_x
    Hn = H(x_next) if H_next is None else H_next
    parts = [Hx.unsqueeze(0)]
    if inner is not None:
        parts.append(inner)
    parts.append(Hn.unsqueeze(0))
    Hw = torch.cat(parts, dim=0)  # (n + 1, batch)
    dH = (Hw[1:] - Hw[:-1]).T  # (batch, n)
    scale = torch.maximum(Hw[1:].abs(), Hw[:-1].abs()).T
    eps = torch.finfo(x.dtype).eps
    root = _noise_floor(x.dtype)
    safe_d = torch.where(d == 0, torch.ones_like(d), d)
    quotient = dH / safe_d
    small = (d == 0) | (
        _ROUNDING_ULPS * eps * scale > root * (1.0 + quotient.abs()) * d.abs()
    )
    if not bool(small.any()):
        return quotient
    s, wts = _gauss_legendre(2)
    diag = torch.zeros_like(x)
    for node, weight in zip(s, wts, strict=True):
        pts = w[:-1] + node * (w[1:] - w[:-1])  # (n, batch, n)
        gm = grad_H(pts.reshape(-1, n)).reshape(n, batch, n)
        diag = diag + weight * torch.diagonal(gm, dim1=0, dim2=2)  # (batch, n)
    return torch.where(small, diag, quotient)


@lru_cache(maxsize=16)
def _gauss_legendre(nodes: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    s, w = np.polynomial.legendre.leggauss(nodes)
    return tuple(0.5 * (s + 1.0)), tuple(0.5 * w)


def avf_gradient(grad_H: EnergyFn, x: Tensor, x_next: Tensor, nodes: int = 2) -> Tensor:
    r"""Return the averaged gradient by Gauss-Legendre quadrature.

    .. math:: \bar\nabla H = \int_0^1 \nabla H(x + s(x' - x))\, ds
       \approx \sum_{i=1}^{k} w_i \nabla H(x + s_i (x' - x)).

    The integral is an exact discrete gradient; the ``k``-node rule
    computes it exactly when ``H`` is a polynomial of degree at most
    ``2k`` along the segment. For other energies (MLPs, the pendulum's
    cosine) the energy balance holds only up to the quadrature error,
    which is :math:`O(\|x' - x\|^{2k+1})` per step.

    Parameters
    ----------
    grad_H : callable
        Gradient of the energy, ``(batch, n) -> (batch, n)``.
    x, x_next : Tensor, shape (batch, n)
        The two states.
    nodes : int, default 2
        Number ``k`` of Gauss-Legendre nodes.

    Returns
    -------
    Tensor, shape (batch, n)

    References
    ----------
    G. R. W. Quispel and D. I. McLaren, "A new class of energy-preserving
    numerical integration methods", J. Phys. A 41 (2008) 045206.

    Examples
    --------
    A quartic is integrated exactly by two nodes:

    >>> import torch
    >>> H = lambda x: (x**4).sum(-1)
    >>> dH = lambda x: 4 * x**3
    >>> x, xn = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, -0.8]])
    >>> g = avf_gradient(dH, x, xn, nodes=2)
    >>> torch.allclose(H(xn) - H(x), (g * (xn - x)).sum(-1))
    True
    """
    if not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"`nodes` must be a positive integer; found {nodes!r}")
    s, w = _gauss_legendre(nodes)
    batch, n = x.shape
    d = x_next - x
    st = torch.tensor(s, dtype=x.dtype, device=x.device)
    wt = torch.tensor(w, dtype=x.dtype, device=x.device)
    pts = x.unsqueeze(0) + st[:, None, None] * d.unsqueeze(0)
    g = grad_H(pts.reshape(-1, n)).reshape(nodes, batch, n)
    return (wt[:, None, None] * g).sum(0)


def method_gradient(
    model: PortHamiltonian, method: str, avf_nodes: int
) -> Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor]:
    """Return ``g(x, x', H(x), H(x'))``: the gradient a method's step uses.

    Explicit methods and the implicit midpoint rule use the midpoint
    gradient; the bookkeeping of :class:`Trajectory` uses the same.
    """
    H, dH = model.H, model.H.grad
    if method == "gonzalez":
        return lambda x, z, Hx, Hz: gonzalez_gradient(H, dH, x, z, Hx, Hz)
    if method == "itoh_abe":
        return lambda x, z, Hx, Hz: itoh_abe_gradient(H, dH, x, z, Hx, Hz)
    if method == "avf":
        return lambda x, z, Hx, Hz: avf_gradient(dH, x, z, avf_nodes)
    if method == "invariant":
        step_grad = model.H.invariant_gradient  # type: ignore[attr-defined]
        return lambda x, z, Hx, Hz: step_grad(x, z)
    return lambda x, z, Hx, Hz: dH(0.5 * (x + z))


def implicit_step(
    model: PortHamiltonian,
    x: Tensor,
    H_x: Tensor,
    t_mid: Tensor,
    h: float,
    k: int,
    j: int,
    substeps: int,
    schedule: _InputSchedule,
    solver: _NewtonSolver,
    gradient: str,
    grad_fn: Callable[[Tensor, Tensor, Tensor | None, Tensor | None], Tensor],
    guess: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Solve one implicit step.

    Returns ``x'``, ``H(x')``, the gradient ``ḡ(x, x')`` and input ``ū`` of
    the step (for the bookkeeping, so it audits exactly what was solved),
    and the per-row converged mask. Newton starts from ``guess`` (the
    simulation extrapolates the last three states) or, without one, from
    an explicit Euler step; rows that miss the tolerance from ``guess``
    start again from the Euler step.

    Gradients pass through the converged solve by the implicit function
    theorem (one differentiable Newton correction with the Jacobian held
    fixed, so memory does not grow with the iteration count) or, with
    ``gradient="unroll"``, through every Newton iteration.
    """

    def residual(z: Tensor, x: Tensor = x, H_x: Tensor = H_x) -> Tensor:
        xm = 0.5 * (x + z)
        g = grad_fn(x, z, H_x, None)
        um = schedule.at(k, j, substeps, t_mid, xm)
        return z - x - h * model.flow(xm, g, um)

    def euler_guess() -> Tensor:
        with torch.no_grad():
            x0 = x.detach()
            u0 = schedule.at(k, j, substeps, t_mid, x0)
            return x0 + h * model.flow(x0, model.H.grad(x0), u0)

    extrapolated = guess is not None
    guess = euler_guess() if guess is None else guess.detach()
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in model.parameters())
    )
    if needs_grad and gradient == "unroll":
        z = guess
        ok = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for _ in range(solver.max_iter):
            F = residual(z)
            ok = _scaled_error(F.detach(), z.detach()) <= solver.tol
            if bool(ok.all()):
                break
            jac = _NewtonSolver.jacobian(residual, z)
            z = z - torch.linalg.solve(jac, F.unsqueeze(-1)).squeeze(-1)
    else:
        x_det, H_det = x.detach(), H_x.detach()
        z, ok = solver.solve(lambda z: residual(z, x_det, H_det), guess)
        if extrapolated and not bool(ok.all()):
            # An extrapolated guess can land across a switch of a
            # closed-loop input; those rows start again from Euler's step.
            retry = torch.where(ok.unsqueeze(-1), z, euler_guess())
            z_retry, ok_retry = solver.solve(lambda z: residual(z, x_det, H_det), retry)
            z = torch.where(ok.unsqueeze(-1), z, z_retry)
            ok = ok | ok_retry
        if needs_grad:
            jac = _NewtonSolver.jacobian(lambda z: residual(z, x_det, H_det), z)
            F = residual(z.detach())
            z = z.detach() - torch.linalg.solve(jac, F.unsqueeze(-1)).squeeze(-1)
    H_z = model.H(z)
    g = grad_fn(x, z, H_x, H_z)
    um = schedule.at(k, j, substeps, t_mid, 0.5 * (x + z))
    return z, H_z, g, um, ok
