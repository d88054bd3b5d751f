r"""Energy functions ``H(x)`` that are bounded below for any weights.

* :class:`QuadraticHamiltonian`: :math:`H = \tfrac12 (x-x_0)^\top Q (x-x_0)`,
  :math:`Q = L L^\top + \varepsilon I`.
* :class:`MLPHamiltonian`: a tanh MLP (bounded, since tanh is) plus a
  positive definite quadratic floor.
* :class:`MechanicalHamiltonian`: :math:`H = \tfrac12 p^\top M(q)^{-1} p + V(q)`
  with ``x = (q, p)`` and :math:`M = L L^\top + \varepsilon I`.

Every energy maps ``(batch, n_states)`` to ``(batch,)``; ``grad`` returns
``(batch, n_states)``. Built-in energies differentiate themselves by hand,
so gradients are cheap and need no autograd graph. Energies written through
quadratic invariants (quadratic forms, separable potentials, functions of a
distance) also give ``invariant_gradient``, the discrete gradient of
``method="invariant"`` in :func:`~phcontrol.simulate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._config import Configurable
from ._tensor import rowdot
from ._validation import spd_factor
from .errors import ShapeError

__all__ = [
    "AbstractHamiltonian",
    "QuadraticHamiltonian",
    "MLPHamiltonian",
    "MechanicalHamiltonian",
    "AbstractPotential",
    "PolynomialPotential",
    "MLPPotential",
    "QuadraticPotential",
    "CosinePotential",
    "GravitationalPotential",
]


class _TanhNet(nn.Module):
    """A scalar tanh MLP with a hand-written gradient.

    Its output is bounded: ``|f(x)| <= sum|w_out| + |b_out|``.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], out_scale: float) -> None:
        super().__init__()
        widths = [n_in, *hidden]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out = nn.Linear(widths[-1], 1)
        with torch.no_grad():
            self.out.weight.mul_(out_scale)
            self.out.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        a = x
        for layer in self.layers:
            a = torch.tanh(layer(a))
        return self.out(a).squeeze(-1)

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        acts = []
        a = x
        for layer in self.layers:
            a = torch.tanh(layer(a))
            acts.append(a)
        value = self.out(a).squeeze(-1)
        g = self.out.weight.to(x.dtype).expand(x.shape[0], -1)
        for layer, a in zip(reversed(self.layers), reversed(acts), strict=True):
            g = (g * (1.0 - a * a)) @ layer.weight.to(x.dtype)
        return value, g

    def bound(self) -> float:
        with torch.no_grad():
            return float(self.out.weight.abs().sum() + self.out.bias.abs().sum())


class AbstractHamiltonian(nn.Module, Configurable):
    """Base of every energy: ``forward(x)`` gives ``H``, ``grad(x)`` its gradient.

    Subclasses set ``n_states`` and may override ``grad`` with a closed
    form; the default differentiates ``forward`` with autograd.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.hamiltonians import AbstractHamiltonian
    >>> obj = phc.QuadraticHamiltonian(2)
    >>> isinstance(obj, AbstractHamiltonian)
    True
    """

    n_states: int

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: Tensor) -> Tensor:
        """Return the gradient of ``H`` at ``x``, shape (batch, n_states)."""
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            H = self.forward(xg)
            (g,) = torch.autograd.grad(
                H.sum(), xg, create_graph=torch.is_grad_enabled()
            )
        return g

    def lower_bound(self) -> float:
        """Return a number that ``H`` never goes below (``-inf`` if unknown)."""
        return -math.inf

    def _invariant_refusal(self) -> str | None:
        """Return why ``invariant_gradient`` is unavailable, or None."""
        return f"{type(self).__name__} is not written through invariants"


