"""phcontrol: port-Hamiltonian system identification, verification and control.

Models are passive by construction; simulations keep the energy balance
exactly in discrete time; certificates can be re-checked by anyone.
"""

import logging

from .errors import (
    ConvergenceError as ConvergenceError,
    DataError as DataError,
    DataWarning as DataWarning,
    ModelFileError as ModelFileError,
    NotSupportedError as NotSupportedError,
    NumericsWarning as NumericsWarning,
    PHControlError as PHControlError,
    PHControlWarning as PHControlWarning,
    ShapeError as ShapeError,
    SolverError as SolverError,
)
from .hamiltonians import (
    MechanicalHamiltonian as MechanicalHamiltonian,
    MLPHamiltonian as MLPHamiltonian,
    MLPPotential as MLPPotential,
    PolynomialPotential as PolynomialPotential,
    QuadraticHamiltonian as QuadraticHamiltonian,
    QuadraticPotential as QuadraticPotential,
)
from .integrators import Trajectory as Trajectory, simulate as simulate
from .models import HNN as HNN, NeuralODE as NeuralODE, PortHamiltonian as PortHamiltonian
from .structure import (
    CanonicalJ as CanonicalJ,
    CholeskyDissipation as CholeskyDissipation,
    InputMatrix as InputMatrix,
    SkewSymmetric as SkewSymmetric,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CanonicalJ",
    "CholeskyDissipation",
    "ConvergenceError",
    "DataError",
    "DataWarning",
    "HNN",
    "InputMatrix",
    "MLPHamiltonian",
    "MLPPotential",
    "MechanicalHamiltonian",
    "ModelFileError",
    "NeuralODE",
    "NotSupportedError",
    "NumericsWarning",
    "PHControlError",
    "PHControlWarning",
    "PolynomialPotential",
    "PortHamiltonian",
    "QuadraticHamiltonian",
    "QuadraticPotential",
    "ShapeError",
    "SkewSymmetric",
    "SolverError",
    "Trajectory",
    "simulate",
]
