"""Logs recorded from a one-degree-of-freedom mechanical plant, exactly."""

from __future__ import annotations

import numpy as np
import torch

import phcontrol as phc
from phcontrol import _mechanical


def stepped_positions(
    plant: phc.PortHamiltonian, u: np.ndarray, dt: float, substeps: int = 4
) -> np.ndarray:
    """Positions at the samples of ``plant`` driven by ``u`` (N,), held over
    each sample, stepped from rest by the exact scalar discrete gradient."""
    stepper = _mechanical.MechanicalStepper(plant, dt / substeps, 1e-13, 50)
    x = torch.zeros(1, 2, dtype=torch.float64)
    z = np.zeros(len(u))
    with torch.no_grad():
        for k in range(len(u)):
            z[k] = float(x[0, 0])
            uk = torch.tensor([[u[k]]], dtype=torch.float64)
            for _ in range(substeps):
                x, _, _ = stepper.step(x, uk)
    return z
