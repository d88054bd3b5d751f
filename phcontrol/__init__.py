"""phcontrol: port-Hamiltonian system identification, verification and control.

Models are passive by construction; simulations keep the energy balance
exactly in discrete time; certificates can be re-checked by anyone.
"""

import logging

from . import control as control
from . import datasets as datasets
from . import greybox as greybox
from . import plants as plants
from .data import load_log as load_log
from .errors import (
    ConvergenceError as ConvergenceError,
)
from .errors import (
    DataError as DataError,
)
from .errors import (
    DataWarning as DataWarning,
)
from .errors import (
    ModelFileError as ModelFileError,
)
from .errors import (
    NotSupportedError as NotSupportedError,
)
from .errors import (
    NumericsError as NumericsError,
)
from .errors import (
    NumericsWarning as NumericsWarning,
)
from .errors import (
    PHControlError as PHControlError,
)
from .errors import (
    PHControlWarning as PHControlWarning,
)
from .errors import (
    ShapeError as ShapeError,
)
from .errors import (
    SolverError as SolverError,
)
from .hamiltonians import (
    CosinePotential as CosinePotential,
)
from .hamiltonians import (
    GravitationalPotential as GravitationalPotential,
)
from .hamiltonians import (
    MechanicalHamiltonian as MechanicalHamiltonian,
)
from .hamiltonians import (
    MLPHamiltonian as MLPHamiltonian,
)
from .hamiltonians import (
    MLPPotential as MLPPotential,
)
from .hamiltonians import (
    PolynomialPotential as PolynomialPotential,
)
from .hamiltonians import (
    QuadraticHamiltonian as QuadraticHamiltonian,
)
from .hamiltonians import (
    QuadraticPotential as QuadraticPotential,
)
from .identify import identify as identify
from .integrators import (
    METHODS as METHODS,
)
from .integrators import (
    IntegratorComparison as IntegratorComparison,
)
from .integrators import (
    IntegratorRow as IntegratorRow,
)
from .integrators import (
    Trajectory as Trajectory,
)
from .integrators import (
    avf_gradient as avf_gradient,
)
from .integrators import (
    compare_integrators as compare_integrators,
)
from .integrators import (
    gonzalez_gradient as gonzalez_gradient,
)
from .integrators import (
    itoh_abe_gradient as itoh_abe_gradient,
)
from .integrators import (
    simulate as simulate,
)
from .io import load as load
from .io import save as save
from .linear import (
    LinearPortHamiltonian as LinearPortHamiltonian,
)
from .linear import (
    from_state_space as from_state_space,
)
from .linear import (
    to_state_space as to_state_space,
)
from .models import HNN as HNN
from .models import NeuralODE as NeuralODE
from .models import PortHamiltonian as PortHamiltonian
from .particles import (
    MLPPairPotential as MLPPairPotential,
)
from .particles import (
    PairwiseHamiltonian as PairwiseHamiltonian,
)
from .particles import (
    angular_momentum as angular_momentum,
)
from .particles import (
    total_momentum as total_momentum,
)
from .passivity import (
    PassivityResult as PassivityResult,
)
from .passivity import (
    check_passivity as check_passivity,
)
from .passivity import (
    enforce_passivity as enforce_passivity,
)
from .passivity import (
    passivity_indices as passivity_indices,
)
from .passivity import (
    verify_certificate as verify_certificate,
)
from .state_fit import StateFit as StateFit
from .state_fit import fit_states as fit_states
from .structure import (
    CanonicalJ as CanonicalJ,
)
from .structure import (
    CholeskyDissipation as CholeskyDissipation,
)
from .structure import (
    CoulombViscousDissipation as CoulombViscousDissipation,
)
from .structure import (
    InputMatrix as InputMatrix,
)
from .structure import (
    PolynomialDissipation as PolynomialDissipation,
)
from .structure import (
    SkewSymmetric as SkewSymmetric,
)
from .symplectic import SympNet as SympNet

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CanonicalJ",
    "CholeskyDissipation",
    "ConvergenceError",
    "CosinePotential",
    "CoulombViscousDissipation",
    "DataError",
    "DataWarning",
    "GravitationalPotential",
    "HNN",
    "InputMatrix",
    "LinearPortHamiltonian",
    "IntegratorComparison",
    "IntegratorRow",
    "METHODS",
    "MLPHamiltonian",
    "MLPPairPotential",
    "MLPPotential",
    "MechanicalHamiltonian",
    "ModelFileError",
    "NeuralODE",
    "NotSupportedError",
    "NumericsError",
    "NumericsWarning",
    "PHControlError",
    "PHControlWarning",
    "PairwiseHamiltonian",
    "PassivityResult",
    "PolynomialDissipation",
    "PolynomialPotential",
    "PortHamiltonian",
    "QuadraticHamiltonian",
    "QuadraticPotential",
    "ShapeError",
    "SkewSymmetric",
    "SolverError",
    "StateFit",
    "SympNet",
    "Trajectory",
    "angular_momentum",
    "check_passivity",
    "control",
    "datasets",
    "enforce_passivity",
    "fit_states",
    "from_state_space",
    "identify",
    "load",
    "load_log",
    "passivity_indices",
    "avf_gradient",
    "compare_integrators",
    "gonzalez_gradient",
    "itoh_abe_gradient",
    "plants",
    "save",
    "simulate",
    "to_state_space",
    "total_momentum",
    "verify_certificate",
]
