r"""Time stepping: discrete gradients that keep the energy balance, and the rest.

* :mod:`.discrete_gradient`: Gonzalez, Itoh-Abe and averaged-vector-field
  discrete gradients and the implicit steps built on them (with the
  implicit midpoint rule);
* :mod:`.explicit`: forward Euler, RK4 and Störmer-Verlet;
* :func:`simulate` drives any of them and audits the energy balance;
* :func:`compare_integrators` runs several on the same problem.

Conventions: states are ``(batch, n_states)``, trajectories
``(batch, time, n)``; inputs are held over each sample interval (zero-order
hold) or interpolated linearly between samples (``input_hold="linear"``).
"""

from ._base import Trajectory as Trajectory
from ._simulate import METHODS as METHODS
from ._simulate import Method as Method
from ._simulate import simulate as simulate
from .compare import (
    IntegratorComparison as IntegratorComparison,
)
from .compare import (
    IntegratorRow as IntegratorRow,
)
from .compare import (
    compare_integrators as compare_integrators,
)
from .discrete_gradient import (
    avf_gradient as avf_gradient,
)
from .discrete_gradient import (
    gonzalez_gradient as gonzalez_gradient,
)
from .discrete_gradient import (
    itoh_abe_gradient as itoh_abe_gradient,
)

__all__ = [
    "METHODS",
    "IntegratorComparison",
    "IntegratorRow",
    "Method",
    "Trajectory",
    "avf_gradient",
    "compare_integrators",
    "gonzalez_gradient",
    "itoh_abe_gradient",
    "simulate",
]
