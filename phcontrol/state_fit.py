r"""Fit a model to sampled state trajectories, with losses that tolerate noise.

:func:`fit_states` takes trajectories ``x`` of shape ``(n_traj, T, n)``
sampled every ``dt`` and fits any model that steps: a
:class:`~phcontrol.PortHamiltonian` (or :class:`~phcontrol.HNN`,
:class:`~phcontrol.NeuralODE`) through :func:`~phcontrol.simulate`, or a
:class:`~phcontrol.SympNet` through its own map. Losses, each a mean of
squares after dividing every coordinate by its standard deviation in the
data:

* ``"derivative"``: :math:`\|f(x_k) - \dot x_k\|^2`, with ``x_dot`` given or
  estimated by a Savitzky-Golay filter;
* ``"one_step"``: :math:`\|\Phi(x_k) - x_{k+1}\|^2`;
* ``"multi_step"``: the simulation error over windows of ``horizon`` steps.

Measured states carry noise. Regressing on them biases every estimator
that treats them as exact inputs: noise in :math:`x_k` shrinks the fitted
map towards zero (attenuation), which shows up as damping the plant does not
have and a shifted frequency. Two remedies, usable together:

* ``smoothing=w``: a Savitzky-Golay filter (window ``w``, cubic) on the
  states before fitting;
* ``free_initial_states=True`` with ``"multi_step"``: every window starts
  from a learned state, fitted together with the model, and the loss
  compares the whole simulated window, its first state included, with the
  data (errors in variables). Noise then enters only as a target, never
  as an input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ._validation import check_choice, check_positive
from .errors import NotSupportedError, ShapeError
from .fitted import one_thread
from .integrators import simulate
from .models import AbstractModel
from .symplectic import SympNet

__all__ = ["StateFit", "fit_states"]

logger = logging.getLogger(__name__)

Loss = Literal["derivative", "one_step", "multi_step"]


@dataclass(frozen=True)
class StateFit:
    """The outcome of :func:`fit_states`.

    Attributes
    ----------
    model : nn.Module
        The fitted model (the object passed in, trained in place).
    history : list of dict
        ``iteration``, ``loss`` and ``seconds`` every ``log_every``
        iterations and at the end.
    initial_states : Tensor or None, shape (n_windows, n_states)
        The learned window starts with ``free_initial_states``, else None.
    settings : dict
        The options of the fit.

    Examples
    --------
    >>> import torch, phcontrol as phc
    >>> truth = phc.plants.mass_spring_damper(1.0, 4.0, 0.0)
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> x = phc.simulate(truth, x0, dt=0.05, steps=20, method="rk4").x
    >>> model = phc.PortHamiltonian(phc.QuadraticHamiltonian(2), phc.CanonicalJ(2))
    >>> fit = phc.fit_states(model.double(), x, 0.05, iterations=3)
    >>> len(fit.history) > 0
    True
    """

    model: nn.Module
    history: list[dict[str, float]]
    initial_states: Tensor | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """The loss at the last iteration."""
        return self.history[-1]["loss"]


def _savgol(x: Tensor, window: int, deriv: int, dt: float) -> Tensor:
    from scipy.signal import savgol_filter

    arr = x.detach().cpu().numpy()
    out = savgol_filter(arr, window, 3, deriv=deriv, delta=dt, axis=1)
    return torch.as_tensor(np.ascontiguousarray(out), dtype=x.dtype, device=x.device)


def _check_states(x: Tensor, n: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"`x` must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[-1] != n or not x.is_floating_point():
        raise ShapeError(
            f"`x` must be a floating tensor of shape (n_traj, T, {n}); found shape "
            f"{tuple(x.shape)}, dtype {str(x.dtype).replace('torch.', '')}. Stack "
            "trajectories of equal length."
        )
    if not bool(torch.isfinite(x).all()):
        raise ShapeError("`x` must be finite; it holds NaN or inf. Drop those samples.")
    return x


@one_thread()
def fit_states(
    model: nn.Module,
    x: Tensor,
    dt: float,
    *,
    loss: Loss = "one_step",
    horizon: int = 1,
    method: str = "rk4",
    iterations: int = 1000,
    lr: float = 1e-3,
    batch_size: int | None = None,
    smoothing: int | None = None,
    free_initial_states: bool = False,
    x_dot: Tensor | None = None,
    seed: int = 0,
    log_every: int = 100,
    callback: Callable[[int, float], None] | None = None,
) -> StateFit:
    r"""Fit ``model`` to state trajectories ``x`` sampled every ``dt``.

    Parameters
    ----------
    model : AbstractModel or SympNet
        Trained in place; a :class:`~phcontrol.SympNet` must have the same
        ``dt``.
    x : Tensor, shape (n_traj, T, n_states) or (T, n_states)
        Measured states.
    dt : float
        Sample interval.
    loss : {"derivative", "one_step", "multi_step"}, default "one_step"
        See the module notes.
    horizon : int, default 1
        Steps per window of ``"multi_step"``.
    method : str, default "rk4"
        Integrator of :func:`~phcontrol.simulate` for models with a vector
        field (any of :data:`~phcontrol.METHODS`).
    iterations : int, default 1000
        Adam iterations.
    lr : float, default 1e-3
        Adam learning rate.

    Returns
    -------
    StateFit
        The model, the loss history and the learned window starts.

    Other Parameters
    ----------------
    batch_size : int, optional
        Windows (or samples) per iteration; default all.
    smoothing : int, optional
        Odd Savitzky-Golay window (cubic) applied to ``x`` first.
    free_initial_states : bool, default False
        Learn each window's start (``"multi_step"`` only); windows then do
        not overlap.
    x_dot : Tensor, shape like ``x``, optional
        Known derivatives for ``"derivative"``; estimated by a
        Savitzky-Golay filter (window ``smoothing`` or 7) otherwise.
    seed : int, default 0
        Seeds the window sampling.
    log_every : int, default 100
        Iterations between history entries.
    callback : callable, optional
        ``callback(iteration, loss)`` after every iteration.

    Raises
    ------
    ShapeError
        If ``x`` or ``x_dot`` has the wrong shape or holds non-finite values.
    NotSupportedError
        For ``"derivative"`` with a SympNet (it has no vector field), or
        ``free_initial_states`` without ``"multi_step"``.

    Notes
    -----
    The fit runs with one intra-op torch thread (restored afterwards): its
    batches are small, and a second thread only adds contention.

    Examples
    --------
    A linear pH model learns an oscillator's frequency from one trajectory:

    >>> import torch
    >>> import phcontrol as phc
    >>> truth = phc.plants.mass_spring_damper(1.0, 4.0, 0.0)
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> x = phc.simulate(truth, x0, dt=0.05, steps=40, method="rk4").x
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = phc.PortHamiltonian(phc.QuadraticHamiltonian(2), phc.CanonicalJ(2))
    >>> fit = phc.fit_states(model.double(), x, 0.05, iterations=150, lr=0.1)
    >>> Q = model.H.Q.detach()
    >>> round(float(torch.sqrt(Q[0, 0] * Q[1, 1])), 2)  # omega = sqrt(k / m)
    2.0
    """
    check_choice(loss, "loss", ("derivative", "one_step", "multi_step"))
    dt = check_positive(dt, "dt")
    for name, value in (("horizon", horizon), ("iterations", iterations)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"`{name}` must be a positive integer; found {value!r}")
    is_map = isinstance(model, SympNet)
    if not (is_map or isinstance(model, AbstractModel)):
        raise TypeError(
            f"`model` must be a phcontrol model or a SympNet; found "
            f"{type(model).__name__}"
        )
    n = int(model.n_states)  # type: ignore[arg-type]
    x = _check_states(x, n)
    if is_map and abs(model.dt - dt) > 1e-12 * dt:  # type: ignore[operator]
        raise ValueError(
            f"the SympNet steps dt={model.dt:g} but `dt`={dt:g}; build it with "
            "the sampling interval of the data"
        )
    if loss == "derivative" and is_map:
        raise NotSupportedError(
            "loss='derivative' needs a vector field; a SympNet is a map. Use "
            "loss='one_step' or 'multi_step'."
        )
    if free_initial_states and loss != "multi_step":
        raise NotSupportedError(
            "free_initial_states=True needs loss='multi_step' (the learned starts "
            "are simulated over a window); pass loss='multi_step', horizon=..."
        )
    if loss == "one_step":
        horizon = 1
    if smoothing is not None:
        if not (isinstance(smoothing, int) and smoothing >= 5 and smoothing % 2):
            raise ValueError(
                f"`smoothing` must be an odd integer >= 5; found {smoothing!r}"
            )
        x = _savgol(x, smoothing, 0, dt)
    x = x.detach()
    scale = x.reshape(-1, n).std(0).clamp_min(1e-12)
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    n_traj, T, _ = x.shape

    starts_param: nn.Parameter | None = None
    if loss == "derivative":
        if x_dot is None:
            target = _savgol(x, smoothing or 7, 1, dt)
        else:
            target = _check_states(x_dot, n).detach()
            if target.shape != x.shape:
                raise ShapeError(
                    f"`x_dot` must have the shape of `x`, {tuple(x.shape)}; found "
                    f"{tuple(target.shape)}"
                )
        inputs, targets = x.reshape(-1, n), target.reshape(-1, n)
        n_items = inputs.shape[0]
    else:
        if T <= horizon:
            raise ShapeError(
                f"`x` holds {T} samples per trajectory; a window of horizon={horizon} "
                f"needs at least {horizon + 1}"
            )
        stride = horizon if free_initial_states else 1
        k0 = torch.arange(0, T - horizon, stride)
        windows = torch.stack([x[:, k : k + horizon + 1] for k in k0.tolist()], 1)
        windows = windows.reshape(-1, horizon + 1, n)
        n_items = windows.shape[0]
        if free_initial_states:
            starts_param = nn.Parameter(windows[:, 0].clone())
            params.append(starts_param)

    def batch_loss(idx: Tensor) -> Tensor:
        if loss == "derivative":
            f = model.vector_field(inputs[idx])  # type: ignore[operator]
            return (((f - targets[idx]) / scale) ** 2).mean()
        w = windows[idx]
        start = w[:, 0] if starts_param is None else starts_param[idx]
        if is_map:
            pred = model.rollout(start, horizon)  # type: ignore[operator]
        else:
            run: Any = simulate
            pred = run(model, start, dt=dt, steps=horizon, method=method).x
        if starts_param is None:
            pred, w = pred[:, 1:], w[:, 1:]
        return (((pred - w) / scale) ** 2).mean()

    opt = torch.optim.Adam(params, lr=check_positive(lr, "lr"))
    size = n_items if batch_size is None else min(int(batch_size), n_items)
    history: list[dict[str, float]] = []
    start_time = time.perf_counter()
    every = max(1, int(log_every))
    for it in range(1, iterations + 1):
        idx = (
            torch.arange(n_items)
            if size == n_items
            else torch.randperm(n_items, generator=gen)[:size]
        )
        opt.zero_grad()
        value = batch_loss(idx)
        value.backward()
        opt.step()
        v = float(value.detach())
        if callback is not None:
            callback(it, v)
        if it % every == 0 or it == iterations:
            entry = {
                "iteration": float(it),
                "loss": v,
                "seconds": time.perf_counter() - start_time,
            }
            history.append(entry)
            logger.debug("fit_states %s", entry)
    settings = {
        "loss": loss,
        "horizon": horizon,
        "method": method,
        "iterations": iterations,
        "lr": lr,
        "batch_size": batch_size,
        "smoothing": smoothing,
        "free_initial_states": free_initial_states,
        "seed": seed,
    }
    starts = None if starts_param is None else starts_param.detach()
    return StateFit(model, history, starts, settings)
