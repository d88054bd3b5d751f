r"""Interconnection, dissipation and port matrices of a port-Hamiltonian model.

Each module maps states ``x`` of shape ``(batch, n_states)`` to a batch of
matrices and guarantees its structural property for any weights:

* ``J`` is skew-symmetric, :math:`J = S - S^\top` (or the canonical matrix),
  so :math:`J + J^\top = 0` holds exactly in floating point;
* ``R`` is positive semidefinite, :math:`R = L L^\top` with ``L`` lower
  triangular, optionally restricted to the coordinates a mask names, or
  diagonal with entries that are even polynomials with non-negative
  coefficients in their own coordinate (speed-dependent friction), or
  diagonal with a viscous plus a smoothed Coulomb law (dry friction);
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
    "CoulombViscousDissipation",
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


def _tanh_ratio(s: Tensor) -> tuple[Tensor, Tensor]:
    r"""Return :math:`\tanh(s)/s` and :math:`\mathrm{sech}^2(s) - \tanh(s)/s`.

    Both are even, finite at ``s = 0`` (1 and 0) and evaluated there by
    their Taylor series, so neither divides a rounding error by a small
    ``s``.
    """
    t = torch.tanh(s)
    small = s.abs() < 1e-3
    safe = torch.where(small, torch.ones_like(s), s)
    s2 = s * s
    ratio = torch.where(small, 1.0 - s2 / 3.0 + 2.0 * s2 * s2 / 15.0, t / safe)
    slope = torch.where(
        small, -2.0 * s2 / 3.0 + 8.0 * s2 * s2 / 15.0, 1.0 - t * t - ratio
    )
    return ratio, slope


class CoulombViscousDissipation(AbstractStructureMatrix):
    r"""Diagonal dissipation of viscous plus smoothed Coulomb friction.

    .. math:: R(x) = \operatorname{diag}_i\bigl(m_i\, r_i(x_i)\bigr), \qquad
       r_i(s) = c_i + F_i\, \frac{\tanh(s / w_i)}{s},

    so the friction force on coordinate ``i`` is
    :math:`r_i(s)\, s = c_i s + F_i \tanh(s / w_i)`: a viscous part and a
    Coulomb part of size ``F_i`` smoothed over a width ``w_i``. Since
    :math:`\tanh(s)/s > 0`, ``R`` is positive semidefinite for any weights,
    and :math:`r_i(0) = c_i + F_i / w_i` is finite. ``c_i`` and ``F_i`` are
    kept non-negative as ``softplus`` of free parameters; the widths are
    fixed (a smaller width is closer to a true dry friction and stiffer to
    integrate).

    Parameters
    ----------
    n_states : int
        Number of states.
    mask : sequence of bool, optional
        Which coordinates dissipate (default all).
    viscous, coulomb : Tensor, shape (n_states,), optional
        Initial ``c_i`` and ``F_i``; each must be positive (default 0.1 and
        0.01).
    width : float or Tensor of shape (n_states,), default 1e-2
        Smoothing widths ``w_i``, positive, in the units of the coordinate.

    Examples
    --------
    >>> import torch
    >>> R = CoulombViscousDissipation(
    ...     2, mask=[False, True], viscous=torch.tensor([1.0, 0.5]),
    ...     coulomb=torch.tensor([1.0, 2.0]), width=0.01,
    ... )
    >>> p = torch.tensor([[0.0, 3.0], [0.0, -3.0]])
    >>> force = R(p)[:, 1, 1] * p[:, 1]  # 0.5 p + 2 tanh(p / 0.01)
    >>> force.detach().tolist()
    [3.5, -3.5]
    >>> R(torch.zeros(1, 2))[0, 1, 1].item()  # c + F / w
    200.5
    """

    def __init__(
        self,
        n_states: int,
        *,
        mask: Sequence[bool] | Tensor | None = None,
        viscous: Tensor | None = None,
        coulomb: Tensor | None = None,
        width: float | Tensor = 1e-2,
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.state_dependent = True
        self.register_buffer("mask", _mask_vector(mask, n_states, "mask"))
        w = torch.as_tensor(width, dtype=torch.get_default_dtype()).flatten()
        if w.numel() == 1:
            w = w.expand(n_states).clone()
        if w.numel() != n_states or not bool((w > 0).all()):
            raise ValueError(
                f"`width` must be a positive number or {n_states} positive "
                f"numbers; found {width!r}"
            )
        self.register_buffer("width", w)
        raws = []
        for name, value, default in (
            ("viscous", viscous, 0.1),
            ("coulomb", coulomb, 0.01),
        ):
            if value is None:
                c = torch.full((n_states,), default)
            else:
                c = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
                if c.shape != (n_states,):
                    raise ShapeError(
                        f"`{name}` must have shape ({n_states},); found "
                        f"{tuple(c.shape)}"
                    )
                if bool((c <= 0).any()):
                    raise ValueError(
                        f"every entry of `{name}` must be positive (it is stored "
                        "through softplus); use a small value such as 1e-6 for "
                        "a term that should start off"
                    )
            raws.append(c + torch.log(-torch.expm1(-c)))
        self.viscous_raw = nn.Parameter(raws[0])
        self.coulomb_raw = nn.Parameter(raws[1])

    def coefficients(self) -> tuple[Tensor, Tensor]:
        """Return the viscous ``c`` and Coulomb ``F`` levels, each (n_states,)."""
        softplus = nn.functional.softplus
        return softplus(self.viscous_raw), softplus(self.coulomb_raw)

    def law(self, s: Tensor, index: int) -> tuple[Tensor, Tensor]:
        r"""Return :math:`r_i(s)` and :math:`s\, r_i'(s)` for one coordinate.

        Parameters
        ----------
        s : Tensor
            Values of coordinate ``index``, any shape.
        index : int
            Which coordinate's law (the mask is applied).

        Returns
        -------
        r, s_dr : Tensor
            Shaped like ``s``. ``r + s_dr`` is the slope of the friction
            force :math:`r(s) s` in ``s``.
        """
        c, F = self.coefficients()
        scale = self.mask[index].to(s.dtype)
        c, F = scale * c[index].to(s.dtype), scale * F[index].to(s.dtype)
        w = self.width[index].to(s.dtype)
        ratio, slope = _tanh_ratio(s / w)
        return c + (F / w) * ratio, (F / w) * slope

    def diagonal(self, x: Tensor) -> Tensor:
        """Return the diagonal of ``R(x)``, shape (batch, n_states)."""
        c, F = self.coefficients()
        w = self.width.to(x.dtype)
        ratio, _ = _tanh_ratio(x / w)
        r = c.to(x.dtype) + (F.to(x.dtype) / w) * ratio
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
