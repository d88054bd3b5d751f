r"""Identify mechanical pH models for control design from noisy logs.

With positions and velocities measured, the equations of motion of the
reference rigid bodies are linear in their physical parameters ``θ``,

.. math:: Y(q, \dot q, \ddot q)\, \theta = u ,

(the regressor form of robot identification), so ``θ`` is a least-squares
fit: derivative matching with :math:`\ddot q` and smoothed :math:`q,
\dot q` from a Savitzky-Golay filter. The fitted ``θ`` rebuild a
:class:`~phcontrol.PortHamiltonian` of the same family, which a
controller is then designed on.

* pendulum: :math:`\theta = (I, k, c)` in
  :math:`I\ddot q + k \sin q + c\dot q = u`;
* two-link arm: :math:`\theta = (a, b, c, g_1, g_2, d_1, d_2)` of
  :class:`~phcontrol._plant_parts.TwoLinkArmEnergy` and the joint damping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Log
from ..errors import DataError, NotSupportedError
from ..models import PortHamiltonian

__all__ = ["MechanicalFit", "record_motion", "fit_pendulum", "fit_two_link_arm"]


@dataclass(frozen=True)
class MechanicalFit:
    """A least-squares fit of a mechanical model's physical parameters.

    Attributes
    ----------
    model : PortHamiltonian
        The identified model (same family as the plant).
    parameters : dict of str to float
        The fitted parameters.
    residual_rms : float
        RMS of ``Y θ - u`` over the samples used, in input units.
    samples : int
        Samples used (the filter's edges are dropped).

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.control import fit_pendulum, record_motion
    >>> plant = phc.plants.pendulum(0.5, 2.0, 9.81, 0.1).double()
    >>> u = np.sin(np.arange(81)[:, None] * 0.3)
    >>> fit = fit_pendulum(record_motion(plant, [0.3, 0.0], u, 0.01))
    >>> sorted(fit.parameters)[:2], type(fit.model).__name__
    (['damping', 'gravity_torque'], 'PortHamiltonian')
    """

    model: PortHamiltonian
    parameters: dict[str, float]
    residual_rms: float
    samples: int


def record_motion(
    plant: PortHamiltonian,
    x0: Any,
    u: np.ndarray,
    dt: float,
    *,
    noise_std: float = 0.0,
    seed: int = 0,
) -> Log:
    r"""Simulate a mechanical plant and log noisy positions and velocities.

    The plant is stepped with RK4 (two sub-steps per sample).

    Parameters
    ----------
    plant : PortHamiltonian
        Mechanical plant, ``x = (q, p)``.
    x0 : array_like, shape (n_states,)
        Initial state.
    u : ndarray, shape (N, n_inputs)
        Inputs, held over each interval (the last sample is logged only).
    dt : float
        Sample step.

    Returns
    -------
    Log
        ``z = (q, q_dot)`` with Gaussian noise, and the noise-free ``x``.

    Other Parameters
    ----------------
    noise_std : float, default 0.0
        Standard deviation of the noise on every logged coordinate.
    seed : int, default 0
        Seed of the noise.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> log = record_motion(phc.plants.pendulum().double(), [0.5, 0.0],
    ...                     np.zeros((11, 1)), 0.01)
    >>> log.z.shape
    (11, 2)
    """
    from ..integrators import simulate

    k = plant.n_states // 2
    x = torch.as_tensor(np.asarray(x0, dtype=float)).reshape(1, -1)
    uu = np.asarray(u, dtype=float).reshape(-1, plant.n_inputs)
    useq = torch.as_tensor(uu[:-1], dtype=x.dtype)[None]
    with torch.no_grad():
        # Data generation needs accuracy, not an exact energy balance: RK4
        # with two sub-steps is several times cheaper than a discrete gradient.
        X = simulate(plant, x, useq, dt, method="rk4", substeps=2).x[0]
        v = plant.H.grad(X)[:, k:].numpy()  # q_dot = dH/dp
    xs = X.numpy()
    z = np.concatenate([xs[:, :k], v], axis=1)
    rng = np.random.default_rng(seed)
    z = z + noise_std * rng.standard_normal(z.shape)
    t = dt * np.arange(xs.shape[0])
    names = tuple(f"q{i}" for i in range(k)) + tuple(f"qdot{i}" for i in range(k))
    return Log(
        t=t,
        u=uu,
        z=z,
        x=xs,
        output_names=names,
        source="phcontrol.control.record_motion",
        dt=dt,
    )


def _derivatives(
    log: Log, n_dof: int, window: int, order: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from scipy.signal import savgol_filter

    z = np.asarray(log.z, dtype=float)
    if z.shape[1] != 2 * n_dof:
        raise DataError(
            f"the log must hold positions and velocities ({2 * n_dof} outputs); it "
            f"has {z.shape[1]}. Record it with record_motion"
        )
    if z.shape[0] < 3 * window:
        raise DataError(
            f"the log has {z.shape[0]} samples; derivative matching with a window of "
            f"{window} needs at least {3 * window}"
        )
    dt = float(np.median(np.diff(log.t)))
    q = savgol_filter(z[:, :n_dof], window, order, axis=0)
    v = savgol_filter(z[:, n_dof:], window, order, axis=0)
    a = savgol_filter(z[:, n_dof:], window, order, deriv=1, delta=dt, axis=0)
    cut = slice(window, z.shape[0] - window)
    return q[cut], v[cut], a[cut], np.asarray(log.u, dtype=float)[cut]


def _solve(Y: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
    theta, *_ = np.linalg.lstsq(Y, u, rcond=None)
    rms = float(np.sqrt(np.mean((Y @ theta - u) ** 2)))
    return theta, rms


def fit_pendulum(log: Log, *, window: int = 21, order: int = 3) -> MechanicalFit:
    r"""Fit :math:`I\ddot q + k\sin q + c\dot q = u` to a pendulum log.

    Parameters
    ----------
    log : Log
        From :func:`record_motion`: ``z = (q, q_dot)``, one input.

    Returns
    -------
    MechanicalFit
        ``model`` is :func:`phcontrol.plants.pendulum` with unit length,
        mass ``I`` and gravity ``k / I``.

    Other Parameters
    ----------------
    window, order : int
        Savitzky-Golay window (odd) and polynomial order.

    Raises
    ------
    NotSupportedError
        If the fit gives a non-positive inertia or gravity torque.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> plant = phc.plants.pendulum(0.5, 2.0, 9.81, 0.1).double()
    >>> u = np.sin(np.arange(801)[:, None] * 0.03)
    >>> fit = fit_pendulum(record_motion(plant, [0.3, 0.0], u, 0.01))
    >>> round(fit.parameters["inertia"], 2), round(fit.parameters["gravity_torque"], 2)
    (2.0, 9.81)
    """
    from ..plants import pendulum

    q, v, a, u = _derivatives(log, 1, window, order)
    Y = np.stack([a[:, 0], np.sin(q[:, 0]), v[:, 0]], axis=1)
    theta, rms = _solve(Y, u[:, 0])
    inertia, k, c = (float(t) for t in theta)
    if not (inertia > 0 and k > 0):
        raise NotSupportedError(
            f"the fit gives inertia {inertia:.3g} and gravity torque {k:.3g}; both "
            "must be positive. Excite the pendulum more or lower the noise"
        )
    model = pendulum(mass=inertia, length=1.0, gravity=k / inertia, damping=max(c, 0.0))
    params = {"inertia": inertia, "gravity_torque": k, "damping": c}
    return MechanicalFit(model, params, rms, Y.shape[0])


def fit_two_link_arm(log: Log, *, window: int = 21, order: int = 3) -> MechanicalFit:
    r"""Fit the two-link arm's seven parameters to a log.

    The regressor of :math:`M(q)\ddot q + C(q, \dot q)\dot q + \nabla V(q)
    + D\dot q = u` with :math:`h = b \sin q_2`:

    .. math:: u_1 = a\ddot q_1 + b\,[\cos q_2 (2\ddot q_1 + \ddot q_2)
       - \sin q_2 (2\dot q_1 \dot q_2 + \dot q_2^2)] + c\,\ddot q_2
       + g_1 \sin q_1 + g_2 \sin(q_1 + q_2) + d_1 \dot q_1,

    .. math:: u_2 = b\,[\cos q_2\, \ddot q_1 + \sin q_2\, \dot q_1^2]
       + c\,(\ddot q_1 + \ddot q_2) + g_2 \sin(q_1 + q_2) + d_2 \dot q_2 .

    Parameters
    ----------
    log : Log
        From :func:`record_motion`: ``z = (q_1, q_2, q_dot_1, q_dot_2)``,
        two inputs.

    Returns
    -------
    MechanicalFit

    Other Parameters
    ----------------
    window, order : int
        Savitzky-Golay window (odd) and polynomial order.

    Raises
    ------
    NotSupportedError
        If the fitted mass matrix is not positive definite at every elbow
        angle.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> arm = phc.plants.two_link_arm().double()
    >>> t = np.arange(601)[:, None] * 0.01
    >>> u = np.hstack([8 * np.sin(1.3 * t), 3 * np.sin(2.1 * t + 1)])
    >>> fit = fit_two_link_arm(record_motion(arm, [0.0] * 4, u, 0.01))
    >>> round(fit.parameters["g1"], 1), round(fit.parameters["b"], 2)
    (14.7, 0.5)
    """
    from .._plant_parts import TwoLinkArmEnergy
    from ..plants import _momentum_parts
    from ..structure import CanonicalJ

    q, v, acc, u = _derivatives(log, 2, window, order)
    c2, s2 = np.cos(q[:, 1]), np.sin(q[:, 1])
    s1, s12 = np.sin(q[:, 0]), np.sin(q[:, 0] + q[:, 1])
    zero = np.zeros_like(c2)
    row1 = np.stack(
        [
            acc[:, 0],
            c2 * (2 * acc[:, 0] + acc[:, 1])
            - s2 * (2 * v[:, 0] * v[:, 1] + v[:, 1] ** 2),
            acc[:, 1],
            s1,
            s12,
            v[:, 0],
            zero,
        ],
        axis=1,
    )
    row2 = np.stack(
        [
            zero,
            c2 * acc[:, 0] + s2 * v[:, 0] ** 2,
            acc[:, 0] + acc[:, 1],
            zero,
            s12,
            zero,
            v[:, 1],
        ],
        axis=1,
    )
    Y = np.concatenate([row1, row2])
    theta, rms = _solve(Y, np.concatenate([u[:, 0], u[:, 1]]))
    a, b, c, g1, g2, d1, d2 = (float(t) for t in theta)
    names = ("a", "b", "c", "g1", "g2", "d1", "d2")
    params = dict(zip(names, (a, b, c, g1, g2, d1, d2), strict=True))
    if not (c > 0 and a * c - c * c - b * b > 0):
        raise NotSupportedError(
            f"the fitted mass matrix is not positive definite (a={a:.3g}, b={b:.3g}, "
            f"c={c:.3g}); excite the arm more or lower the noise"
        )
    dtype = torch.get_default_dtype()
    H = TwoLinkArmEnergy(a, b, c, max(g1, 0.0), max(g2, 0.0)).to(dtype)
    R, G = _momentum_parts(2, [max(d1, 0.0), max(d2, 0.0)], [[1.0, 0.0], [0.0, 1.0]])
    model = PortHamiltonian(H, CanonicalJ(4), R, G).to(dtype).requires_grad_(False)
    return MechanicalFit(model, params, rms, Y.shape[0] // 2)
