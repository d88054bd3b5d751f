r"""A one-degree-of-freedom mass with viscous and Coulomb friction, as a pH model.

The model :func:`phcontrol.identify` fits with ``model="friction"``: state
``x = (q, p)``, canonical ``J``, input on the momentum,

.. math:: H = \frac{p^2}{2m} + b\,q + \tfrac12 k\,q^2, \qquad
   R = \operatorname{diag}\Bigl(0,\; c + F\,\frac{\tanh(p/w)}{p}\Bigr),

so the friction force is :math:`c\,v + (F/m) \tanh(p/w)` (viscous plus
Coulomb, smoothed over a momentum width ``w``) and the constant force
``-b`` enters as the slope of the potential. Keeping the constant force in
``H`` keeps the model passive with respect to the measured input alone,
:math:`\dot H = -r(p)\,v^2 + y\,u \le y\,u`, where a bias added to the
input would supply energy of its own. The spring ``k >= k_min > 0`` is weak
but gives ``H`` its strict minimum at :math:`q^\ast = -b/k, p = 0`, and
since ``r(p) >= c > 0`` damps the momentum, the unforced model returns to
that minimum (LaSalle: ``dH/dt = 0`` only at ``p = 0``, and the only
solution that stays there is the equilibrium).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.signal import savgol_filter

from .hamiltonians import MechanicalHamiltonian, PolynomialPotential
from .models import PortHamiltonian
from .structure import CanonicalJ, CoulombViscousDissipation, InputMatrix

__all__: list[str] = []

logger = logging.getLogger(__name__)

WIDTH_FRACTION = 0.01
"""Coulomb smoothing width as a share of the training speed's RMS."""

SPRING_FLOOR = 1e-4
"""Smallest spring ``k`` (normalised force per normalised position)."""


def build_friction(
    n_inputs: int, u: np.ndarray, z: np.ndarray
) -> tuple[PortHamiltonian, np.ndarray]:
    r"""Build the friction model, warm-started by equation error.

    Savitzky–Golay derivatives of the normalised position give speed ``v``
    and acceleration ``a``; least squares then fits

    .. math:: u = m\,a + c\,v + F_v \tanh(v / w_v) + b + k\,q

    (the inverse-dynamics identification of robotics, IDIM-LS), with
    ``w_v`` a hundredth of the RMS speed. Wrong-signed physical
    coefficients are replaced by small positive ones.

    Parameters
    ----------
    n_inputs : int
        Inputs of the log (0 or more; each acts on the momentum).
    u : ndarray, shape (N, n_inputs)
        Normalised inputs.
    z : ndarray, shape (N, 1)
        Normalised measured position.

    Returns
    -------
    system : PortHamiltonian
        The initial model (time in samples).
    states : ndarray, shape (N, 2)
        The states ``(q, m v)`` the warm start implies, for the encoder.
    """
    q = savgol_filter(z[:, 0], 11, 3, axis=0)
    v = savgol_filter(z[:, 0], 11, 3, deriv=1, axis=0)
    acc = savgol_filter(z[:, 0], 11, 3, deriv=2, axis=0)
    w_v = WIDTH_FRACTION * max(float(np.sqrt(np.mean(v**2))), 1e-12)
    A = np.stack([acc, v, np.tanh(v / w_v), np.ones_like(q), q], axis=1)
    target = u.sum(axis=1) if n_inputs else np.zeros_like(q)
    theta, *_ = np.linalg.lstsq(A, target, rcond=None)
    m, c, F, b, k = (float(t) for t in theta)
    if m <= 0:  # a wrong-signed fit: fall back to a unit mass
        m = 1.0
    c, F, k = max(c, 1e-3 * m), max(F, 1e-6), max(k, 2.0 * SPRING_FLOOR)
    logger.info(
        "equation-error warm start: m=%.4g c=%.4g F=%.4g b=%.4g k=%.4g", m, c, F, b, k
    )
    potential = PolynomialPotential(
        1,
        degree=2,
        coefficients=torch.tensor([[b, 0.5 * k]]),
        eps=0.5 * SPRING_FLOOR,
    )
    H = MechanicalHamiltonian(1, potential=[potential], mass=torch.tensor([[m]]))
    # The Coulomb law acts on p = m v: width m w_v, level m F so that the
    # force r(p) v = c v + F tanh(v / w_v) at the warm start.
    R = CoulombViscousDissipation(
        2,
        mask=[False, True],
        viscous=torch.tensor([c, c]),
        coulomb=torch.tensor([m * F, m * F]),
        width=m * w_v,
    )
    G = (
        InputMatrix(
            2,
            n_inputs,
            mask=torch.tensor([[0.0] * n_inputs, [1.0] * n_inputs]),
            init=torch.tensor([[0.0] * n_inputs, [1.0] * n_inputs]),
        )
        if n_inputs
        else None
    )
    system = PortHamiltonian(H, CanonicalJ(2), R, G)
    return system, np.stack([q, m * v], axis=1)


def friction_parameters(system: PortHamiltonian) -> dict[str, float]:
    """Return the physical values of a friction model, in normalised units.

    ``mass``, ``viscous`` (``c``), ``coulomb_force`` (the Coulomb level as a
    force, ``F / m``), ``width_speed`` (the smoothing width as a speed),
    ``offset_force`` (``-b``), ``spring`` (``k``) and ``equilibrium``
    (``q* = -b / k``).
    """
    H, R = system.H, system.R
    assert isinstance(H, MechanicalHamiltonian)
    assert isinstance(R, CoulombViscousDissipation)
    with torch.no_grad():
        like = next(system.parameters())
        m = float(H.mass(like.new_zeros(1, 1))[0, 0, 0])
        c, F = R.coefficients()
        (pot,) = H.potentials
        assert isinstance(pot, PolynomialPotential)
        b, half_k = (float(x) for x in pot.coefficients()[0])
        return {
            "mass": m,
            "viscous": float(c[1]),
            "coulomb_force": float(F[1]) / m,
            "width_speed": float(R.width[1]) / m,
            "offset_force": -b,
            "spring": 2.0 * half_k,
            "equilibrium": -b / (2.0 * half_k),
        }
