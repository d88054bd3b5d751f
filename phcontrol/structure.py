r"""Interconnection, dissipation and port matrices of a port-Hamiltonian model.

Each module maps states ``x`` of shape ``(batch, n_states)`` to a batch of
matrices and guarantees its structural property for any weights:

* ``J`` is skew-symmetric, :math:`J = S - S^\top` (or the canonical matrix),
  so :math:`J + J^\top = 0` holds exactly in floating point;
* ``R`` is positive semidefinite, :math:`R = L L^\top` with ``L`` lower
  triangular, optionally restricted to the coordinates a mask names, or
  diagonal with entries that are even polynomials with non-negative
  coefficients in their own coordinate (speed-dependent friction);
* ``G`` is the input matrix, ``(batch, n_states, n_inputs)``.

Constant matrices are returned expanded (no copy) to the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._config import Configurable
from .errors import ShapeError

__all__ = [
    "AbstractStructureMatrix",
    "SkewSymmetric",
    "CanonicalJ",
    "CholeskyDissipation",
    "PolynomialDissipation",
    "InputMatrix",
    "mlp",
]


def mlp(
    n_in: int,
    n_out: int,
    hidden: Sequence[int] = (32,),
    activation: type[nn.Module] = nn.Tanh,
) -> nn.Sequential:
    """Build a multilayer perceptron.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden : sequence of int, default (32,)
        Widths of the hidden layers.
    activation : type of nn.Module, default nn.Tanh
        Activation after each hidden layer.

    Returns
    -------
    nn.Sequential
        Maps ``(batch, n_in)`` to ``(batch, n_out)``.

    Examples
    --------
    >>> import torch
    >>> net = mlp(2, 3, hidden=(8,))
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    """
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _mask_vector(mask: Sequence[bool] | Tensor | None, n: int, name: str) -> Tensor:
    if mask is None:
        return torch.ones(n)
    m = torch.as_tensor(mask, dtype=torch.float64).flatten()
    if m.numel() != n:
        raise ShapeError(
            f"`{name}` must have one entry per state ({n}); found {m.numel()}"
        )
    return (m != 0).to(torch.get_default_dtype())


class AbstractStructureMatrix(nn.Module, Configurable):
    """Base of the J, R and G modules.

    Attributes
    ----------
    n_states : int
        Number of states.
    state_dependent : bool
        True when the matrix depends on ``x``.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.structure import AbstractStructureMatrix
    >>> obj = phc.CanonicalJ(2)
    >>> isinstance(obj, AbstractStructureMatrix)
    True
    """

    n_states: int
    state_dependent: bool

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SkewSymmetric(AbstractStructureMatrix):
    r"""Skew-symmetric interconnection :math:`J = S - S^\top`.

    Parameters
    ----------
    n_states : int
        Number of states.
    state_dependent : bool, default False
        When True, ``S(x)`` is an MLP of the state; otherwise ``S`` is a
        learnable constant.
    hidden : sequence of int, default (32,)
        Hidden widths of the MLP when state dependent.
    init : Tensor, shape (n_states, n_states), optional
        Initial value of the constant ``S`` (default small random).

    Examples
    --------
    >>> import torch
    >>> J = SkewSymmetric(3)
    >>> M = J(torch.randn(4, 3))
    >>> bool((M + M.transpose(1, 2) == 0).all())
    True
    """

    def __init__(
        self,
        n_states: int,
        *,
        state_dependent: bool = False,
        hidden: Sequence[int] = (32,),
        init: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.state_dependent = state_dependent
        if state_dependent:
            self.net = mlp(n_states, n_states * n_states, hidden)
        else:
            s0 = 0.1 * torch.randn(n_states, n_states) if init is None else init
            self.S = nn.Parameter(torch.as_tensor(s0).clone())

    def forward(self, x: Tensor) -> Tensor:
        """Return J(x), shape (batch, n_states, n_states)."""
        n = self.n_states
        if self.state_dependent:
            S = self.net(x).reshape(-1, n, n)
            return S - S.transpose(1, 2)
        S = self.S.to(x.dtype)
        return (S - S.T).expand(x.shape[0], n, n)


class CanonicalJ(AbstractStructureMatrix):
    r"""The canonical symplectic matrix :math:`[[0, I], [-I, 0]]`.

    Parameters
    ----------
    n_states : int
        Number of states; must be even, ordered ``(q, p)``.

    Examples
    --------
    >>> import torch
    >>> CanonicalJ(2)(torch.zeros(1, 2)).tolist()
    [[[0.0, 1.0], [-1.0, 0.0]]]
    """

    def __init__(self, n_states: int) -> None:
        super().__init__()
        if n_states % 2:
            raise ShapeError(
                f"`n_states` must be even for the canonical J (q, p); found "
                f"{n_states}. Use SkewSymmetric for odd state dimensions."
            )
        self.n_states = n_states
        self.state_dependent = False
        k = n_states // 2
        eye = torch.eye(k)
        zero = torch.zeros(k, k)
        self.register_buffer(
            "matrix", torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)])
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return J, shape (batch, n_states, n_states)."""
        n = self.n_states
        return self.matrix.to(x.dtype).expand(x.shape[0], n, n)


