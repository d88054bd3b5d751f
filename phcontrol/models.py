r"""Port-Hamiltonian models and the baselines that share their interface.

.. math::

    \dot x = (J(x) - R(x)) \nabla H(x) + G(x) u, \qquad y = G(x)^\top \nabla H(x)

Shapes: states ``x`` are ``(batch, n_states)``, inputs ``u`` are
``(batch, n_inputs)``, port outputs ``y`` are ``(batch, n_inputs)``.
Because ``J`` is skew and ``R`` positive semidefinite for any weights,

.. math:: \dot H = -\nabla H^\top R \nabla H + y^\top u \le y^\top u,

so every :class:`PortHamiltonian` is passive with storage ``H``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._config import Configurable
from ._tensor import is_shared, matvec
from ._validation import check_batch
from .errors import NotSupportedError, ShapeError
from .hamiltonians import AbstractHamiltonian, MLPHamiltonian
from .structure import (
    AbstractStructureMatrix,
    CanonicalJ,
    CholeskyDissipation,
    mlp,
)

__all__ = ["AbstractModel", "PortHamiltonian", "NeuralODE", "HNN"]


class AbstractModel(nn.Module, Configurable):
    """Common interface of every dynamical model.

    Attributes
    ----------
    n_states, n_inputs : int
        Sizes of ``x`` and ``u``.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.models import AbstractModel
    >>> obj = phc.plants.pendulum()
    >>> isinstance(obj, AbstractModel)
    True
    """

    n_states: int
    n_inputs: int

    def vector_field(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Return ``dx/dt``, shape (batch, n_states)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def forward(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(x, u)

    def _inputs(self, x: Tensor, u: Tensor | None) -> Tensor:
        if u is None:
            return x.new_zeros(x.shape[0], self.n_inputs)
        if u.dim() == 1:
            u = u.unsqueeze(0)
        if (
            u.dim() != 2
            or u.shape[-1] != self.n_inputs
            or u.shape[0] not in (1, x.shape[0])
        ):
            raise ShapeError(
                f"`u` must have shape (batch, {self.n_inputs}) with batch "
                f"{x.shape[0]}; found {tuple(u.shape)}"
            )
        return u.to(x.dtype).expand(x.shape[0], self.n_inputs)


class PortHamiltonian(AbstractModel):
    r"""A port-Hamiltonian model, passive by construction.

    Parameters
    ----------
    H : AbstractHamiltonian
        Energy, bounded below.
    J : AbstractStructureMatrix
        Skew-symmetric interconnection.
    R : AbstractStructureMatrix, optional
        Positive semidefinite dissipation (default none: lossless).
    G : AbstractStructureMatrix, optional
        Input matrix (default none: an autonomous model, ``n_inputs = 0``).

    Examples
    --------
    A mass-spring-damper with unit mass, stiffness and damping:

    >>> import torch
    >>> import phcontrol as phc
    >>> model = phc.PortHamiltonian(
    ...     H=phc.QuadraticHamiltonian(2),
    ...     J=phc.CanonicalJ(2),
    ...     R=phc.CholeskyDissipation(2, mask=[False, True], init_scale=1.0),
    ...     G=phc.InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])),
    ... )
    >>> x, u = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5]])
    >>> [round(v, 4) for v in model.vector_field(x, u).detach()[0].tolist()]
    [0.0, -0.5]
    >>> model.output(x).detach().tolist()
    [[0.0]]
    """

    def __init__(
        self,
        H: AbstractHamiltonian,
        J: AbstractStructureMatrix,
        R: AbstractStructureMatrix | None = None,
        G: AbstractStructureMatrix | None = None,
    ) -> None:
        super().__init__()
        n = H.n_states
        for name, part in (("J", J), ("R", R), ("G", G)):
            if part is not None and part.n_states != n:
                raise ShapeError(
                    f"`{name}` is built for {part.n_states} states but `H` has {n}; "
                    "build every part with the same n_states"
                )
        self.H = H
        self.J = J
        self.R = R
        self.G = G
        self.n_states = n
        n_inputs = 0 if G is None else G.n_inputs  # type: ignore[attr-defined]
        self.n_inputs = int(n_inputs)

    def energy(self, x: Tensor) -> Tensor:
        """Return ``H(x)``, shape (batch,)."""
        return self.H(check_batch(x, "x", self.n_states))

    def grad_energy(self, x: Tensor) -> Tensor:
        """Return ``grad H(x)``, shape (batch, n_states)."""
        return self.H.grad(check_batch(x, "x", self.n_states))

    def J_matrix(self, x: Tensor) -> Tensor:
        """Return ``J(x)``, shape (batch, n_states, n_states)."""
        return self.J(x)

    def R_matrix(self, x: Tensor) -> Tensor:
        """Return ``R(x)``, shape (batch, n_states, n_states) (zeros if lossless)."""
        if self.R is None:
            return x.new_zeros(x.shape[0], self.n_states, self.n_states)
        return self.R(x)

    def G_matrix(self, x: Tensor) -> Tensor:
        """Return ``G(x)``, shape (batch, n_states, n_inputs)."""
        if self.G is None:
            return x.new_zeros(x.shape[0], self.n_states, 0)
        return self.G(x)

    def structure(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(J - R, G)`` at ``x``, the matrices a step needs."""
        JR = self.J(x)
        if self.R is not None:
            R = self.R(x)
            if is_shared(JR) and is_shared(R):
                JR = (JR[0] - R[0]).expand_as(JR)  # stays one shared matrix
            else:
                JR = JR - R
        return JR, self.G_matrix(x)

    def flow(self, x: Tensor, grad_H: Tensor, u: Tensor) -> Tensor:
        r"""Return :math:`(J - R)(x)\, g + G(x) u` for a given gradient ``g``.

        Parameters
        ----------
        x : Tensor, shape (batch, n_states)
            Where the structure matrices are evaluated.
        grad_H : Tensor, shape (batch, n_states)
            Exact or discrete gradient of ``H``.
        u : Tensor, shape (batch, n_inputs)
            Input.

        Returns
        -------
        Tensor, shape (batch, n_states)
        """
        JR, G = self.structure(x)
        out = matvec(JR, grad_H)
        if self.n_inputs:
            out = out + matvec(G, u)
        return out

    def vector_field(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Return ``(J - R) grad H + G u``, shape (batch, n_states)."""
        x = check_batch(x, "x", self.n_states)
        return self.flow(x, self.H.grad(x), self._inputs(x, u))

    def output(self, x: Tensor, grad_H: Tensor | None = None) -> Tensor:
        """Return the port output ``G(x)^T grad H``, shape (batch, n_inputs)."""
        x = check_batch(x, "x", self.n_states)
        g = self.H.grad(x) if grad_H is None else grad_H
        return (self.G_matrix(x).transpose(1, 2) @ g.unsqueeze(-1)).squeeze(-1)


class NeuralODE(AbstractModel):
    r"""Black-box baseline :math:`\dot x = f_\theta(x, u)`; it has no energy.

    Parameters
    ----------
    n_states, n_inputs : int
        Sizes of ``x`` and ``u``.
    hidden : sequence of int, default (64, 64)
        Hidden widths of the MLP.

    Examples
    --------
    >>> import torch
    >>> f = NeuralODE(2, 1, hidden=(8,))
    >>> f.vector_field(torch.zeros(3, 2), torch.zeros(3, 1)).shape
    torch.Size([3, 2])
    """

    def __init__(
        self, n_states: int, n_inputs: int = 0, *, hidden: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__()
        self.n_states = n_states
        self.n_inputs = n_inputs
        self.net = mlp(n_states + n_inputs, n_states, hidden)

    def vector_field(self, x: Tensor, u: Tensor | None = None) -> Tensor:
        """Return ``f(x, u)``, shape (batch, n_states)."""
        x = check_batch(x, "x", self.n_states)
        return self.net(torch.cat([x, self._inputs(x, u)], dim=-1))

    def energy(self, x: Tensor) -> Tensor:
        """A neural ODE has no energy; raises NotSupportedError."""
        raise NotSupportedError(
            "NeuralODE has no energy function; use PortHamiltonian or HNN when the "
            "energy balance is needed"
        )


class HNN(PortHamiltonian):
    """Hamiltonian neural network: an MLP energy, canonical ``J``, no ``R``, no ``G``.

    Parameters
    ----------
    n_states : int
        Even number of states ``(q, p)``.
    hidden : sequence of int, default (64, 64)
        Hidden widths of the energy MLP.
    dissipation : bool, default False
        Add a learned constant ``R = L L^T`` (a dissipative HNN).

    Examples
    --------
    >>> import torch
    >>> model = HNN(2, hidden=(16,))
    >>> model.vector_field(torch.zeros(1, 2)).shape
    torch.Size([1, 2])
    """

    def __init__(
        self,
        n_states: int,
        *,
        hidden: Sequence[int] = (64, 64),
        dissipation: bool = False,
    ) -> None:
        super().__init__(
            H=MLPHamiltonian(n_states, hidden=hidden),
            J=CanonicalJ(n_states),
            R=CholeskyDissipation(n_states) if dissipation else None,
        )