class QuadraticHamiltonian(AbstractHamiltonian):
    r"""Quadratic energy :math:`\tfrac12 (x-x_0)^\top Q (x-x_0)`.

    Parameters
    ----------
    n_states : int
        Number of states.
    Q : Tensor, shape (n_states, n_states), optional
        Initial symmetric positive definite matrix (default identity).
    eps : float, default 1e-6
        Floor added to the diagonal, :math:`Q = L L^\top + \varepsilon I`.
    learn_equilibrium : bool, default False
        Learn the minimiser ``x0`` (otherwise fixed at zero).

    Examples
    --------
    >>> import torch
    >>> H = QuadraticHamiltonian(2, Q=torch.diag(torch.tensor([2.0, 1.0])), eps=0.0)
    >>> round(H(torch.tensor([[1.0, 1.0]])).item(), 4)  # 0.5 * (2 * 1 + 1 * 1)
    1.5
    """

    def __init__(
        self,
        n_states: int,
        *,
        Q: Tensor | None = None,
        eps: float = 1e-6,
        learn_equilibrium: bool = False,
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.eps = eps
        Q0 = torch.eye(n_states) if Q is None else torch.as_tensor(Q)
        Q0 = Q0.to(torch.get_default_dtype())
        if Q0.shape != (n_states, n_states):
            raise ShapeError(
                f"`Q` must have shape ({n_states}, {n_states}); found {tuple(Q0.shape)}"
            )
        self.L = nn.Parameter(spd_factor(Q0, "Q", eps))
        x0 = torch.zeros(n_states)
        if learn_equilibrium:
            self.x0 = nn.Parameter(x0)
        else:
            self.register_buffer("x0", x0)

    @property
    def Q(self) -> Tensor:
        """The matrix ``Q``, shape (n_states, n_states)."""
        L = torch.tril(self.L)
        return L @ L.T + self.eps * torch.eye(self.n_states, dtype=L.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        d = x - self.x0.to(x.dtype)
        return 0.5 * ((d @ self.Q.to(x.dtype)) * d).sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``Q (x - x0)``, shape (batch, n_states)."""
        return (x - self.x0.to(x.dtype)) @ self.Q.to(x.dtype)

    def invariant_gradient(self, x: Tensor, x_next: Tensor) -> Tensor:
        """Return ``Q (x̄ - x0)``, exact for a quadratic; shape (batch, n_states)."""
        return self.grad(0.5 * (x + x_next))

    def lower_bound(self) -> float:
        """Return 0, the minimum of a positive definite quadratic."""
        return 0.0

    def _invariant_refusal(self) -> str | None:
        return None


class MLPHamiltonian(AbstractHamiltonian):
    r"""A tanh MLP energy with a quadratic floor.

    .. math:: H(x) = f_\theta(x) + \tfrac12 x^\top (L L^\top + \varepsilon I) x

    Since tanh is bounded, :math:`|f_\theta| \le \|w\|_1 + |b|` for the output
    layer's weights ``w`` and bias ``b``, so ``H`` is bounded below by
    ``-(||w||_1 + |b|)`` and grows at least quadratically.

    Parameters
    ----------
    n_states : int
        Number of states.
    hidden : sequence of int, default (64, 64)
        Hidden widths.
    floor : float, default 1e-2
        The ``eps`` of the quadratic floor.

    Examples
    --------
    >>> import torch
    >>> H = MLPHamiltonian(2, hidden=(8,))
    >>> x = torch.randn(5, 2)
    >>> bool((H(x) >= H.lower_bound()).all())
    True
    """

    def __init__(
        self, n_states: int, *, hidden: Sequence[int] = (64, 64), floor: float = 1e-2
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.floor = floor
        self.net = _TanhNet(n_states, hidden, out_scale=1.0)
        self.L = nn.Parameter(0.5 * torch.eye(n_states))

    def _Q(self, dtype: torch.dtype) -> Tensor:
        L = torch.tril(self.L.to(dtype))
        return L @ L.T + self.floor * torch.eye(self.n_states, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        return self.net(x) + 0.5 * ((x @ self._Q(x.dtype)) * x).sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        """Return the gradient, shape (batch, n_states), by hand."""
        return self.net.value_and_grad(x)[1] + x @ self._Q(x.dtype)

    def lower_bound(self) -> float:
        """Return ``-(||w||_1 + |b|)`` of the output layer."""
        return -self.net.bound()


class AbstractPotential(nn.Module, Configurable):
    """A potential energy ``V(q)``: ``forward`` (batch,), ``grad`` (batch, n_dof).

    Examples
    --------
    >>> import torch
    >>> from phcontrol.hamiltonians import AbstractPotential, QuadraticPotential
    >>> isinstance(QuadraticPotential(torch.eye(1)), AbstractPotential)
    True
    """

    n_dof: int

    def forward(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, q: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def lower_bound(self) -> float:
        """Return a number ``V`` never goes below (``-inf`` if unbounded)."""
        return -math.inf

    def _invariant_refusal(self) -> str | None:
        """Return why ``discrete_grad`` is unavailable, or None."""
        return f"{type(self).__name__} is not written through invariants"


class PolynomialPotential(AbstractPotential):
    r"""A separable polynomial :math:`V(q) = \sum_i \sum_{k=1}^{d} c_{ik} q_i^k`.

    The degree ``d`` is even and the leading coefficient is kept positive,
    :math:`c_{id} = \mathrm{softplus}(\cdot) + \varepsilon`, so ``V`` is bounded
    below for any weights.

    Parameters
    ----------
    n_dof : int
        Number of coordinates ``q``.
    degree : int, default 4
        Even degree ``d``.
    coefficients : Tensor, shape (n_dof, degree), optional
        Initial ``c_{i1} .. c_{id}`` (the last must be positive).
    eps : float, default 1e-6
        Smallest leading coefficient.

    Examples
    --------
    >>> import torch
    >>> V = PolynomialPotential(1, degree=2, coefficients=torch.tensor([[0.0, 0.5]]))
    >>> round(V(torch.tensor([[2.0]])).item(), 4)  # 0.5 * 2**2
    2.0
    """

    def __init__(
        self,
        n_dof: int,
        *,
        degree: int = 4,
        coefficients: Tensor | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if degree < 2 or degree % 2:
            raise ValueError(f"`degree` must be even and >= 2; found {degree}")
        self.n_dof = n_dof
        self.degree = degree
        self.eps = eps
        if coefficients is None:
            c = torch.zeros(n_dof, degree)
            c[:, 1] = 0.5
            c[:, -1] = 0.5 if degree == 2 else 1e-2
        else:
            c = torch.as_tensor(coefficients, dtype=torch.get_default_dtype()).clone()
            if c.shape != (n_dof, degree):
                raise ShapeError(
                    f"`coefficients` must have shape ({n_dof}, {degree}); found "
                    f"{tuple(c.shape)}"
                )
            if bool((c[:, -1] <= eps).any()):
                raise ValueError(
                    "the leading coefficient of each polynomial must exceed "
                    f"eps={eps} so that V is bounded below"
                )
        self.lower = nn.Parameter(c[:, :-1])
        lead = c[:, -1] - eps
        self.lead_raw = nn.Parameter(lead + torch.log(-torch.expm1(-lead)))
        self.register_buffer("powers", torch.arange(1, degree + 1))

    def coefficients(self) -> Tensor:
        """Return the coefficients ``c``, shape (n_dof, degree), lowest power first."""
        lead = nn.functional.softplus(self.lead_raw) + self.eps
        return torch.cat([self.lower, lead[:, None]], dim=1)

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        c = self.coefficients().to(q.dtype)
        qk = q[..., None] ** self.powers.to(q.dtype)
        return (qk * c).sum((-1, -2))

    def grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, n_dof)."""
        c = self.coefficients().to(q.dtype)
        k = self.powers.to(q.dtype)
        qk = q[..., None] ** (k - 1.0)
        return (qk * c * k).sum(-1)

    def discrete_grad(self, q: Tensor, q_next: Tensor) -> Tensor:
        r"""Return the divided differences of ``V``, shape (batch, n_dof).

        Coordinate ``i`` gets :math:`(V_i(q'_i) - V_i(q_i)) / (q'_i - q_i)`,
        written without a division as
        :math:`\sum_k c_{ik} \sum_{j<k} q_i'^{\,j} q_i^{k-1-j}`.
        """
        c = self.coefficients().to(q.dtype)
        s = torch.ones_like(q)  # sum_{j<k} q'^j q^(k-1-j), starting at k = 1
        qk = torch.ones_like(q)  # q^(k-1)
        out = c[:, 0] * s
        for k in range(1, self.degree):
            qk = qk * q
            s = qk + q_next * s
            out = out + c[:, k] * s
        return out

    def _invariant_refusal(self) -> str | None:
        return None

    def lower_bound(self) -> float:
        """Return the exact minimum (found from the derivative's real roots)."""
        import numpy as np

        total = 0.0
        for c in self.coefficients().detach().double().cpu().numpy():
            poly = np.polynomial.Polynomial(np.concatenate([[0.0], c]))
            roots = poly.deriv().roots()
            real = roots[np.abs(roots.imag) < 1e-9].real
            total += float(poly(real).min()) if real.size else float(poly(0.0))
        return total - 1e-9 * (1.0 + abs(total))


class MLPPotential(AbstractPotential):
    r"""A bounded tanh MLP potential, :math:`|V| \le \|w\|_1 + |b|`.

    Use it as a correction added to a potential that grows, such as
    :class:`PolynomialPotential`, so the sum stays bounded below.

    Parameters
    ----------
    n_dof : int
        Number of coordinates.
    hidden : sequence of int, default (32,)
        Hidden widths.
    out_scale : float, default 1e-2
        Initial scale of the output layer (a small correction at start).

    Examples
    --------
    >>> import torch
    >>> V = MLPPotential(1)
    >>> V.grad(torch.zeros(3, 1)).shape
    torch.Size([3, 1])
    """

    def __init__(
        self, n_dof: int, *, hidden: Sequence[int] = (32,), out_scale: float = 1e-2
    ) -> None:
        super().__init__()
        self.n_dof = n_dof
        self.net = _TanhNet(n_dof, hidden, out_scale=out_scale)

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        return self.net(q)

    def grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, n_dof)."""
        return self.net.value_and_grad(q)[1]

    def lower_bound(self) -> float:
        """Return ``-(||w||_1 + |b|)`` of the output layer."""
        return -self.net.bound()


class QuadraticPotential(AbstractPotential):
    r"""A spring :math:`V(q) = \tfrac12 (q - q_0)^\top K (q - q_0)`, ``K`` fixed.

    Parameters
    ----------
    K : Tensor, shape (n_dof, n_dof)
        Symmetric positive semidefinite stiffness.
    q0 : Tensor, shape (n_dof,), optional
        Rest position (default zero).

    Examples
    --------
    >>> import torch
    >>> QuadraticPotential(torch.eye(1))(torch.tensor([[2.0]])).tolist()
    [2.0]
    """

    def __init__(self, K: Tensor, q0: Tensor | None = None) -> None:
        super().__init__()
        K = torch.as_tensor(K, dtype=torch.get_default_dtype())
        self.n_dof = K.shape[0]
        self.register_buffer("K", K)
        self.register_buffer(
            "q0", torch.zeros(self.n_dof) if q0 is None else torch.as_tensor(q0)
        )

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        d = q - self.q0.to(q.dtype)
        return 0.5 * ((d @ self.K.to(q.dtype)) * d).sum(-1)

    def grad(self, q: Tensor) -> Tensor:
        """Return ``K (q - q0)``, shape (batch, n_dof)."""
        return (q - self.q0.to(q.dtype)) @ self.K.to(q.dtype)

    def discrete_grad(self, q: Tensor, q_next: Tensor) -> Tensor:
        """Return ``K (q̄ - q0)``, exact for a quadratic; shape (batch, n_dof)."""
        return self.grad(0.5 * (q + q_next))

    def _invariant_refusal(self) -> str | None:
        return None

    def lower_bound(self) -> float:
        """Return 0 (``K`` is positive semidefinite)."""
        return 0.0


class CosinePotential(AbstractPotential):
    r"""A pendulum potential :math:`V(q) = \sum_i k_i (1 - \cos q_i)`.

    Evaluated as :math:`2 k_i \sin^2(q_i/2)`, which keeps full relative
    precision near :math:`q = 0` (where :math:`1 - \cos q` would cancel).

    Parameters
    ----------
    strength : float or sequence of float
        ``k_i`` (for a pendulum :math:`m g \ell`); must be positive. Its
        length sets ``n_dof``.

    Examples
    --------
    >>> import math, torch
    >>> V = CosinePotential(2.0)
    >>> V(torch.tensor([[math.pi]])), V.grad(torch.tensor([[math.pi / 2]]))
    (tensor([4.]), tensor([[2.]]))
    """

    def __init__(self, strength: float | Sequence[float] = 1.0) -> None:
        super().__init__()
        k = torch.as_tensor(strength, dtype=torch.get_default_dtype()).reshape(-1)
        if not bool((k > 0).all()):
            raise ValueError(
                f"`strength` must be positive; found {k.tolist()}. A negative "
                "strength is an inverted pendulum, whose V is not bounded below "
                "by 0; shift the angle by pi instead."
            )
        self.n_dof = int(k.numel())
        self.register_buffer("k", k)

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        s = torch.sin(0.5 * q)
        return (2.0 * self.k.to(q.dtype) * s * s).sum(-1)

    def grad(self, q: Tensor) -> Tensor:
        """Return ``k sin q``, shape (batch, n_dof)."""
        return self.k.to(q.dtype) * torch.sin(q)

    def discrete_grad(self, q: Tensor, q_next: Tensor) -> Tensor:
        r"""Return the divided differences of ``V``, shape (batch, n_dof).

        :math:`k (\cos q - \cos q') / (q' - q) = k \sin \bar q\,
        \mathrm{sinc}(\delta / 2)` with :math:`\delta = q' - q`, a form
        without cancellation.
        """
        half = (0.5 / math.pi) * (q_next - q)  # torch.sinc(x) = sin(pi x)/(pi x)
        return self.k.to(q.dtype) * torch.sin(0.5 * (q + q_next)) * torch.sinc(half)

    def _invariant_refusal(self) -> str | None:
        return None

    def lower_bound(self) -> float:
        """Return 0, the value at ``q = 0``."""
        return 0.0


class GravitationalPotential(AbstractPotential):
    r"""Newtonian attraction of two bodies, :math:`V = -k / \sqrt{r^2 + s^2}`.

    ``q = (q_1, q_2)`` stacks the two positions, each of dimension ``dim``;
    :math:`r = \|q_1 - q_2\|` and :math:`k = G m_1 m_2`.

    Parameters
    ----------
    strength : float
        ``k = G m_1 m_2``; must be positive.
    dim : int, default 2
        Dimension of each position (``n_dof = 2 dim``).
    softening : float, default 0.0
        Plummer softening ``s``; with ``s > 0`` the potential is bounded
        below by ``-k / s``.

    Warnings
    --------
    Without softening ``V`` is not bounded below (``lower_bound`` is
    ``-inf``): a collision releases unbounded energy. Keep orbits away from
    ``r = 0`` or pass ``softening``.

    Examples
    --------
    >>> import torch
    >>> V = GravitationalPotential(1.0)
    >>> q = torch.tensor([[0.0, 0.0, 2.0, 0.0]])
    >>> V(q).item(), V.grad(q)[0, [0, 2]].tolist()
    (-0.5, [-0.25, 0.25])
    """

    def __init__(
        self, strength: float = 1.0, *, dim: int = 2, softening: float = 0.0
    ) -> None:
        super().__init__()
        if not strength > 0:
            raise ValueError(f"`strength` must be positive; found {strength!r}")
        if softening < 0:
            raise ValueError(f"`softening` must be >= 0; found {softening!r}")
        self.strength = float(strength)
        self.dim = int(dim)
        self.softening = float(softening)
        self.n_dof = 2 * self.dim

    def _gap(self, q: Tensor) -> tuple[Tensor, Tensor]:
        d = q[:, : self.dim] - q[:, self.dim :]
        r2 = (d * d).sum(-1) + self.softening**2
        return d, r2

    def forward(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        _, r2 = self._gap(q)
        return -self.strength / r2.sqrt()

    def grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, 2 dim)."""
        d, r2 = self._gap(q)
        f = (self.strength / (r2 * r2.sqrt())).unsqueeze(-1) * d
        return torch.cat([f, -f], dim=-1)

    def discrete_grad(self, q: Tensor, q_next: Tensor) -> Tensor:
        r"""Return a discrete gradient through :math:`\rho = r^2 + s^2`.

        With the divided difference
        :math:`\bar v = (V(\rho') - V(\rho)) / (\rho' - \rho)
        = k / (\sqrt{\rho \rho'}\,(\sqrt\rho + \sqrt{\rho'}))` and the exact
        midpoint gradient of the quadratic :math:`\rho`, the result is
        :math:`\bar v\, \nabla\rho(\bar q)`: a multiple of the mean gap,
        equal and opposite on the two bodies.

        Returns
        -------
        Tensor, shape (batch, 2 dim)
        """
        _, r2 = self._gap(q)
        _, r2n = self._gap(q_next)
        a, b = r2.sqrt(), r2n.sqrt()
        vbar = self.strength / (a * b * (a + b))
        d = 0.5 * (q[:, : self.dim] + q_next[:, : self.dim]) - 0.5 * (
            q[:, self.dim :] + q_next[:, self.dim :]
        )
        f = (2.0 * vbar).unsqueeze(-1) * d
        return torch.cat([f, -f], dim=-1)

    def _invariant_refusal(self) -> str | None:
        return None

    def lower_bound(self) -> float:
        """Return ``-k / s`` with softening, else ``-inf``."""
        if self.softening > 0:
            return -self.strength / self.softening
        return -math.inf


class MechanicalHamiltonian(AbstractHamiltonian):
    r"""Mechanical energy :math:`\tfrac12 p^\top M(q)^{-1} p + V(q)`, ``x = (q, p)``.

    Parameters
    ----------
    n_dof : int
        Number of coordinates; the state has ``2 n_dof`` entries.
    potential : AbstractPotential or sequence of them
        ``V(q)``; a sequence is summed.
    mass : Tensor, shape (n_dof, n_dof), optional
        Initial constant mass matrix (default identity). Learned as
        :math:`L L^\top + \varepsilon I`.
    state_dependent_mass : bool, default False
        Make ``M(q) = L(q) L(q)^T + eps I`` with ``L(q)`` an MLP.
    learn_mass : bool, default True
        Learn the constant mass; False keeps it fixed.
    eps : float, default 1e-6
        Floor on the mass matrix.

    Examples
    --------
    >>> import torch
    >>> H = MechanicalHamiltonian(1, potential=PolynomialPotential(1, degree=2))
    >>> energy = H(torch.tensor([[1.0, 2.0]])).detach()
    >>> round(energy.item(), 4)  # 0.5 * 2**2 / 1 + 0.5 * 1**2, up to eps
    2.5
    """

    def __init__(
        self,
        n_dof: int,
        *,
        potential: AbstractPotential | Sequence[AbstractPotential],
        mass: Tensor | None = None,
        state_dependent_mass: bool = False,
        learn_mass: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.n_dof = n_dof
        self.n_states = 2 * n_dof
        self.eps = eps
        pots = [potential] if isinstance(potential, nn.Module) else list(potential)
        for V in pots:
            if V.n_dof != n_dof:
                raise ShapeError(
                    f"potential {type(V).__name__} has n_dof={V.n_dof}; expected "
                    f"{n_dof}"
                )
        self.potentials = nn.ModuleList(pots)
        self.state_dependent_mass = state_dependent_mass
        M0 = torch.eye(n_dof) if mass is None else torch.as_tensor(mass)
        M0 = M0.to(torch.get_default_dtype()).reshape(n_dof, n_dof)
        L0 = spd_factor(M0, "mass", eps)
        if state_dependent_mass:
            from .structure import mlp

            rows, cols = torch.tril_indices(n_dof, n_dof)
            self.register_buffer("rows", rows)
            self.register_buffer("cols", cols)
            self.mass_net = mlp(n_dof, rows.numel(), (32,))
            with torch.no_grad():
                self.mass_net[-1].weight.mul_(1e-2)
                self.mass_net[-1].bias.copy_(L0[rows, cols])
        elif learn_mass:
            self.L = nn.Parameter(L0)
        else:
            self.register_buffer("L", L0)

    @property
    def separable(self) -> bool:
        """True when ``M`` is constant, so ``H = T(p) + V(q)``."""
        return not self.state_dependent_mass

    def mass(self, q: Tensor) -> Tensor:
        """Return ``M(q)``, shape (batch, n_dof, n_dof)."""
        k = self.n_dof
        if not self.state_dependent_mass:
            return self._constant_mass(q).expand(q.shape[0], k, k)
        L = q.new_zeros(q.shape[0], k, k)
        L[:, self.rows, self.cols] = self.mass_net(q)
        eye = torch.eye(k, dtype=q.dtype, device=q.device)
        return L @ L.transpose(1, 2) + self.eps * eye

    def _constant_mass(self, like: Tensor) -> Tensor:
        # The (n_dof, n_dof) mass of a separable energy, in like's dtype.
        L = torch.tril(self.L.to(like.dtype))
        eye = torch.eye(self.n_dof, dtype=like.dtype, device=like.device)
        return L @ L.T + self.eps * eye

    def potential(self, q: Tensor) -> Tensor:
        """Return ``V(q)``, shape (batch,)."""
        return sum(V(q) for V in self.potentials)  # type: ignore[return-value]

    def potential_grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, n_dof)."""
        return sum(V.grad(q) for V in self.potentials)  # type: ignore[return-value]

    def velocity(self, q: Tensor, p: Tensor) -> Tensor:
        """Return ``M(q)^{-1} p``, shape (batch, n_dof)."""
        if not self.state_dependent_mass:
            # One small solve serves every row.
            M = self._constant_mass(p)
            if self.n_dof == 1:
                return p / M[0, 0]
            return torch.linalg.solve(M, p.T).T
        if self.n_dof == 1:
            return p / self.mass(q)[:, 0]
        return torch.linalg.solve(self.mass(q), p.unsqueeze(-1)).squeeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        q, p = x[:, : self.n_dof], x[:, self.n_dof :]
        return 0.5 * rowdot(p, self.velocity(q, p)) + self.potential(q)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``(dH/dq, dH/dp)``, shape (batch, n_states)."""
        if self.state_dependent_mass:
            return super().grad(x)
        q, p = x[:, : self.n_dof], x[:, self.n_dof :]
        return torch.cat([self.potential_grad(q), self.velocity(q, p)], dim=-1)

    def invariant_gradient(self, x: Tensor, x_next: Tensor) -> Tensor:
        r"""Return the discrete gradient through the energy's invariants.

        The kinetic part is quadratic, so its midpoint gradient
        :math:`M^{-1}\bar p` is exact; each potential contributes its own
        ``discrete_grad``. Needs a constant mass and potentials that have
        one (quadratic, polynomial, cosine, gravitational).

        Parameters
        ----------
        x, x_next : Tensor, shape (batch, n_states)
            The two states.

        Returns
        -------
        Tensor, shape (batch, n_states)

        Examples
        --------
        >>> import torch
        >>> H = MechanicalHamiltonian(1, potential=CosinePotential(9.81))
        >>> x, xn = torch.tensor([[0.3, 0.0]]), torch.tensor([[0.5, -0.4]])
        >>> g = H.invariant_gradient(x, xn)
        >>> torch.allclose(H(xn) - H(x), (g * (xn - x)).sum(-1))
        True
        """
        k = self.n_dof
        q, p = x[:, :k], x[:, k:]
        q_next, p_next = x_next[:, :k], x_next[:, k:]
        dV = torch.zeros_like(q)
        for V in self.potentials:
            dV = dV + V.discrete_grad(q, q_next)  # type: ignore[operator]
        v = self.velocity(q, 0.5 * (p + p_next))
        return torch.cat([dV, v], dim=-1)

    def lower_bound(self) -> float:
        """Return the sum of the potentials' bounds (kinetic energy is >= 0)."""
        return float(sum(V.lower_bound() for V in self.potentials))

    def _invariant_refusal(self) -> str | None:
        if self.state_dependent_mass:
            return "this MechanicalHamiltonian has a state-dependent mass"
        for V in self.potentials:
            why = V._invariant_refusal()
            if why is not None:
                return f"its potential {why}"
        return None