class CholeskyDissipation(AbstractStructureMatrix):
    r"""Positive semidefinite dissipation :math:`R = L L^\top`.

    ``L`` is lower triangular. A mask restricts dissipation to the named
    coordinates: :math:`R = D L L^\top D` with ``D = diag(mask)``, which keeps
    ``R`` positive semidefinite.

    Parameters
    ----------
    n_states : int
        Number of states.
    state_dependent : bool, default False
        When True, ``L(x)`` is an MLP of the state.
    mask : sequence of bool, optional
        Which coordinates dissipate (default all).
    hidden : sequence of int, default (32,)
        Hidden widths of the MLP when state dependent.
    init_scale : float, default 0.1
        Initial diagonal of the constant ``L``.

    Examples
    --------
    >>> import torch
    >>> R = CholeskyDissipation(2, mask=[False, True])
    >>> M = R(torch.zeros(1, 2))[0]
    >>> M = M.detach()
    >>> float(M[0, 0]), bool(torch.linalg.eigvalsh(M).min() >= 0)
    (0.0, True)
    """

    def __init__(
        self,
        n_states: int,
        *,
        state_dependent: bool = False,
        mask: Sequence[bool] | Tensor | None = None,
        hidden: Sequence[int] = (32,),
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.state_dependent = state_dependent
        self.register_buffer("mask", _mask_vector(mask, n_states, "mask"))
        rows, cols = torch.tril_indices(n_states, n_states)
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols)
        if state_dependent:
            self.net = mlp(n_states, rows.numel(), hidden)
        else:
            self.L = nn.Parameter(init_scale * torch.eye(n_states))

    def factor(self, x: Tensor) -> Tensor:
        """Return the masked factor ``D L``, shape (batch, n_states, n_states)."""
        n = self.n_states
        if self.state_dependent:
            vals = self.net(x)
            L = x.new_zeros(x.shape[0], n, n)
            L[:, self.rows, self.cols] = vals
        else:
            L = torch.tril(self.L.to(x.dtype)).expand(x.shape[0], n, n)
        return self.mask.to(x.dtype)[:, None] * L

    def forward(self, x: Tensor) -> Tensor:
        """Return R(x), shape (batch, n_states, n_states)."""
        F = self.factor(x)
        return F @ F.transpose(1, 2)


