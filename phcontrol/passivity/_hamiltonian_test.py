r"""The Hamiltonian-matrix test and the frequency sweep.

For a continuous-time system with ``W = D + D^T`` positive definite the
frequencies where ``G(j w) + G(j w)^H`` is singular are the imaginary
eigenvalues ``j w`` of

.. math:: \mathcal H = \begin{bmatrix} A - B W^{-1} C & -B W^{-1} B^\top \\
   C^\top W^{-1} C & -(A - B W^{-1} C)^\top \end{bmatrix},

the zeros of :math:`\Phi(s) = G(s) + G(-s)^\top`. Between consecutive
crossings the sign of :math:`\lambda_{\min}\Phi(j\omega)` is constant, so
one evaluation per interval finds every band where passivity fails.
Discrete-time systems are tested through the Cayley transform; the unit
circle point :math:`e^{j\theta}` corresponds to :math:`\omega_c = \tan(\theta/2)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NotSupportedError
from ._lti import LTI, _norm2, as_lti, boundary_point, phi_min, phi_min_many

__all__ = ["FrequencySweep", "frequency_sweep", "plot_frequency_sweep"]


@dataclass(frozen=True)
class HamiltonianVerdict:
    """Outcome of the Hamiltonian test on a continuous-time system.

    ``bands`` are ``(low, high)`` frequencies (of the tested system) where
    ``lambda_min(G + G^H) < 0``; ``high`` may be ``inf``.
    """

    verdict: str
    bands: tuple[tuple[float, float], ...]
    worst_frequency: float | None
    worst_value: float
    message: str


def applies(sys: LTI) -> str | None:
    """Return None when the test applies, else the reason it does not."""
    W = sys.D + sys.D.T
    lam_W = np.linalg.eigvalsh(W)
    scale = _norm2(W) + _norm2(sys.C) * _norm2(sys.B)
    if lam_W[0] <= 1e-8 * scale:
        return "D + D^T is not positive definite"
    if sys.n_states:
        re = np.linalg.eigvals(sys.A).real
        if re.max() >= -1e-9 * max(_norm2(sys.A), 1e-300):
            return "A is not asymptotically stable"
    return None


def hamiltonian_test(sys: LTI) -> HamiltonianVerdict:
    """Run the test on a continuous-time ``sys`` (stable ``A``, ``D + D^T > 0``)."""
    reason = applies(sys)
    if reason is not None:
        raise NotSupportedError(
            f"the Hamiltonian test needs a stable A and D + D^T > 0; here {reason}. "
            "Use method='lmi'"
        )
    A, B, C = sys.A, sys.B, sys.C
    W = sys.D + sys.D.T
    n = sys.n_states
    crossings: list[float] = []
    if n:
        Wi_C = np.linalg.solve(W, C)
        Wi_Bt = np.linalg.solve(W, B.T)
        Ac = A - B @ Wi_C
        H = np.block([[Ac, -B @ Wi_Bt], [C.T @ Wi_C, -Ac.T]])
        eig = np.linalg.eigvals(H)
        size = max(_norm2(H), 1e-300)
        for lam in eig:
            if abs(lam.real) <= 1e-7 * size and lam.imag >= 0.0:
                crossings.append(float(lam.imag))
    crossings = sorted(set(crossings))
    edges = [0.0, *crossings]
    probes: list[float] = []
    for lo, hi in zip(edges, [*edges[1:], math.inf], strict=True):
        probes.append(2.0 * lo + 1.0 if math.isinf(hi) else 0.5 * (lo + hi))
    probes.extend(edges)
    values = {w: phi_min(sys, 1j * w)[0] for w in probes}
    values[math.inf] = float(np.linalg.eigvalsh(W)[0])
    bands: list[tuple[float, float]] = []
    for lo, hi in zip(edges, [*edges[1:], math.inf], strict=True):
        mid = 2.0 * lo + 1.0 if math.isinf(hi) else 0.5 * (lo + hi)
        if values[mid] < 0.0:
            bands.append((lo, hi))
    worst = min(values, key=lambda w: values[w])
    if bands:
        return HamiltonianVerdict(
            "not_passive",
            tuple(bands),
            worst,
            values[worst],
            f"lambda_min(G + G^H) = {values[worst]:.3g} < 0 at w = {worst:.4g} "
            f"(Hamiltonian matrix: {len(bands)} band(s) where passivity fails)",
        )
    return HamiltonianVerdict(
        "passive",
        (),
        worst,
        values[worst],
        "the Hamiltonian matrix has no crossing into a negative band; "
        f"min lambda(G + G^H) = {values[worst]:.3g} over the crossings",
    )


@dataclass(frozen=True)
class FrequencySweep:
    r"""Smallest eigenvalue of :math:`G + G^H` along the stability boundary.

    Attributes
    ----------
    omega : ndarray, shape (k,)
        Frequencies in rad per time unit (up to the Nyquist frequency
        :math:`\pi/dt` in discrete time).
    min_eig : ndarray, shape (k,)
        :math:`\lambda_{\min}(G(j\omega) + G(j\omega)^H)`; NaN at a pole.
    dt : float
        Time base of the system (0 for continuous time).

    Examples
    --------
    >>> import control
    >>> import phcontrol as phc
    >>> sweep = phc.passivity.frequency_sweep(control.tf([1, -1], [1, 2]))
    >>> bool((sweep.min_eig < 0).any()), sweep.omega.shape == sweep.min_eig.shape
    (True, True)
    """

    omega: np.ndarray
    min_eig: np.ndarray
    dt: float


def frequency_sweep(
    system: Any, *, omega: np.ndarray | None = None, n_points: int = 400
) -> FrequencySweep:
    r"""Evaluate :math:`\lambda_{\min}(G + G^H)` on a frequency grid.

    Parameters
    ----------
    system : control.StateSpace or control.TransferFunction or tuple
        A square LTI system, as accepted by :func:`check_passivity`.
    omega : ndarray, shape (k,), optional
        Frequencies in rad per time unit; default ``n_points`` log-spaced
        over four decades either side of the poles (up to Nyquist).
    n_points : int, default 400
        Size of the default grid.

    Returns
    -------
    FrequencySweep
        Negative ``min_eig`` marks frequencies where passivity fails.

    Examples
    --------
    >>> import control
    >>> sweep = frequency_sweep(control.tf([1, -1], [1, 2]))  # (s - 1)/(s + 2)
    >>> bool(sweep.min_eig.min() < 0)
    True
    """
    sys = as_lti(system)
    if omega is None:
        omega = default_grid(sys, n_points)
    omega = np.asarray(omega, dtype=float).reshape(-1)
    points = np.array([boundary_point(sys, w) for w in omega])
    return FrequencySweep(omega, phi_min_many(sys, points), sys.dt)


def default_grid(sys: LTI, n_points: int) -> np.ndarray:
    """Log-spaced frequencies around the poles of ``sys`` (Nyquist-capped)."""
    if sys.n_states:
        lam = np.linalg.eigvals(sys.A)
        if sys.discrete:
            with np.errstate(divide="ignore"):
                lam = np.log(lam.astype(complex)) / sys.dt
        mags = np.abs(lam[np.abs(lam) > 0])
    else:
        mags = np.array([])
    lo = float(mags.min()) if mags.size else 1.0
    hi = float(mags.max()) if mags.size else 1.0
    top = 1e4 * hi
    if sys.discrete:
        top = min(top, math.pi / sys.dt)
    low = min(1e-4 * lo, top / 1e6)
    return np.concatenate([[0.0], np.geomspace(low, top, n_points - 1)])


def plot_frequency_sweep(sweep: FrequencySweep, ax: Any = None) -> Any:
    """Plot a :class:`FrequencySweep`, shading where passivity fails.

    Parameters
    ----------
    sweep : FrequencySweep
        From :func:`frequency_sweep`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default a new figure).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import control, matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_frequency_sweep(frequency_sweep(control.tf([1, 1], [1, 2])))
    >>> ax.get_xlabel()
    'frequency (rad per time unit)'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    w = np.where(sweep.omega > 0, sweep.omega, np.nan)
    ax.semilogx(w, sweep.min_eig, color="C0")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.fill_between(
        w, sweep.min_eig, 0.0, where=sweep.min_eig < 0, color="C3", alpha=0.3
    )
    ax.set_xlabel("frequency (rad per time unit)")
    ax.set_ylabel("min eig of G + G^H")
    return ax
