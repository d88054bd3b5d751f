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
from .certificates import psd_margin as psd_margin
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
from .identification import MechanicalFit as MechanicalFit
from .identification import fit_pendulum as fit_pendulum
from .identification import fit_two_link_arm as fit_two_link_arm
from .identification import record_motion as record_motion
from .metrics import RegulationMetrics as RegulationMetrics
from .metrics import regulation_metrics as regulation_metrics
from .pi_pbc import PIPBC as PIPBC
from .synthesis import DampingSynthesis as DampingSynthesis
from .synthesis import GainSynthesis as GainSynthesis
from .synthesis import synthesize_damping_gain as synthesize_damping_gain
from .synthesis import synthesize_shaping_gains as synthesize_shaping_gains

__all__ = [
    "AbstractController",
    "CartPolePumping",
    "Check",
    "ClosedLoop",
    "ClosedLoopCertificate",
    "ClosedLoopForm",
    "DampingInjection",
    "DampingSynthesis",
    "EnergyPumping",
    "EnergyShaping",
    "GainSynthesis",
    "IDAPBC",
    "LQR",
    "MatchingFit",
    "MechanicalFit",
    "PIPBC",
    "PumpedEnergy",
    "RegulationMetrics",
    "ShapedEnergy",
    "SwingUp",
    "TargetPotential",
    "WheelPendulumTarget",
    "certify_closed_loop",
    "closed_loop",
    "fit_pendulum",
    "fit_target_energy",
    "fit_two_link_arm",
    "lyapunov_lmi",
    "psd_margin",
    "record_motion",
    "regulation_metrics",
    "synthesize_damping_gain",
    "synthesize_shaping_gains",
    "verify_closed_loop_certificate",
    "wheel_pendulum_ida_pbc",
]