class PolynomialDissipation(AbstractStructureMatrix):
    r"""Diagonal dissipation that grows with the size of its own coordinate.

    .. math:: R(x) = \operatorname{diag}_i\bigl(m_i\, r_i(x_i)\bigr), \qquad
       r_i(s) = \sum_{k=0}^{d} c_{ik}\, s^{2k}, \quad c_{ik} \ge 0,

    so ``R`` is positive semidefinite for any weights. On the momentum of a
    mechanical model, ``r(p)`` is a damping that rises with speed, the law
    of many circuits and of air or fluid friction. Coefficients are kept
    non-negative as ``softplus`` of free parameters.

    Parameters
    ----------
    n_states : int
        Number of states.
    mask : sequence of bool, optional
        Which coordinates dissipate (default all).
    degree : int, default 1
        Highest power of ``s**2`` in each ``r_i``.
    init : Tensor, shape (n_states, degree + 1), optional
        Initial coefficients ``c_ik``, lowest power first; each must be
        positive (default ``0.1`` for ``k = 0`` and ``1e-3`` above).

    Examples
    --------
    >>> import torch
    >>> R = PolynomialDissipation(
    ...     2, mask=[False, True], init=torch.tensor([[1.0, 1.0], [0.5, 2.0]])
    ... )
    >>> R(torch.tensor([[3.0, 1.0]]))[0].detach().tolist()
    [[0.0, 0.0], [0.0, 2.5]]
    """

    def __init__(
        self,
        n_states: int,
        *,
        mask: Sequence[bool] | Tensor | None = None,
        degree: int = 1,
        init: Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(degree, int) or degree < 0:
            raise ValueError(f"`degree` must be an integer >= 0; found {degree!r}")
        self.n_states = n_states
        self.degree = degree
        self.state_dependent = degree > 0
        self.register_buffer("mask", _mask_vector(mask, n_states, "mask"))
        if init is None:
            c = torch.full((n_states, degree + 1), 1e-3)
            c[:, 0] = 0.1
        else:
            c = torch.as_tensor(init, dtype=torch.get_default_dtype()).clone()
            if c.shape != (n_states, degree + 1):
                raise ShapeError(
                    f"`init` must have shape ({n_states}, {degree + 1}); found "
                    f"{tuple(c.shape)}"
                )
            if bool((c <= 0).any()):
                raise ValueError(
                    "every initial coefficient in `init` must be positive "
                    "(they are stored through softplus); use a small value "
                    "such as 1e-6 for a term that should start off"
                )
        self.raw = nn.Parameter(c + torch.log(-torch.expm1(-c)))

    def coefficients(self) -> Tensor:
        """Return ``c``, shape (n_states, degree + 1), lowest power first."""
        return nn.functional.softplus(self.raw)

    def diagonal(self, x: Tensor) -> Tensor:
        """Return the diagonal of ``R(x)``, shape (batch, n_states)."""
        c = self.coefficients().to(x.dtype)
        s2 = x * x
        r = c[:, -1].expand_as(x)
        for k in range(self.degree - 1, -1, -1):
            r = r * s2 + c[:, k]
        return self.mask.to(x.dtype) * r

    def forward(self, x: Tensor) -> Tensor:
        """Return R(x), shape (batch, n_states, n_states)."""
        return torch.diag_embed(self.diagonal(x))


class InputMatrix(AbstractStructureMatrix):
    """Input matrix ``G``, constant or an MLP of the state.

    Parameters
    ----------
    n_states, n_inputs : int
        Matrix size.
    state_dependent : bool, default False
        When True, ``G(x)`` is an MLP of the state.
    mask : Tensor or array of bool, shape (n_states, n_inputs), optional
        Entries allowed to be non-zero (default all).
    hidden : sequence of int, default (32,)
        Hidden widths of the MLP when state dependent.
    init : Tensor, shape (n_states, n_inputs), optional
        Initial constant value (default small random).

    Examples
    --------
    >>> import torch
    >>> G = InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]]))
    >>> G(torch.zeros(3, 2)).shape
    torch.Size([3, 2, 1])
    """

    def __init__(
        self,
        n_states: int,
        n_inputs: int,
        *,
        state_dependent: bool = False,
        mask: Tensor | None = None,
        hidden: Sequence[int] = (32,),
        init: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.n_inputs = n_inputs
        self.state_dependent = state_dependent
        if mask is None:
            m = torch.ones(n_states, n_inputs)
        else:
            m = torch.as_tensor(mask, dtype=torch.float64)
            if m.shape != (n_states, n_inputs):
                raise ShapeError(
                    f"`mask` must have shape ({n_states}, {n_inputs}); found "
                    f"{tuple(m.shape)}"
                )
            m = (m != 0).to(torch.get_default_dtype())
        self.register_buffer("mask", m)
        if state_dependent:
            self.net = mlp(n_states, n_states * n_inputs, hidden)
        else:
            g0 = 0.1 * torch.randn(n_states, n_inputs) if init is None else init
            g0 = torch.as_tensor(g0, dtype=torch.get_default_dtype())
            if g0.shape != (n_states, n_inputs):
                raise ShapeError(
                    f"`init` must have shape ({n_states}, {n_inputs}); found "
                    f"{tuple(g0.shape)}"
                )
            self.weight = nn.Parameter(g0.clone())

    def forward(self, x: Tensor) -> Tensor:
        """Return G(x), shape (batch, n_states, n_inputs)."""
        n, m = self.n_states, self.n_inputs
        mask = self.mask.to(x.dtype)
        if self.state_dependent:
            return self.net(x).reshape(-1, n, m) * mask
        return (self.weight.to(x.dtype) * mask).expand(x.shape[0], n, m)
