r"""What every controller shares: the interface, the closed-loop form, matrix parts.

A controller is a static state feedback ``u(t, x)`` designed on a pH
model, the *design model*. Most passivity-based controllers also know the
port-Hamiltonian form of the loop they close,

.. math:: \dot x = (J_d(x) - R_d(x))\, \nabla H_d(x) + G(x)\, v,

with ``v`` an external input added to the feedback (``u = \beta(x) + v``).
:class:`ClosedLoopForm` holds ``H_d``, ``J_d``, ``R_d`` and ``G``; whether
that form really reproduces the plant under the feedback is checked by
:func:`~phcontrol.control.closed_loop`, never assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_batch
from ..errors import NotSupportedError, ShapeError
from ..hamiltonians import AbstractHamiltonian
from ..models import PortHamiltonian
from ..structure import AbstractStructureMatrix

__all__ = ["AbstractController", "ClosedLoopForm"]


@dataclass(frozen=True)
class ClosedLoopForm:
    """The port-Hamiltonian form of a closed loop, as a controller claims it.

    Attributes
    ----------
    H : AbstractHamiltonian
        Closed-loop energy ``H_d``.
    J : AbstractStructureMatrix
        Closed-loop interconnection ``J_d`` (skew).
    R : AbstractStructureMatrix or None
        Closed-loop dissipation ``R_d``; positive semidefinite for every
        controller except energy pumping, which injects negative damping
        while the energy is below its target.
    G : AbstractStructureMatrix or None
        Port of the external input ``v``.
    x_star : Tensor, shape (n_states,)
        The state the design drives the loop to.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection
    >>> form = DampingInjection(phc.plants.mass_spring_damper().double(), 2.0).form()
    >>> type(form.H).__name__, form.x_star.tolist()
    ('MechanicalHamiltonian', [0.0, 0.0])
    """

    H: AbstractHamiltonian
    J: AbstractStructureMatrix
    R: AbstractStructureMatrix | None
    G: AbstractStructureMatrix | None
    x_star: Tensor


class AbstractController:
    """Base of every controller: a callable ``u(t, x)`` designed on a pH model.

    Attributes
    ----------
    plant : PortHamiltonian
        The design model.
    n_states : int
        Size of the state the controller reads (the design model's, or more
        for a controller with its own states such as an integrator).
    n_inputs : int
        Size of ``u``.
    x_star : Tensor, shape (n_states,)
        The target state.

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import AbstractController, DampingInjection
    >>> obj = DampingInjection(phc.plants.mass_spring_damper(), 1.0)
    >>> isinstance(obj, AbstractController)
    True
    """

    plant: PortHamiltonian
    n_states: int
    n_inputs: int
    x_star: Tensor

    def __call__(self, t: Tensor | float, x: Tensor) -> Tensor:
        """Return ``u(t, x)``, shape (batch, n_inputs); ``t`` is not used."""
        return self.control(check_batch(x, "x", self.n_states))

    def control(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Return ``u(x)``, shape (batch, n_inputs)."""
        raise NotImplementedError

    def form(self) -> ClosedLoopForm | None:
        """Return the closed loop's pH form on the design model, or None."""
        return None

    def loop_field(self, plant: PortHamiltonian, x: Tensor) -> Tensor:
        """Return ``dx/dt`` of ``plant`` under this feedback, shape (batch, n)."""
        return plant.vector_field(x, self.control(x))

    def sample_states(self, n: int, box: float, generator: torch.Generator) -> Tensor:
        """Return ``n`` seeded states around ``x_star``, shape (n, n_states).

        Each coordinate is ``x*_i + box (1 + |x*_i|) w`` with ``w``
        uniform in ``[-1, 1]``.
        """
        xs = self.x_star
        w = 2.0 * torch.rand(n, xs.numel(), generator=generator, dtype=xs.dtype) - 1
        return xs + box * (1.0 + xs.abs()) * w

    def to_dict(self) -> dict[str, Any]:
        """Return the controller as JSON-able data (class, gains, target)."""
        return {
            "controller": type(self).__name__,
            "x_star": self.x_star.tolist(),
            **self._parameters(),
        }

    def _parameters(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def plant_dtype(plant: PortHamiltonian) -> torch.dtype:
    """Return the floating dtype of a model's tensors (float64 if it has none)."""
    for t in list(plant.parameters()) + list(plant.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float64


def as_gain(
    value: Any, size: int, name: str, *, dtype: torch.dtype, definite: bool = False
) -> Tensor:
    """Return a symmetric (size, size) gain, checked semidefinite (or definite).

    A number ``k`` stands for ``k I``; a vector for a diagonal.
    """
    K = torch.as_tensor(np.asarray(value, dtype=float), dtype=dtype)
    if K.dim() == 0:
        K = K * torch.eye(size, dtype=dtype)
    elif K.dim() == 1:
        K = torch.diag(K)
    if K.shape != (size, size):
        raise ShapeError(
            f"`{name}` must be a number, a vector of {size} or a ({size}, {size}) "
            f"matrix; found shape {tuple(K.shape)}"
        )
    if not bool(torch.isfinite(K).all()):
        raise ValueError(f"`{name}` must be finite")
    scale = float(K.abs().max()) if K.numel() else 0.0
    eps = torch.finfo(dtype).eps
    if float((K - K.T).abs().max()) > 64 * eps * scale:
        raise ValueError(
            f"`{name}` must be symmetric; largest |{name} - {name}^T| is "
            f"{float((K - K.T).abs().max()):.3g}. Pass ({name} + {name}.T) / 2"
        )
    low = float(torch.linalg.eigvalsh(K).min()) if size else 0.0
    rule = "positive definite" if definite else "positive semidefinite"
    bad = low <= 0.0 if definite else low < -64 * size * eps * scale
    if bad:
        raise ValueError(
            f"`{name}` must be symmetric {rule}; its smallest eigenvalue is "
            f"{low:.3g}. Use a larger diagonal"
        )
    return 0.5 * (K + K.T)


def as_state(value: Any, size: int, name: str, dtype: torch.dtype) -> Tensor:
    """Return a finite vector of ``size`` entries."""
    x = torch.as_tensor(np.asarray(value, dtype=float), dtype=dtype).reshape(-1)
    if x.numel() != size:
        raise ShapeError(f"`{name}` must have {size} entries; found {x.numel()}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"`{name}` must be finite; found {x.tolist()}")
    return x


def actuated_momenta(plant: PortHamiltonian, x: Tensor) -> Tensor:
    """Return ``G_p``, the momentum block of a constant ``G = [0; G_p]``.

    Raises NotSupportedError for a state-dependent ``G`` or one that acts
    on the positions.
    """
    k = plant.n_states // 2
    if plant.G is None or plant.n_inputs == 0:
        raise NotSupportedError("the model has no input; there is nothing to control")
    if getattr(plant.G, "state_dependent", True):
        raise NotSupportedError(
            "this controller needs a constant input matrix G = [0; G_p] acting on "
            "the momenta; the model's G depends on the state"
        )
    G = plant.G_matrix(x[:1])[0]
    if plant.n_states % 2 or float(G[:k].abs().max()) != 0.0:
        raise NotSupportedError(
            "this controller needs a mechanical model x = (q, p) whose input acts "
            "on the momenta only (G = [0; G_p]); the model's G has non-zero rows "
            "on the positions"
        )
    return G[k:]


def mechanical_energy(plant: PortHamiltonian) -> Any:
    """Return the plant's energy if it is mechanical (has ``potential_grad``)."""
    H = plant.H
    for attr in ("n_dof", "potential", "potential_grad", "velocity"):
        if not hasattr(H, attr):
            raise NotSupportedError(
                "this controller needs a mechanical energy H = p^T M(q)^-1 p / 2 + "
                f"V(q) (MechanicalHamiltonian or a rigid-body energy); the model's "
                f"H is {type(H).__name__}"
            )
    return H


class ConstantMatrix(AbstractStructureMatrix):
    """A fixed matrix, returned expanded to the batch.

    Parameters
    ----------
    matrix : Tensor, shape (n_states, n_cols)
        The matrix.
    """

    def __init__(self, matrix: Tensor) -> None:
        super().__init__()
        M = torch.as_tensor(matrix)
        self.n_states = int(M.shape[0])
        self.n_inputs = int(M.shape[1])
        self.state_dependent = False
        self.register_buffer("matrix", M.clone())

    def forward(self, x: Tensor) -> Tensor:
        """Return the matrix, shape (batch, n_states, n_cols)."""
        M = self.matrix.to(x.dtype)
        return M.expand(x.shape[0], *M.shape)


class MatrixSum(AbstractStructureMatrix):
    """The sum of structure matrices (None entries are skipped)."""

    def __init__(self, *parts: AbstractStructureMatrix | None) -> None:
        super().__init__()
        kept = [p for p in parts if p is not None]
        if not kept:
            raise ValueError("`parts` must hold at least one matrix")
        self.parts = torch.nn.ModuleList(kept)
        self.n_states = kept[0].n_states
        self.state_dependent = any(p.state_dependent for p in kept)

    def forward(self, x: Tensor) -> Tensor:
        """Return the sum, shape (batch, n_states, n_states)."""
        out = self.parts[0](x)
        for p in self.parts[1:]:
            out = out + p(x)
        return out


class PortDamping(AbstractStructureMatrix):
    r"""The dissipation :math:`G(x)\, K\, G(x)^\top` that ``u = -K y`` injects."""

    def __init__(self, G: AbstractStructureMatrix, K: Tensor) -> None:
        super().__init__()
        self.G = G
        self.n_states = G.n_states
        self.state_dependent = bool(G.state_dependent)
        self.register_buffer("K", K.clone())

    def forward(self, x: Tensor) -> Tensor:
        """Return ``G K G^T``, shape (batch, n_states, n_states)."""
        G = self.G(x)
        return G @ self.K.to(x.dtype) @ G.transpose(1, 2)


class StateMatrix(AbstractStructureMatrix):
    """A state-dependent matrix computed by a function of ``x``."""

    def __init__(self, fn: Any, n_states: int) -> None:
        super().__init__()
        self.fn = fn
        self.n_states = n_states
        self.state_dependent = True

    def forward(self, x: Tensor) -> Tensor:
        """Return ``fn(x)``, shape (batch, n_states, n_states)."""
        return self.fn(x)


def finite_or_raise(value: float, what: str) -> float:
    """Return ``value`` if finite, else raise a ValueError naming ``what``."""
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite ({value!r})")
    return value
