r"""A learned flow map that is exactly symplectic: no integrator needed.

:class:`SympNet` maps a state :math:`x_k = (q, p)` to :math:`x_{k+1}`, one
step ``dt`` ahead, through a composition of shears, alternately

.. math::
    \text{kick: } p &\leftarrow p - \Delta t\, \nabla V_l(q), \\
    \text{drift: } q &\leftarrow q + \Delta t\, \nabla T_l(p),

with scalar potentials :math:`V_l, T_l` (a tanh MLP plus a quadratic form).
A shear by the gradient of a scalar has the Jacobian
:math:`\begin{pmatrix} I & 0 \\ -\Delta t \nabla^2 V & I \end{pmatrix}` (or
its transpose) with a symmetric Hessian, which satisfies
:math:`\Phi'^\top J \Phi' = J`; so does any composition, for any weights.
The layers generalise Störmer-Verlet (which is one kick, one drift and one
kick with the true ``V`` and ``T``); with learned potentials the map can
match a flow better than any fixed splitting while keeping its geometry,
and its energy error stays bounded over long horizons.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._config import Configurable
from ._validation import check_batch, check_positive
from .hamiltonians import _TanhNet

__all__ = ["SympNet"]


class _ShearPotential(nn.Module):
    r"""A scalar :math:`f(z) + \tfrac12 z^\top S z` with its gradient by hand."""

    def __init__(self, n: int, hidden: Sequence[int], quadratic: float) -> None:
        super().__init__()
        self.net = _TanhNet(n, hidden, out_scale=1e-2)
        self.A = nn.Parameter(quadratic * torch.eye(n))

    def grad(self, z: Tensor) -> Tensor:
        S = 0.5 * (self.A + self.A.T).to(z.dtype)
        return self.net.value_and_grad(z)[1] + z @ S


class SympNet(nn.Module, Configurable):
    r"""An exactly symplectic flow map ``x_k -> x_{k+1}`` (see the module).

    Parameters
    ----------
    n_states : int
        Even size of ``x = (q, p)``.
    dt : float
        Step the map represents; positive.
    layers : int, default 4
        Number of kick-drift pairs.
    hidden : sequence of int, default (32,)
        Hidden widths of each potential's MLP.
    mass : float, default 1.0
        The drifts start as free flight, :math:`q \leftarrow q + \Delta t\,
        p / m` in total; the kicks start near zero.

    Examples
    --------
    The Jacobian of the map is symplectic for any weights:

    >>> import torch
    >>> net = SympNet(2, dt=0.1, hidden=(8,)).double()
    >>> x = torch.tensor([0.3, -0.2], dtype=torch.float64)
    >>> D = torch.autograd.functional.jacobian(lambda z: net(z[None])[0], x)
    >>> J = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    >>> bool(torch.allclose(D.T @ J @ D, J, atol=1e-12))
    True
    >>> net.rollout(x[None], steps=5).shape
    torch.Size([1, 6, 2])
    """

    def __init__(
        self,
        n_states: int,
        dt: float,
        *,
        layers: int = 4,
        hidden: Sequence[int] = (32,),
        mass: float = 1.0,
    ) -> None:
        super().__init__()
        if not (isinstance(n_states, int) and n_states >= 2 and n_states % 2 == 0):
            raise ValueError(
                f"`n_states` must be an even integer >= 2 (x = (q, p)); found "
                f"{n_states!r}"
            )
        if not (isinstance(layers, int) and layers >= 1):
            raise ValueError(f"`layers` must be a positive integer; found {layers!r}")
        self.dt = check_positive(dt, "dt")
        mass = check_positive(mass, "mass")
        self.n_states = n_states
        self.n_inputs = 0
        k = n_states // 2
        self.n_dof = k
        self.kicks = nn.ModuleList(
            _ShearPotential(k, hidden, 0.0) for _ in range(layers)
        )
        self.drifts = nn.ModuleList(
            _ShearPotential(k, hidden, 1.0 / (layers * mass)) for _ in range(layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return the state one step ahead, shape (batch, n_states)."""
        x = check_batch(x, "x", self.n_states)
        k, h = self.n_dof, self.dt
        q, p = x[:, :k], x[:, k:]
        for kick, drift in zip(self.kicks, self.drifts, strict=True):
            p = p - h * kick.grad(q)
            q = q + h * drift.grad(p)
        return torch.cat([q, p], dim=-1)

    def inverse(self, x: Tensor) -> Tensor:
        """Return the state one step back, shape (batch, n_states); exact."""
        x = check_batch(x, "x", self.n_states)
        k, h = self.n_dof, self.dt
        q, p = x[:, :k], x[:, k:]
        for kick, drift in zip(
            reversed(self.kicks), reversed(self.drifts), strict=True
        ):
            q = q - h * drift.grad(p)
            p = p + h * kick.grad(q)
        return torch.cat([q, p], dim=-1)

    def rollout(self, x0: Tensor, steps: int) -> Tensor:
        """Apply the map ``steps`` times.

        Parameters
        ----------
        x0 : Tensor, shape (batch, n_states)
            Initial states.
        steps : int
            Number of steps; non-negative.

        Returns
        -------
        Tensor, shape (batch, steps + 1, n_states)
            ``x0`` and the states after each step.

        Examples
        --------
        >>> import torch
        >>> SympNet(4, dt=0.05).rollout(torch.zeros(3, 4), 10).shape
        torch.Size([3, 11, 4])
        """
        if not (isinstance(steps, int) and steps >= 0):
            raise ValueError(f"`steps` must be a non-negative integer; found {steps!r}")
        x = check_batch(x0, "x0", self.n_states)
        xs = [x]
        for _ in range(steps):
            x = self(x)
            xs.append(x)
        return torch.stack(xs, dim=1)
