r"""Damping injection: :math:`u = -K y` with :math:`K \succeq 0`.

With ``y = G^T \nabla H`` the loop is the plant with more dissipation,

.. math:: \dot x = (J - R - G K G^\top)\, \nabla H + G v,

so ``H`` keeps decreasing while ``y`` is non-zero; the target is the
minimiser of ``H``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from ..models import PortHamiltonian
from ._base import (
    AbstractController,
    ClosedLoopForm,
    MatrixSum,
    PortDamping,
    as_gain,
    as_state,
    plant_dtype,
)

__all__ = ["DampingInjection"]


class DampingInjection(AbstractController):
    r"""Output feedback :math:`u = -K y` through the passive port.

    Parameters
    ----------
    plant : PortHamiltonian
        Design model; must have inputs.
    gain : float or array_like, shape (n_inputs,) or (n_inputs, n_inputs)
        ``K``, symmetric positive semidefinite (a number is ``K = k I``).
    x_star : array_like, shape (n_states,), optional
        Target: the minimiser of ``H`` (default, found numerically).

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> ctrl = DampingInjection(plant, 3.0)
    >>> ctrl(0.0, torch.tensor([[0.0, 2.0]])).tolist()  # y = p / m = 2
    [[-6.0]]
    """

    def __init__(self, plant: PortHamiltonian, gain: Any, x_star: Any = None) -> None:
        if plant.n_inputs == 0 or plant.G is None:
            raise ValueError("`plant` has no input port; damping cannot be injected")
        dtype = plant_dtype(plant)
        self.plant = plant
        self.n_states = plant.n_states
        self.n_inputs = plant.n_inputs
        self.K = as_gain(gain, plant.n_inputs, "gain", dtype=dtype)
        if x_star is None:
            from ..linear import minimise_energy

            x_star = minimise_energy(plant)
        self.x_star = as_state(x_star, plant.n_states, "x_star", dtype)

    def control(self, x: Tensor) -> Tensor:
        """Return ``-K y(x)``, shape (batch, n_inputs)."""
        return -self.plant.output(x) @ self.K.to(x.dtype).T

    def form(self) -> ClosedLoopForm:
        """Return ``(H, J, R + G K G^T, G)``."""
        p = self.plant
        assert p.G is not None
        R = MatrixSum(p.R, PortDamping(p.G, self.K))
        return ClosedLoopForm(p.H, p.J, R, p.G, self.x_star)

    def _parameters(self) -> dict[str, Any]:
        return {"gain": np.asarray(self.K.detach().cpu()).tolist()}
