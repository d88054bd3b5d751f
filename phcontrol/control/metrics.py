r"""Figures of merit of a regulated trajectory: success, settling, error, effort.

For a batch of closed-loop runs to a target ``x*`` (angles compared
modulo :math:`2\pi`), the error of each sample is the largest wrapped
coordinate error. A run *settles* at the first time after which the error
stays below ``tolerance``; it *succeeds* when it has settled by the end.
The effort is :math:`\int \|u\|^2 dt` (rectangle rule on the held inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["RegulationMetrics", "regulation_metrics"]


@dataclass(frozen=True)
class RegulationMetrics:
    """Per-run figures of :func:`regulation_metrics`.

    Attributes
    ----------
    success : ndarray of bool, shape (batch,)
        Settled within ``tolerance`` by the end.
    settling_time : ndarray, shape (batch,)
        First time after which the error stays below ``tolerance`` (NaN if
        never).
    final_error : ndarray, shape (batch,)
        Error at the last sample.
    effort : ndarray, shape (batch,)
        :math:`\\int \\|u\\|^2 dt`.

    Examples
    --------
    >>> import torch
    >>> from phcontrol.control import regulation_metrics
    >>> t = torch.linspace(0, 1, 3)
    >>> x = torch.tensor([[[1.0], [0.05], [0.01]]])
    >>> m = regulation_metrics(t, x, torch.zeros(1), lambda t, x: 0 * x, tolerance=0.1)
    >>> bool(m.success[0])
    True
    """

    success: np.ndarray
    settling_time: np.ndarray
    final_error: np.ndarray
    effort: np.ndarray

    def summary(self) -> dict[str, float]:
        """Return the success rate and the medians over the successful runs."""
        ok = self.success
        pick = (lambda a: float(np.median(a[ok]))) if ok.any() else (lambda a: np.nan)
        return {
            "success_rate": float(ok.mean()),
            "median_settling_time": pick(self.settling_time),
            "median_final_error": pick(self.final_error),
            "median_effort": pick(self.effort),
            "max_final_error": float(self.final_error.max()),
        }


def regulation_metrics(
    t: Tensor,
    x: Tensor,
    x_star: Tensor,
    controller: Callable[[Tensor, Tensor], Tensor],
    *,
    tolerance: float,
    angles: Sequence[int] = (),
) -> RegulationMetrics:
    """Compute success, settling time, final error and effort of closed-loop runs.

    Parameters
    ----------
    t : Tensor, shape (T,)
        Sample times.
    x : Tensor, shape (batch, T, n_states)
        States.
    x_star : Tensor, shape (n_states,)
        Target.
    controller : callable
        ``u(t, x)``, evaluated at the samples for the effort.
    tolerance : float
        Error below which a run counts as settled.
    angles : sequence of int, default ()
        Coordinates compared modulo 2 pi.

    Returns
    -------
    RegulationMetrics

    Examples
    --------
    >>> import torch
    >>> t = torch.linspace(0, 1, 3)
    >>> x = torch.tensor([[[1.0], [0.05], [0.01]]])
    >>> m = regulation_metrics(t, x, torch.zeros(1), lambda t, x: 0 * x,
    ...                        tolerance=0.1)
    >>> bool(m.success[0]), float(m.settling_time[0])
    (True, 0.5)
    """
    d = x - x_star.to(x.dtype)
    if angles:
        d = d.clone()
        idx = list(angles)
        d[..., idx] = torch.atan2(torch.sin(d[..., idx]), torch.cos(d[..., idx]))
    err = d.abs().amax(-1).detach().cpu().numpy()  # (batch, T)
    tt = t.detach().cpu().numpy()
    above = err >= tolerance
    # Last sample still above tolerance; settled just after it.
    last = np.where(above.any(1), above.shape[1] - 1 - np.argmax(above[:, ::-1], 1), -1)
    success = ~above[:, -1]
    settle = np.where(success, tt[np.clip(last + 1, 0, len(tt) - 1)], np.nan)
    settle = np.where(last < 0, tt[0], settle)
    b, T, n = x.shape
    with torch.no_grad():
        u = controller(t[:1], x[:, :-1].reshape(-1, n)).reshape(b, T - 1, -1)
    dt = np.diff(tt)
    effort = ((u**2).sum(-1).detach().cpu().numpy() * dt).sum(1)
    return RegulationMetrics(success, settle, err[:, -1], effort)
