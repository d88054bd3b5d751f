"""Passivity-based controllers, their closed loops and closed-loop certificates.

Every controller is a callable ``u(t, x)`` designed on a pH model;
:func:`closed_loop` turns plant plus controller into a model again, which
:func:`phcontrol.simulate` steps and audits like any other.
"""

from ._base import AbstractController as AbstractController
from ._base import ClosedLoopForm as ClosedLoopForm
from .certificates import Check as Check
from .certificates import ClosedLoopCertificate as ClosedLoopCertificate
from .certificates import certify_closed_loop as certify_closed_loop
from .certificates import lyapunov_lmi as lyapunov_lmi
from .certificates import (
    verify_closed_loop_certificate as verify_closed_loop_certificate,
)
from .closed_loop import ClosedLoop as ClosedLoop
from .closed_loop import closed_loop as closed_loop
from .damping import DampingInjection as DampingInjection
from .energy_pumping import LQR as LQR
from .energy_pumping import CartPolePumping as CartPolePumping
from .energy_pumping import EnergyPumping as EnergyPumping
from .energy_pumping import PumpedEnergy as PumpedEnergy
from .energy_pumping import SwingUp as SwingUp
from .energy_shaping import EnergyShaping as EnergyShaping
from .energy_shaping import ShapedEnergy as ShapedEnergy
from .energy_shaping import TargetPotential as TargetPotential
from .ida_pbc import IDAPBC as IDAPBC
from .ida_pbc import MatchingFit as MatchingFit
from .ida_pbc import WheelPendulumTarget as WheelPendulumTarget
from .ida_pbc import fit_target_energy as fit_target_energy
from .ida_pbc import wheel_pendulum_ida_pbc as wheel_pendulum_ida_pbc
from .pi_pbc import PIPBC as PIPBC

__all__ = [
    "AbstractController",
    "CartPolePumping",
    "Check",
    "ClosedLoop",
    "ClosedLoopCertificate",
    "ClosedLoopForm",
    "DampingInjection",
    "EnergyPumping",
    "EnergyShaping",
    "IDAPBC",
    "LQR",
    "MatchingFit",
    "PIPBC",
    "PumpedEnergy",
    "ShapedEnergy",
    "SwingUp",
    "TargetPotential",
    "WheelPendulumTarget",
    "certify_closed_loop",
    "closed_loop",
    "fit_target_energy",
    "lyapunov_lmi",
    "verify_closed_loop_certificate",
    "wheel_pendulum_ida_pbc",
]
