r"""Energies of particle systems that respect their symmetries.

``N`` particles in ``dim`` dimensions; the state stacks all positions, then
all momenta,

.. math:: x = (q_1, \dots, q_N, p_1, \dots, p_N), \qquad q_i, p_i \in
   \mathbb{R}^{\mathrm{dim}},

so ``x[:, :N*dim].reshape(-1, N, dim)`` are the positions (the layout of
:func:`phcontrol.plants.two_body`). :class:`PairwiseHamiltonian` is

.. math:: H = \sum_i \frac{|p_i|^2}{2 m_{s_i}}
   + \sum_{i<j} \varphi_{s_i s_j}(\rho_{ij}), \qquad
   \rho_{ij} = |q_i - q_j|^2,

with ``s_i`` the species of particle ``i``. Distances make ``H`` invariant
under translations and rotations; one pair potential per unordered pair of
species (and one mass per species) makes it invariant under permutations
of identical particles. With canonical ``J``, Noether's theorem then gives
conserved total momentum and angular momentum
(:func:`total_momentum`, :func:`angular_momentum`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._config import Configurable
from .errors import ShapeError
from .hamiltonians import AbstractHamiltonian, _TanhNet

__all__ = [
    "AbstractPairPotential",
    "MLPPairPotential",
    "PairwiseHamiltonian",
    "angular_momentum",
    "total_momentum",
]

# Rounding in phi(rho') - phi(rho) is a few ulps of the larger value; below
# this many ulps (relative to the quotient) a quadrature replaces it.
_ROUNDING_ULPS = 8.0


class AbstractPairPotential(nn.Module, Configurable):
    r"""A pair energy :math:`\varphi(\rho)` of the squared distance :math:`\rho`.

    ``forward(rho)`` and ``derivative(rho)`` (:math:`d\varphi/d\rho`) act
    elementwise on a tensor of any shape.

    Examples
    --------
    >>> from phcontrol.particles import AbstractPairPotential, MLPPairPotential
    >>> isinstance(MLPPairPotential(hidden=(4,)), AbstractPairPotential)
    True
    """

    def forward(self, rho: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, rho: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def divided_difference(self, rho: Tensor, rho_next: Tensor) -> Tensor:
        r"""Return :math:`(\varphi(\rho') - \varphi(\rho)) / (\rho' - \rho)`.

        Where rounding of the numerator could be large against the
        quotient (nearly equal arguments), the two-node Gauss average of
        :math:`\varphi'` over :math:`[\rho, \rho']` is returned instead; it
        differs from the quotient by :math:`O(|\rho' - \rho|^4)`.

        Parameters
        ----------
        rho, rho_next : Tensor
            Squared distances, same shape.

        Returns
        -------
        Tensor
            Same shape as ``rho``.
        """
        a, b = self(rho), self(rho_next)
        d = rho_next - rho
        safe = torch.where(d == 0, torch.ones_like(d), d)
        quotient = (b - a) / safe
        eps = torch.finfo(rho.dtype).eps
        noise = _ROUNDING_ULPS * eps * torch.maximum(a.abs(), b.abs())
        small = (d == 0) | (noise > eps**0.75 * (1.0 + quotient.abs()) * d.abs())
        if not bool(small.any()):
            return quotient
        node = 0.5 / math.sqrt(3.0)
        gauss = 0.5 * (
            self.derivative(rho + (0.5 - node) * d)
            + self.derivative(rho + (0.5 + node) * d)
        )
        return torch.where(small, gauss, quotient)

    def lower_bound(self) -> float:
        """Return a number ``phi`` never goes below (``-inf`` if unknown)."""
        return -math.inf


class MLPPairPotential(AbstractPairPotential):
    r"""A learned pair energy: a tanh MLP of :math:`\rho` plus a spring.

    .. math:: \varphi(\rho) = f_\theta(\rho / \ell^2) + \tfrac12 c\, \rho,
       \qquad c = a^2 \ge 0,

    so :math:`\varphi \ge -(\|w\|_1 + |b|)` of the output layer for any
    weights, and the spring lets it grow with distance where needed.

    Parameters
    ----------
    hidden : sequence of int, default (32, 32)
        Hidden widths of the MLP.
    length_scale : float, default 1.0
        :math:`\ell`, a typical distance; the MLP sees :math:`\rho/\ell^2`.
    stiffness : float, default 0.0
        Initial :math:`c` (learned; fixed with ``learn_stiffness=False``).
    learn_stiffness : bool, default True
        Learn :math:`c`.

    Examples
    --------
    >>> import torch
    >>> phi = MLPPairPotential(hidden=(8,), stiffness=2.0)
    >>> rho = torch.tensor([0.5, 1.0, 2.0])
    >>> phi(rho).shape, bool((phi(rho) >= phi.lower_bound()).all())
    (torch.Size([3]), True)
    """

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (32, 32),
        length_scale: float = 1.0,
        stiffness: float = 0.0,
        learn_stiffness: bool = True,
    ) -> None:
        super().__init__()
        if not length_scale > 0:
            raise ValueError(f"`length_scale` must be positive; found {length_scale!r}")
        if not stiffness >= 0:
            raise ValueError(f"`stiffness` must be >= 0; found {stiffness!r}")
        self.scale = 1.0 / float(length_scale) ** 2
        self.net = _TanhNet(1, hidden, out_scale=1.0)
        root = torch.tensor(math.sqrt(stiffness), dtype=torch.get_default_dtype())
        if learn_stiffness:
            self.root_stiffness = nn.Parameter(root)
        else:
            self.register_buffer("root_stiffness", root)

    @property
    def stiffness(self) -> Tensor:
        """The spring constant ``c``, a scalar tensor."""
        return self.root_stiffness**2

    def forward(self, rho: Tensor) -> Tensor:
        """Return ``phi(rho)``, same shape as ``rho``."""
        flat = (self.scale * rho).reshape(-1, 1)
        c = self.stiffness.to(rho.dtype)
        return self.net(flat).reshape(rho.shape) + 0.5 * c * rho

    def derivative(self, rho: Tensor) -> Tensor:
        """Return ``dphi/drho``, same shape as ``rho``."""
        flat = (self.scale * rho).reshape(-1, 1)
        g = self.net.value_and_grad(flat)[1].reshape(rho.shape)
        return self.scale * g + 0.5 * self.stiffness.to(rho.dtype)

    def divided_difference(self, rho: Tensor, rho_next: Tensor) -> Tensor:
        """Return the divided difference of ``phi`` (see the base class)."""
        # The spring is linear in rho: its quotient is c/2 exactly.
        flat = torch.stack([rho, rho_next]).reshape(2, -1, 1) * self.scale
        f = self.net(flat.reshape(-1, 1)).reshape(2, *rho.shape)
        d = rho_next - rho
        safe = torch.where(d == 0, torch.ones_like(d), d)
        quotient = (f[1] - f[0]) / safe
        eps = torch.finfo(rho.dtype).eps
        noise = _ROUNDING_ULPS * eps * torch.maximum(f[0].abs(), f[1].abs())
        small = (d == 0) | (noise > eps**0.75 * (1.0 + quotient.abs()) * d.abs())
        if bool(small.any()):
            node = 0.5 / math.sqrt(3.0)
            pts = torch.stack([rho + (0.5 - node) * d, rho + (0.5 + node) * d])
            g = self.net.value_and_grad((self.scale * pts).reshape(-1, 1))[1]
            gauss = self.scale * g.reshape(2, *rho.shape).mean(0)
            quotient = torch.where(small, gauss, quotient)
        return quotient + 0.5 * self.stiffness.to(rho.dtype)

    def lower_bound(self) -> float:
        """Return ``-(||w||_1 + |b|)`` of the output layer."""
        return -self.net.bound()


def _split(x: Tensor, n_particles: int, dim: int) -> tuple[Tensor, Tensor]:
    """Return positions and momenta, each (..., N, dim)."""
    k = n_particles * dim
    if x.shape[-1] != 2 * k:
        raise ShapeError(
            f"`x` must have 2 * n_particles * dim = {2 * k} entries in its last axis "
            f"for {n_particles} particles in {dim} dimensions; found {x.shape[-1]}. "
            "Stack all positions, then all momenta."
        )
    lead = x.shape[:-1]
    return x[..., :k].reshape(*lead, n_particles, dim), x[..., k:].reshape(
        *lead, n_particles, dim
    )


def total_momentum(x: Tensor, n_particles: int, dim: int = 2) -> Tensor:
    r"""Return :math:`\sum_i p_i`, shape (..., dim).

    Parameters
    ----------
    x : Tensor, shape (..., 2 n_particles dim)
        States in the layout of :mod:`phcontrol.particles`; any leading
        axes (batch, time).
    n_particles : int
        ``N``.
    dim : int, default 2
        Dimension of each position.

    Returns
    -------
    Tensor, shape (..., dim)

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor(
    ...     [[0.0, 0.0, 1.0, 0.0, 0.5, 0.0, -0.2, 1.0]], dtype=torch.float64
    ... )
    >>> total_momentum(x, 2).tolist()
    [[0.3, 1.0]]
    """
    _, p = _split(x, n_particles, dim)
    return p.sum(-2)


def angular_momentum(x: Tensor, n_particles: int, dim: int = 2) -> Tensor:
    r"""Return the angular momentum :math:`\sum_i q_i \times p_i` about the origin.

    Parameters
    ----------
    x : Tensor, shape (..., 2 n_particles dim)
        States in the layout of :mod:`phcontrol.particles`.
    n_particles : int
        ``N``.
    dim : {2, 3}, default 2
        Dimension of each position.

    Returns
    -------
    Tensor, shape (...,) for ``dim=2`` or (..., 3) for ``dim=3``

    Raises
    ------
    ShapeError
        For another ``dim`` or a state of the wrong size.

    Examples
    --------
    A particle at (1, 0) moving along +y:

    >>> import torch
    >>> angular_momentum(torch.tensor([[1.0, 0.0, 0.0, 2.0]]), 1).tolist()
    [2.0]
    """
    if dim not in (2, 3):
        raise ShapeError(
            f"`dim` must be 2 or 3 for angular_momentum; found {dim}. In other "
            "dimensions use the matrix sum_i (q_i p_i^T - p_i q_i^T)."
        )
    q, p = _split(x, n_particles, dim)
    if dim == 2:
        return (q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0]).sum(-1)
    return torch.linalg.cross(q, p, dim=-1).sum(-2)


class PairwiseHamiltonian(AbstractHamiltonian):
    r"""Kinetic energy plus pair potentials of distances (see the module).

    Parameters
    ----------
    n_particles : int
        ``N``, at least 2.
    dim : int, default 2
        Dimension of each position; the state has ``2 N dim`` entries.
    species : sequence of int, optional
        Species label ``0 .. S-1`` of each particle (default: all alike).
    masses : sequence of float, optional
        Mass of each species (default ones).
    learn_masses : bool, default False
        Learn the masses (kept positive through their logarithms).
    pair_potentials : sequence of AbstractPairPotential, optional
        One per unordered species pair ``(a, b)``, ``a <= b``, in the
        order ``(0,0), (0,1), ..., (0,S-1), (1,1), ...``. Default: one
        :class:`MLPPairPotential` each, with ``hidden``.
    hidden : sequence of int, default (32, 32)
        Hidden widths of the default pair potentials.

    Notes
    -----
    The gradient is
    :math:`\partial H / \partial q_i = \sum_{j \ne i} 2 \varphi'(\rho_{ij})
    (q_i - q_j)`, :math:`\partial H / \partial p_i = p_i / m_i`.
    :meth:`invariant_gradient` replaces :math:`\varphi'(\rho_{ij})` by the
    divided difference of :math:`\varphi` between the two states and
    :math:`q, p` by their means. Because :math:`\rho_{ij}` and
    :math:`|p_i|^2` are quadratic, their midpoint gradients are exact, so
    the result is a discrete gradient; its position part is a sum of
    pair forces along :math:`\bar q_i - \bar q_j`, equal and opposite,
    which is what keeps total and angular momentum in a step.

    Examples
    --------
    Three identical particles in the plane; ``H`` is unchanged by a
    rotation and a translation of all of them:

    >>> import math, torch
    >>> H = PairwiseHamiltonian(3, hidden=(8,))
    >>> x = torch.randn(4, 12)
    >>> c, s = math.cos(0.7), math.sin(0.7)
    >>> rot = torch.tensor([[c, -s], [s, c]])
    >>> q, p = x[:, :6].reshape(4, 3, 2), x[:, 6:].reshape(4, 3, 2)
    >>> moved = torch.cat([(q @ rot.T + 1.5).reshape(4, 6),
    ...                    (p @ rot.T).reshape(4, 6)], dim=1)
    >>> torch.allclose(H(moved), H(x))
    True
    """

    def __init__(
        self,
        n_particles: int,
        dim: int = 2,
        *,
        species: Sequence[int] | None = None,
        masses: Sequence[float] | None = None,
        learn_masses: bool = False,
        pair_potentials: Sequence[AbstractPairPotential] | None = None,
        hidden: Sequence[int] = (32, 32),
    ) -> None:
        super().__init__()
        if not (isinstance(n_particles, int) and n_particles >= 2):
            raise ValueError(
                f"`n_particles` must be an integer >= 2; found {n_particles!r}"
            )
        if not (isinstance(dim, int) and dim >= 1):
            raise ValueError(f"`dim` must be a positive integer; found {dim!r}")
        self.n_particles = n_particles
        self.dim = dim
        self.n_states = 2 * n_particles * dim
        labels = [0] * n_particles if species is None else [int(s) for s in species]
        if len(labels) != n_particles:
            raise ShapeError(
                f"`species` must hold one label per particle ({n_particles}); "
                f"found {len(labels)}"
            )
        n_species = max(labels) + 1
        if min(labels) < 0 or sorted(set(labels)) != list(range(n_species)):
            raise ValueError(
                f"`species` must use every label 0 .. S-1 and no other; found "
                f"{sorted(set(labels))}. Renumber the species from 0."
            )
        self.n_species = n_species
        n_types = n_species * (n_species + 1) // 2
        if pair_potentials is None:
            pots = [MLPPairPotential(hidden=hidden) for _ in range(n_types)]
        else:
            pots = list(pair_potentials)
            if len(pots) != n_types:
                raise ShapeError(
                    f"`pair_potentials` must hold one potential per species pair "
                    f"({n_types} for {n_species} species); found {len(pots)}"
                )
        self.pair_potentials = nn.ModuleList(pots)
        m0 = torch.ones(n_species) if masses is None else torch.as_tensor(masses)
        m0 = m0.to(torch.get_default_dtype()).reshape(-1)
        if m0.numel() != n_species or not bool((m0 > 0).all()):
            raise ValueError(
                f"`masses` must hold {n_species} positive values (one per species); "
                f"found {m0.tolist()}"
            )
        if learn_masses:
            self.log_masses = nn.Parameter(m0.log())
        else:
            self.register_buffer("log_masses", m0.log())
        first, second = torch.triu_indices(n_particles, n_particles, 1)
        a = torch.tensor(labels)[first]
        b = torch.tensor(labels)[second]
        lo, hi = torch.minimum(a, b), torch.maximum(a, b)
        # Index of the unordered pair (lo, hi) in the documented order.
        kind = lo * n_species - lo * (lo - 1) // 2 + (hi - lo)
        self.register_buffer("first", first)
        self.register_buffer("second", second)
        self.register_buffer("kind", kind)
        self.register_buffer("labels", torch.tensor(labels))

    def masses(self, dtype: torch.dtype | None = None) -> Tensor:
        """Return the mass of each particle, shape (n_particles,)."""
        m = self.log_masses.exp()[self.labels]
        return m if dtype is None else m.to(dtype)

    def _pairs(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """Return gaps ``q_i - q_j`` (batch, P, dim) and ``rho`` (batch, P)."""
        d = q[:, self.first] - q[:, self.second]
        return d, (d * d).sum(-1)

    def _per_kind(self, rho: Tensor, fn: str, rho_next: Tensor | None = None) -> Tensor:
        """Apply each pair type's potential method ``fn`` to ``rho``, (batch, P)."""
        args = (rho,) if rho_next is None else (rho, rho_next)
        if len(self.pair_potentials) == 1:
            return getattr(self.pair_potentials[0], fn)(*args)
        out = torch.zeros_like(rho)
        for t, phi in enumerate(self.pair_potentials):
            out = torch.where(self.kind == t, getattr(phi, fn)(*args), out)
        return out

    def _forces(self, w: Tensor, d: Tensor) -> Tensor:
        """Return ``sum_j 2 w_ij d_ij`` per particle, shape (batch, N * dim)."""
        f = (2.0 * w).unsqueeze(-1) * d
        out = d.new_zeros(d.shape[0], self.n_particles, self.dim)
        out = out.index_add(1, self.first, f).index_add(1, self.second, -f)
        return out.reshape(d.shape[0], -1)

    def _qp(self, x: Tensor) -> tuple[Tensor, Tensor]:
        k = self.n_particles * self.dim
        return x[:, :k].reshape(-1, self.n_particles, self.dim), x[:, k:]

    def _kinetic_grad(self, p: Tensor) -> Tensor:
        m = self.masses(p.dtype).repeat_interleave(self.dim)
        return p / m

    def forward(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        q, p = self._qp(x)
        _, rho = self._pairs(q)
        kinetic = 0.5 * (p * self._kinetic_grad(p)).sum(-1)
        return kinetic + self._per_kind(rho, "forward").sum(-1)

    def grad(self, x: Tensor) -> Tensor:
        """Return ``(dH/dq, dH/dp)``, shape (batch, n_states), by hand."""
        q, p = self._qp(x)
        d, rho = self._pairs(q)
        w = self._per_kind(rho, "derivative")
        return torch.cat([self._forces(w, d), self._kinetic_grad(p)], dim=-1)

    def invariant_gradient(self, x: Tensor, x_next: Tensor) -> Tensor:
        r"""Return the discrete gradient through the pair distances (see Notes).

        Parameters
        ----------
        x, x_next : Tensor, shape (batch, n_states)
            The two states.

        Returns
        -------
        Tensor, shape (batch, n_states)
            ``g`` with :math:`H(x') - H(x) = g^\top (x' - x)` up to
            round-off, and ``g = grad H(x)`` when ``x' = x``.

        Examples
        --------
        >>> import torch
        >>> H = PairwiseHamiltonian(3, hidden=(8,))
        >>> x, xn = torch.randn(2, 12), torch.randn(2, 12)
        >>> g = H.invariant_gradient(x, xn)
        >>> torch.allclose(H(xn) - H(x), (g * (xn - x)).sum(-1))
        True
        """
        q, p = self._qp(x)
        qn, pn = self._qp(x_next)
        d, rho = self._pairs(q)
        dn, rho_n = self._pairs(qn)
        w = self._per_kind(rho, "divided_difference", rho_n)
        return torch.cat(
            [self._forces(w, 0.5 * (d + dn)), self._kinetic_grad(0.5 * (p + pn))], -1
        )

    def lower_bound(self) -> float:
        """Return the number of pairs of each kind times its potential's bound."""
        counts = torch.bincount(self.kind, minlength=len(self.pair_potentials))
        return float(
            sum(
                int(c) * phi.lower_bound()
                for c, phi in zip(counts, self.pair_potentials, strict=True)
                if int(c)
            )
        )

    def _invariant_refusal(self) -> str | None:
        return None
