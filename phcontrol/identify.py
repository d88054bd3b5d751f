r"""Fit port-Hamiltonian models to input/output logs by output error.

:func:`identify` returns a :class:`~phcontrol.fitted.IdentifiedModel`: a
passive pH model in normalised units, its measurement map and an encoder
of initial states (the SUBNET idea), with a :class:`FitReport` of the
benchmark's own test errors and an audit of the energy balance.
With ``model="neural_ode"`` the same code fits a black-box baseline
instead, stepped with RK4, which has no energy and so no audit.

Fitting minimises the simulation error over truncated windows stepped with
a discrete gradient, ``substeps`` steps per sample. Between samples the
input is, by default, the band-limited signal through its samples
(``input_hold="bandlimited"``, windowed-sinc interpolation over about ten
samples on each side). That is what a plant driven through a reconstruction
filter sees, and it decides the accuracy on Silverbox: with linear
interpolation the same 2-state model stops at 0.86 mV on its training
windows, with the band-limited input at 0.21 mV, the noise floor. The
reconstruction looks ahead about ten samples, so the model simulates a
record; it is not a one-step predictor. ``"linear"`` uses ``u[k+1]`` on
``[t_k, t_{k+1}]``; ``input_hold="zoh"`` keeps ``u[k]`` over the interval,
which makes the model strictly causal (right for a plant fed by a
zero-order-hold converter).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from . import _checkpoint, _distributed, _mechanical, _tanks, greybox
from ._friction import build_friction
from ._lm import LevenbergMarquardt
from ._validation import check_choice, check_fit_settings, check_keywords
from .data import Log
from .errors import (
    ConvergenceError,
    DataError,
    ModelFileError,
    NotSupportedError,
    ShapeError,
)
from .fitted import (
    Encoder,
    IdentifiedModel,
    _energy_audit_pieces,
    _has_energy,
    _substep_inputs,
    one_thread,
)
from .hamiltonians import (
    MechanicalHamiltonian,
    MLPPotential,
    PolynomialPotential,
    QuadraticHamiltonian,
)
from .models import NeuralODE, PortHamiltonian
from .structure import (
    CanonicalJ,
    CholeskyDissipation,
    InputMatrix,
    PolynomialDissipation,
    SkewSymmetric,
)

__all__ = ["FitReport", "FitResult", "identify"]

logger = logging.getLogger(__name__)

ModelKind = Literal["mechanical", "linear", "friction", "tanks", "neural_ode"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)

NO_ENERGY = (
    "no energy: not audited (a neural ODE has no energy function, so there is "
    "no energy balance to check)"
)
"""The audit's ``reason`` for a fitted model without energy."""


@dataclass(frozen=True)
class FitReport:
    """What a fit measured.

    Attributes
    ----------
    metrics : dict
        Per evaluated split: ``rmse`` in ``unit``, sample count, whether the
        simulation converged, and the stitching diagnostics.
    unit : str
        Unit of the RMSE figures (the benchmark's own, e.g. ``"mV"``).
    history : list of dict
        Training curve: iteration, training loss, validation loss, seconds.
    audit : dict
        Energy-balance audit of the longest test simulation: the largest
        per-sample residual of ``H' - H + dissipated - supplied``, absolute and
        relative to ``1 + |H|``. For a model without energy (``neural_ode``)
        only ``audited: False``, the ``reason`` and the ``split``.
    parameters : dict
        Fitted ``R`` and ``G`` (normalised units) and other named values; for
        a neural ODE its hidden widths and parameter count instead.
    settings : dict
        Every option of the fit, the seed and the library versions.
    wall_time : float
        Seconds the whole fit took.
    interrupted : bool
        True when training was stopped early by SIGINT, SIGTERM or a
        ``KeyboardInterrupt``; the model is then the best one found so far.
    events : list of dict
        Faults met while fitting and what was done about each (rolled back,
        learning rate lowered, stage stopped, interrupted), with the stage
        and iteration.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.data import Log
    >>> t = 0.1 * np.arange(300)
    >>> u = np.sin(0.7 * t)[:, None]
    >>> log = Log(t=t, u=u, z=np.sin(0.7 * t - 0.3)[:, None], source="demo")
    >>> fit = phc.identify(log, model="linear", window=10, n_past=3, lbfgs_steps=0,
    ...                    iterations=1)
    >>> fit.report.unit, sorted(fit.report.metrics["val"])[:2]
    ('log units', ['converged', 'rmse'])
    """

    metrics: dict[str, dict[str, Any]]
    unit: str
    history: list[dict[str, float]]
    audit: dict[str, Any]
    parameters: dict[str, Any]
    settings: dict[str, Any]
    wall_time: float
    interrupted: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready nested dicts."""
        return {
            "metrics": self.metrics,
            "unit": self.unit,
            "history": self.history,
            "audit": self.audit,
            "parameters": self.parameters,
            "settings": self.settings,
            "wall_time": self.wall_time,
            "interrupted": self.interrupted,
            "events": self.events,
        }


@dataclass(frozen=True)
class FitResult:
    """The fitted model, its report, and the simulated test outputs.

    Attributes
    ----------
    model : IdentifiedModel
    report : FitReport
    predictions : dict of str to (ndarray, ndarray)
        Per evaluated split: measured and simulated outputs after the
        initialisation window, in the log's units.
    output_names : tuple of str
        Names of the measured outputs, as in the log; figures label their
        axes with them.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.data import Log
    >>> t = 0.1 * np.arange(300)
    >>> u = np.sin(0.7 * t)[:, None]
    >>> log = Log(t=t, u=u, z=np.sin(0.7 * t - 0.3)[:, None], source="demo")
    >>> fit = phc.identify(log, model="linear", window=10, n_past=3, lbfgs_steps=0,
    ...                    iterations=1)
    >>> type(fit.model).__name__, sorted(fit.predictions)
    ('IdentifiedModel', ['val'])
    """

    model: IdentifiedModel
    report: FitReport
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    output_names: tuple[str, ...] = ()


def _savgol(z: np.ndarray, deriv: int, window: int = 11, order: int = 3) -> np.ndarray:
    from scipy.signal import savgol_filter

    return savgol_filter(z, window, order, deriv=deriv, axis=0)


def _build_mechanical(n_inputs: int, u: np.ndarray, z: np.ndarray, mlp_hidden: int):
    """A 1-DOF mechanical pH model warm-started by equation error.

    Savitzky–Golay derivatives of the (normalised) output give velocity
    and acceleration; least squares then fits ``m a + r v + V'(q) = u``
    with a quartic ``V``, which is the initial model.
    """
    q = _savgol(z[:, 0], 0)
    v = _savgol(z[:, 0], 1)
    acc = _savgol(z[:, 0], 2)
    A = np.stack([acc, v, np.ones_like(q), q, q**2, q**3], axis=1)
    target = u[:, 0] if n_inputs else np.zeros_like(q)
    theta, *_ = np.linalg.lstsq(A, target, rcond=None)
    m, r, d1, d2, d3, d4 = theta
    if m <= 0:  # a wrong-signed fit: fall back to a unit oscillator
        m, r, d1, d2, d3, d4 = 1.0, 0.1, 0.0, 0.4, 0.0, 0.0
    m, r = float(m), float(max(r, 1e-3))
    coeffs = [d1, d2 / 2.0, d3 / 3.0, max(d4 / 4.0, 1e-4)]
    potential = [
        PolynomialPotential(1, degree=4, coefficients=torch.tensor([coeffs])),
        MLPPotential(1, hidden=(mlp_hidden,), out_scale=1e-3),
    ]
    H = MechanicalHamiltonian(1, potential=potential, mass=torch.tensor([[m]]))
    # The speed term starts where it changes the damping by a few percent at
    # a typical momentum: small enough to keep the warm start, large enough
    # for its softplus parameter to have a useful gradient.
    c1 = 0.05 * r / max(float(np.mean((m * v) ** 2)), 1e-12)
    R = PolynomialDissipation(
        2, mask=[False, True], degree=1, init=torch.tensor([[r, c1], [r, c1]])
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
    states = np.stack([q, m * v], axis=1)
    logger.info("equation-error warm start: m=%.4g r=%.4g V'=%s", m, r, coeffs)
    return system, states


def _build_linear(n_inputs: int, n_outputs: int, u: np.ndarray, z: np.ndarray):
    n = 2 * n_outputs
    H = QuadraticHamiltonian(n)
    system = PortHamiltonian(
        H,
        SkewSymmetric(n),
        CholeskyDissipation(n),
        InputMatrix(n, n_inputs) if n_inputs else None,
    )
    v = _savgol(z, 1)
    states = np.concatenate([z, v], axis=1)
    return system, states


def _build_neural_ode(
    n_inputs: int, u: np.ndarray, z: np.ndarray, mlp_hidden: int
) -> tuple[NeuralODE, np.ndarray]:
    """The black-box baseline, warm-started by derivative matching.

    Two states per output, ``x = (z, dz/dt)`` from Savitzky–Golay
    derivatives of the normalised ``z`` (N, p) under ``u`` (N, m). The MLP
    is fitted by L-BFGS to the rates ``(dz/dt, d²z/dt²)`` at the samples,
    each scaled to unit variance: an equation error, with no simulation.
    That fit may still drift in free run; :func:`_tame_neural_ode` checks.
    """
    n = 2 * z.shape[1]
    system = NeuralODE(n, n_inputs, hidden=(mlp_hidden, mlp_hidden))
    system = system.to(torch.float64)
    states = np.concatenate([z, _savgol(z, 1)], axis=1)
    rates = torch.as_tensor(np.concatenate([_savgol(z, 1), _savgol(z, 2)], axis=1))
    x, ut = torch.as_tensor(states), torch.as_tensor(u)
    scale = rates.std(0) + 1e-12
    opt = torch.optim.LBFGS(
        system.parameters(),
        max_iter=_WARM_START_STEPS,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = (((system(x, ut) - rates) / scale) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    logger.info("derivative-matching warm start of the neural ODE done")
    return system, states


_WARM_START_STEPS = 100
"""L-BFGS iterations of the neural ODE's derivative matching (each one
evaluation of the MLP at every training sample: well under a second)."""


def _tame_neural_ode(
    fitted: IdentifiedModel, record: tuple[Tensor, Tensor, Tensor], window: int
) -> str | None:
    """Replace a warm-started neural ODE whose simulation diverges.

    Simulates up to 16 evenly spaced training windows of ``window`` samples
    from the encoded states. If the error explodes (see :func:`_exploding`),
    the MLP's output layer is set to zero, so the model starts by holding
    its state, and the reason is returned; otherwise None.
    """
    n = record[0].shape[0]
    n_past = fitted.n_past
    starts = torch.linspace(n_past, n - window - 1, 16).long().unique()
    loss = _window_loss(fitted, *_windows(record, n_past, window, starts))
    if not _exploding(loss, 1.0):
        return None
    with torch.no_grad():
        last = [m for m in fitted.system.modules() if isinstance(m, torch.nn.Linear)]
        last[-1].weight.zero_()
        last[-1].bias.zero_()
    return f"the derivative-matching warm start diverged in simulation ({loss:.3g})"


def _encoder_lstsq(
    encoder: Encoder, u: np.ndarray, z: np.ndarray, states: np.ndarray
) -> None:
    """Set the encoder's linear part to the ridge least-squares estimator."""
    n_past = encoder.n_past
    N = len(z)
    idx = np.arange(n_past, N)
    win = idx[:, None] + np.arange(-n_past, 0)[None, :]
    feats = np.concatenate([u[win], z[win]], axis=-1).reshape(len(idx), -1)
    X = np.concatenate([feats, np.ones((len(idx), 1))], axis=1)
    Y = states[idx]
    reg = 1e-6 * np.eye(X.shape[1])
    W = np.linalg.solve(X.T @ X + reg, X.T @ Y)
    with torch.no_grad():
        encoder.linear.weight.copy_(torch.as_tensor(W[:-1].T))
        encoder.linear.bias.copy_(torch.as_tensor(W[-1]))


def _windows(
    record: tuple[Tensor, Tensor, Tensor], n_past: int, length: int, starts: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cut (batch) windows from ``record = (u, z, u_sub)``.

    Returns the past ``u`` and ``z`` for the encoder, the future sub-step
    inputs (batch, length * substeps, m) and the future ``z`` to fit.
    ``u_sub`` (N, substeps, m) holds each interval's sub-step inputs,
    computed once from the whole record (see :func:`_record`).
    """
    u, z, u_sub = record
    past = starts[:, None] + torch.arange(-n_past, 0)[None, :]
    fut = starts[:, None] + torch.arange(length + 1)[None, :]
    return u[past], z[past], u_sub[fut[:, :-1]].flatten(1, 2), z[fut]


def _record(fitted: IdentifiedModel, log: Log) -> tuple[Tensor, Tensor, Tensor]:
    """Normalised ``u`` (N, m), ``z`` (N, p) and sub-step inputs (N, S, m).

    The sub-step inputs come from the whole record, so that a window's
    band-limited input does not depend on where the window was cut. The
    last row (no interval follows it) repeats the last sample.
    """
    u, z = fitted.normalise(torch.as_tensor(log.u), torch.as_tensor(log.z))
    S = fitted.substeps
    inner = _substep_inputs(u[None], S, fitted.input_hold)[0]
    last = u[-1:, None, :].expand(1, S, -1)
    return u, z, torch.cat([inner.unflatten(0, (-1, S)), last], dim=0)


def _split_log(data: Any, val_fraction: float) -> tuple[Log, Log, dict[str, Log], Any]:
    from .datasets import Dataset
    from .datasets import load as load_dataset

    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, Dataset):
        tests = {k: data.splits[k] for k in data.test_sets}
        return data.splits["train"], data.splits["val"], tests, data
    if isinstance(data, Log):
        train, val = data.split(val_fraction)
        return train, val, {}, None
    raise TypeError(
        f"`data` must be a Log, a Dataset or a bundled dataset name; got "
        f"{type(data).__name__}"
    )


@check_keywords
@one_thread()
def identify(
    data: Log | Any,
    *,
    model: ModelKind | PortHamiltonian = "mechanical",
    substeps: int = 3,
    input_hold: Literal["bandlimited", "linear", "cubic", "zoh"] = "bandlimited",
    window: int = 128,
    batch_size: int = 128,
    first_stage: Literal["lm", "lbfgs"] | None = None,
    lm_windows: int = 128,
    lm_lengths: Sequence[int] = (25, 50, 100, 200),
    lm_iterations: int = 15,
    lbfgs_steps: int = 10,
    iterations: int = 120,
    lr: float = 2e-3,
    n_past: int = 10,
    val_fraction: float = 0.2,
    val_every: int = 25,
    patience: int = 4,
    max_time: float | None = None,
    seed: int = 0,
    mlp_hidden: int = 16,
    n_init: int | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> FitResult:
    r"""Fit a passive pH model to a log by output error over windows.

    Fitting runs in two stages, each scored on the validation part, whose
    best model is kept:

    1. *physical parameters* (mass, potential polynomial, damping law,
       input gain), from an equation-error warm start, by
       Levenberg–Marquardt on the simulation error of ``lm_windows`` evenly
       spaced windows, each with an initial state of its own that is fitted
       too; the windows grow through ``lm_lengths`` (see Notes); then the
       encoder's linear part is fitted to the simulated states. With
       ``first_stage="lbfgs"``: L-BFGS on the physical parameters and the
       encoder's linear part over ``2 * batch_size`` windows instead;
    2. *every parameter*, the neural corrections included, by Adam on random
       mini-batches of windows with a cosine learning-rate schedule and
       early stopping.

    Parameters
    ----------
    data : Log or Dataset or str
        The log, a bundled dataset, or its name (``"silverbox"``). A
        dataset brings its own train/validation/test split; a plain log
        keeps its last ``val_fraction`` for validation.
    model : str or PortHamiltonian, default "mechanical"
        One of ``"mechanical"``, ``"linear"``, ``"friction"``, ``"tanks"``,
        ``"neural_ode"``, or a model of your own.
        ``mechanical``: one degree of freedom, :math:`H = p^2/2m + V(q)` with
        ``V`` a quartic plus a tanh correction, a damping
        :math:`r(p) = c_0 + c_1 p^2` on ``p``, input on ``p``, measured output
        ``z = q``. ``linear``: quadratic ``H`` with two states per output,
        ``J = S - S^T``, ``R = LL^T``. ``friction``: a mass with viscous and
        smoothed Coulomb friction and a constant force (see
        ``docs/friction.md``). ``tanks``: two cascaded tanks with
        overflow, a pump input and a saturating level reading (see the
        cascaded-tanks page of the documentation). A :class:`PortHamiltonian`
        (for example a grey-box model of :mod:`phcontrol.greybox`) is fitted
        as it is, in physical units with time in seconds; its first
        ``n_outputs`` states are the measured outputs. It is copied, not
        changed.

        ``neural_ode`` is the black-box baseline, fitted by the same code:
        :class:`~phcontrol.NeuralODE`, :math:`\dot x = f(x, u)` with ``f`` an
        MLP of two tanh layers of ``mlp_hidden`` units, two states per
        output (the first ``n_outputs`` are measured), stepped with RK4. It
        has no energy, so it is not passive and ``report.audit`` says that
        nothing was audited. It has no physical parameters, so there is no
        first stage: the MLP starts from a fit to Savitzky–Golay
        derivatives of the outputs (no simulation), then Adam fits every
        parameter; on short runs an ``lr`` of 2e-4 to 5e-4 keeps its first
        Adam steps from overshooting. Use it as a reference for what the pH
        structure costs or gains in accuracy.
    substeps : int, default 3
        Discrete-gradient steps per sample (RK4 steps for ``neural_ode``).
    window : int, default 128
        Samples per training window.
    batch_size : int, default 128
        Windows per Adam iteration.
    first_stage : {"lm", "lbfgs"}, optional
        Optimiser of the first stage: Levenberg–Marquardt with free
        initial states, or L-BFGS through the encoder. Default: ``"lm"``
        for ``"mechanical"`` and for given models with the fast scalar step
        (one degree of freedom), ``"lbfgs"`` otherwise: for the other
        built-in models each of the many simulations that the Jacobian takes
        costs a general implicit solve, and ``"friction"`` was tuned with
        L-BFGS. ``"neural_ode"`` has no first stage and refuses this option.
    lm_windows : int, default 128
        Windows of the Levenberg–Marquardt stage.
    lm_lengths : sequence of int, default (25, 50, 100, 200)
        Window lengths, in samples, of its successive rounds; lengths the
        training part cannot hold are dropped.
    lm_iterations : int, default 15
        Most Levenberg–Marquardt steps per length (each one simulation per
        parameter and per state coordinate); 0 skips the stage.
    lbfgs_steps : int, default 10
        L-BFGS steps of the first stage with ``first_stage="lbfgs"`` (each up
        to 10 simulations of the windows); 0 skips the stage.
    iterations : int, default 120
        Adam iterations of the second stage; 0 skips it.
    lr : float, default 2e-3
        Initial Adam learning rate.
    seed : int, default 0
        Seeds torch and numpy; the same seed gives the same fit on CPU.

    Returns
    -------
    FitResult
        ``model``, ``report`` and the test ``predictions``.

    Other Parameters
    ----------------
    input_hold : {"bandlimited", "linear", "cubic", "zoh"}, default "bandlimited"
        How inputs are held between samples (see the module notes).
    n_past : int, default 10
        Encoder window.
    val_fraction : float, default 0.2
        Share of a plain log kept for validation.
    val_every, patience : int
        Validate every ``val_every`` Adam iterations; stop after
        ``patience`` validations without improvement.
    max_time : float, optional
        Stop training after this many seconds.
    mlp_hidden : int, default 16
        Width of the potential's tanh correction; for ``neural_ode`` the
        width of each of its two hidden layers.
    n_init : int, optional
        Samples that set the initial state of each evaluated split
        (default: the dataset's protocol, else ``n_past``).
    callback : callable, optional
        Called with a progress dict after every step of either stage
        (``iteration``, ``stage``, ``train_loss``, ``seconds`` and, where
        validated, ``val_loss``), and once with ``stage="simulate"`` before
        the evaluated splits are simulated. A ``KeyboardInterrupt`` it
        raises stops training at that step, like SIGINT.
    checkpoint : str or path-like, optional
        File (``.safetensors``) where the state of the fit is written,
        atomically, after every validation, at the end of each stage and
        when training stops early. Nothing is pickled.
    resume : bool, default False
        Continue the fit stored in ``checkpoint`` (same data and options)
        instead of starting anew. An Adam stage continues exactly where it
        stopped; an L-BFGS stage restarts its curvature memory.

    Raises
    ------
    DataError
        If the log is too short for the window or has no output. A plain
        log needs ``n_past + window + 1`` samples in each part of its split.
    ValueError
        If ``window`` or ``n_past`` is below 1, or ``val_fraction`` is not
        strictly between 0 and 1.
    ConvergenceError
        If the fit produced non-finite losses it could not recover from.
    FileNotFoundError
        With ``resume=True``, if ``checkpoint`` does not exist.
    ModelFileError
        With ``resume=True``, if ``checkpoint`` is damaged, is not a
        checkpoint, or belongs to a fit of other data or options.
    NotSupportedError
        If ``model`` does not fit the log (``"mechanical"`` or
        ``"friction"`` with several outputs), or ``first_stage`` is given
        with ``model="neural_ode"``.

    Notes
    -----
    Faults are handled, not hidden. A non-finite or exploding training loss
    in the Adam stage rolls the model back to the best one so far, halves
    the learning rate, resets the moment estimates and goes on; after ten
    such faults the fit stops with a :class:`ConvergenceError`. In the
    L-BFGS stage a failed line search or a diverging validation loss rolls
    back and ends the stage. Each fault is logged as a warning and listed
    in ``report.events``.

    While fitting in the main thread, SIGINT (Ctrl-C) and SIGTERM stop
    training at the end of the current step: the best model so far is
    evaluated and returned with ``report.interrupted`` set, and the
    checkpoint is written. A second Ctrl-C interrupts at once.

    Started by ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` set), the N
    processes share the fit: each simulates every N-th training window of
    each stage, and the sums over windows (normal equations, losses,
    gradients, the encoder's Gram matrices) are added over the processes
    with gloo, so every process takes the same steps and returns the same
    model. Validation is computed in full by each process. Only rank 0
    writes ``checkpoint``; ``report.settings["processes"]`` records N. The
    fit agrees with a one-process fit to round-off amplified by the
    optimisers (see the GPU and cluster how-to).

    Examples
    --------
    >>> import phcontrol as phc
    >>> fit = phc.identify(
    ...     "cascaded_tanks", model="linear", window=20, lbfgs_steps=1, iterations=2
    ... )
    >>> sorted(fit.report.metrics)
    ['test', 'val']
    >>> fit.report.unit
    'V'
    """
    call = dict(locals())  # the arguments, for the checkpoint's fingerprint
    t_start = time.perf_counter()
    if resume and checkpoint is None:
        raise ValueError(
            "`resume=True` needs `checkpoint=`, the file of the fit to continue"
        )
    custom = isinstance(model, PortHamiltonian)
    if not custom:
        check_choice(model, "model", MODEL_KINDS)
    check_choice(input_hold, "input_hold", ("bandlimited", "linear", "cubic", "zoh"))
    check_fit_settings(data, n_past=n_past, window=window, val_fraction=val_fraction)
    if first_stage is not None:
        check_choice(first_stage, "first_stage", ("lm", "lbfgs"))
        if model == "neural_ode":
            raise NotSupportedError(
                f"first_stage={first_stage!r} fits physical parameters, and "
                "model='neural_ode' has none; leave `first_stage` unset: Adam "
                "then fits every parameter of the neural ODE"
            )
    if lm_windows < 1 or any(int(k) < 1 for k in lm_lengths) or not lm_lengths:
        raise ValueError(
            "`lm_windows` and every entry of `lm_lengths` must be positive "
            f"integers; found lm_windows={lm_windows}, lm_lengths={lm_lengths}"
        )
    train, val, tests, dataset = _split_log(data, val_fraction)
    if train.n_outputs < 1:
        raise DataError(f"{train.source}: the log has no output column to fit")
    if custom:
        _check_custom(model, train)
    if model in ("mechanical", "friction") and train.n_outputs != 1:
        raise NotSupportedError(
            f"model={model!r} fits one measured position; the log has "
            f"{train.n_outputs} outputs. Use model='linear'."
        )
    need = n_past + window + 1
    for name, part in (("training", train), ("validation", val)):
        if len(part) < need:
            raise DataError(
                f"{train.source}: the {name} part has {len(part)} samples but a "
                f"window needs {need} (n_past + window + 1); shorten `window`"
            )
    _distributed.init()  # under torchrun: join the other processes
    torch.manual_seed(seed)
    np.random.seed(seed)
    fitted = _initial_model(
        train, model, n_past, mlp_hidden, substeps, input_hold, seed
    )
    # Every process builds the same model; rank 0's copy makes that certain
    # even for a given model that was initialised at random in each process.
    _distributed.broadcast_module(fitted)
    if first_stage is None:
        first_stage = _default_first_stage(model)
    train_rec, val_rec = _record(fitted, train), _record(fitted, val)
    tamed = None
    if model == "neural_ode":
        tamed = _tame_neural_ode(fitted, train_rec, window)
    val_len = min(len(val) - n_past - 1, 400)
    val_starts = torch.arange(n_past, len(val) - val_len, val_len)
    val_win = _windows(val_rec, n_past, val_len, val_starts)

    tracker = _Tracker(fitted, _window_loss(fitted, *val_win), t_start, callback)
    if tamed is not None:
        tracker.fault("warm start", tamed, "started from a zero vector field instead")
    if checkpoint is not None:
        options = {k: v for k, v in call.items() if k not in _FREE_ON_RESUME}
        if custom:
            options["model"] = _checkpoint.fingerprint(
                [p.detach().numpy() for p in model.parameters()], {}
            )
        key = _checkpoint.fingerprint([train.u, train.z, val.u, val.z], options)
        tracker.checkpoint = (os.fspath(checkpoint), key)
    saved = tracker.restore() if resume else None
    _distributed.barrier()  # rank 0 writes the checkpoint only once all read it
    stage = saved.stage if saved is not None else "lbfgs"
    deadline = math.inf if max_time is None else t_start + max_time
    with _checkpoint.StopRequest() as stop:
        tracker.stop = stop
        try:
            if first_stage == "lm" and lm_iterations and stage == "lbfgs":
                _fit_lm(
                    fitted,
                    train_rec,
                    val_win,
                    tracker,
                    deadline,
                    n_past=n_past,
                    windows=lm_windows,
                    lengths=lm_lengths,
                    iterations=lm_iterations,
                    start=saved.stage_step if saved is not None else 0,
                )
            elif first_stage == "lbfgs" and lbfgs_steps and stage == "lbfgs":
                starts = torch.linspace(
                    n_past, len(train) - window - 1, min(2 * batch_size, len(train))
                ).long()
                starts = starts.unique()
                _fit_lbfgs(
                    fitted,
                    _windows(train_rec, n_past, window, _share(starts)),
                    val_win,
                    lbfgs_steps,
                    tracker,
                    deadline,
                    total=len(starts),
                    start=saved.stage_step if saved is not None else 0,
                )
            if (
                iterations
                and stage != "done"
                and not tracker.stopping()
                and not _past(deadline)
            ):
                gen = torch.Generator().manual_seed(seed)
                _fit_adam(
                    fitted,
                    train_rec,
                    val_win,
                    tracker,
                    deadline,
                    gen=gen,
                    n_past=n_past,
                    window=window,
                    batch_size=batch_size,
                    iterations=iterations,
                    lr=lr,
                    val_every=val_every,
                    patience=patience,
                    saved=saved if stage == "adam" else None,
                )
        except KeyboardInterrupt:  # in the middle of a step: keep the best
            tracker.interrupt("KeyboardInterrupt")
    if not tracker.interrupted:
        tracker.save("done", 0)
    fitted.load_state_dict(tracker.best_state)
    logger.info("training done: best validation loss %.4g", tracker.best_val)
    if callback is not None:
        callback({"iteration": tracker.step, "stage": "simulate"})

    evaluate = {"val": val, **tests}
    scale = dataset.unit_scale if dataset is not None else 1.0
    unit = dataset.unit if dataset is not None else "log units"
    k0 = dataset.init_window if dataset is not None else n_past
    k0 = max(k0 if n_init is None else n_init, n_past)
    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    longest = max(evaluate, key=lambda k: len(evaluate[k]))
    pieces = None
    for name, part in evaluate.items():
        z_sim, info, simulated = fitted._predict_pieces(part.u, part.z, k0, None)
        if name == longest:
            pieces = simulated  # audited below without simulating it again
        z_meas = part.z[k0:]
        rmse = float(np.sqrt(np.mean((z_sim - z_meas) ** 2)) * scale)
        metrics[name] = {"rmse": rmse, "samples": int(len(z_meas)), **info}
        predictions[name] = (z_meas, z_sim)
    if _has_energy(fitted):
        assert pieces is not None
        audit = _energy_audit_pieces(fitted, pieces)
    else:
        audit = {"audited": False, "reason": NO_ENERGY}
    audit["split"] = longest
    report = FitReport(
        metrics=metrics,
        unit=unit,
        history=tracker.history,
        audit=audit,
        parameters=_parameters(fitted),
        settings=_settings(
            dataset.name if dataset is not None else train.source,
            model=type(model).__name__ if custom else model,
            first_stage=first_stage,
            lm_windows=lm_windows,
            lm_lengths=list(lm_lengths),
            lm_iterations=lm_iterations,
            substeps=substeps,
            input_hold=input_hold,
            window=window,
            batch_size=batch_size,
            lbfgs_steps=lbfgs_steps,
            iterations=iterations,
            lr=lr,
            n_past=n_past,
            seed=seed,
            mlp_hidden=mlp_hidden,
            n_init=k0,
            processes=_distributed.world_size(),
            steps_run=tracker.step,
            resumed=saved is not None,
        ),
        wall_time=time.perf_counter() - t_start,
        interrupted=tracker.interrupted,
        events=list(tracker.events),
    )
    return FitResult(
        model=fitted,
        report=report,
        predictions=predictions,
        output_names=tuple(train.output_names),
    )


def _initial_model(
    train: Log,
    model: str | PortHamiltonian,
    n_past: int,
    mlp_hidden: int,
    substeps: int,
    input_hold: str,
    seed: int,
) -> IdentifiedModel:
    """Build the model in normalised units, warm-started by equation error
    (a neural ODE by derivative matching); a given PortHamiltonian is copied
    and kept in physical units."""
    if isinstance(model, str) and model == "tanks":  # see phcontrol/_tanks.py
        return _tanks.initial_model(train, n_past, substeps, input_hold, seed)
    u_mean, u_std = train.u.mean(0), train.u.std(0) + 1e-12
    z_mean, z_std = train.z.mean(0), train.z.std(0) + 1e-12
    time_step = 1.0
    if isinstance(model, PortHamiltonian):
        u_mean, u_std = np.zeros_like(u_mean), np.ones_like(u_std)
        z_mean, z_std = np.zeros_like(z_mean), np.ones_like(z_std)
        time_step = train.dt
    un = (train.u - u_mean) / u_std
    zn = (train.z - z_mean) / z_std
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if isinstance(model, PortHamiltonian):
            system = copy.deepcopy(model).to(torch.float64)
            z_rate = _savgol(zn, 1) / time_step
            states = np.concatenate([zn, z_rate], axis=1)[:, : system.n_states]
            if states.shape[1] < system.n_states:
                pad = np.zeros((len(zn), system.n_states - states.shape[1]))
                states = np.concatenate([states, pad], axis=1)
        elif model == "mechanical":
            system, states = _build_mechanical(train.n_inputs, un, zn, mlp_hidden)
        elif model == "friction":  # mass with viscous and Coulomb friction
            system, states = build_friction(train.n_inputs, un, zn)
        elif model == "neural_ode":  # the black-box baseline
            system, states = _build_neural_ode(train.n_inputs, un, zn, mlp_hidden)
        else:
            system, states = _build_linear(train.n_inputs, train.n_outputs, un, zn)
        encoder = Encoder(n_past, train.n_inputs, train.n_outputs, system.n_states)
    _encoder_lstsq(encoder, un, zn, states)
    return IdentifiedModel(
        system.to(torch.float64),
        encoder.to(torch.float64),
        dt=train.dt,
        u_mean=u_mean.tolist(),
        u_std=u_std.tolist(),
        z_mean=z_mean.tolist(),
        z_std=z_std.tolist(),
        substeps=substeps,
        input_hold=input_hold,
        time_step=time_step,
    )


def _default_first_stage(model: str | PortHamiltonian) -> str | None:
    """The first stage :func:`identify` runs for ``model`` when none is given.

    Levenberg–Marquardt for ``"mechanical"`` and for a given model with the
    fast scalar step; L-BFGS for the other built-in pH models; None for
    ``"neural_ode"``, which has no physical parameters.
    """
    if isinstance(model, PortHamiltonian):
        return "lm" if _mechanical.supports(model) else "lbfgs"
    if model == "neural_ode":
        return None
    return "lm" if model == "mechanical" else "lbfgs"


def _check_custom(model: PortHamiltonian, train: Log) -> None:
    """Refuse a given model whose ports do not match the log."""
    if model.n_inputs != train.n_inputs:
        raise ShapeError(
            f"`model` has {model.n_inputs} inputs but {train.source} has "
            f"{train.n_inputs} input columns; build the model's G with "
            f"{train.n_inputs} columns"
        )
    if model.n_states < train.n_outputs:
        raise ShapeError(
            f"`model` has {model.n_states} states but {train.source} has "
            f"{train.n_outputs} outputs, which are its first states; add states"
        )


_FREE_ON_RESUME = ("data", "max_time", "callback", "checkpoint", "resume", "n_init")
"""Arguments of :func:`identify` that may change between a fit and its resumption;
every other one must match (the data are compared by their values)."""


class _Tracker:
    """Keep the best model by validation loss, the history and the faults.

    It also writes the checkpoint and says when training should stop: on a
    signal caught by :class:`~phcontrol._checkpoint.StopRequest`, or when
    the callback raised ``KeyboardInterrupt``.
    """

    def __init__(
        self,
        fitted: IdentifiedModel,
        val_loss: float,
        t_start: float,
        callback: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.fitted = fitted
        self.t_start = t_start
        self.callback = callback
        self.step = 0
        self.best_val = val_loss if math.isfinite(val_loss) else math.inf
        self.best_state = self._snapshot()
        self.history: list[dict[str, Any]] = [
            {
                "iteration": 0,
                "stage": "start",
                "train_loss": math.nan,
                "val_loss": val_loss,
                "seconds": 0.0,
            }
        ]
        self.events: list[dict[str, Any]] = []
        self.checkpoint: tuple[str, str] | None = None
        self.stop: _checkpoint.StopRequest | None = None
        self.stop_reason: str | None = None
        self.interrupted = False

    def _snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.fitted.state_dict().items()}

    def record(
        self,
        stage: str,
        train_loss: float,
        val_loss: float | None,
        *,
        keep: bool = False,
    ) -> bool:
        """Log one step; return True when ``val_loss`` is a new best.

        With ``keep``, the model becomes the best one even when its
        validation loss is higher: a later step that the method prefers on
        other grounds (longer windows in the Levenberg–Marquardt stage)."""
        self.step += 1
        entry: dict[str, Any] = {
            "iteration": self.step,
            "stage": stage,
            "train_loss": train_loss,
            "seconds": time.perf_counter() - self.t_start,
        }
        improved = False
        if val_loss is not None:
            entry["val_loss"] = val_loss
            self.history.append(entry)
            if val_loss < self.best_val or keep:
                self.best_val, improved = val_loss, True
                self.best_state = self._snapshot()
        if self.callback is not None:
            try:
                self.callback(entry)
            except KeyboardInterrupt:  # the step is complete: stop cleanly
                self.stop_reason = "KeyboardInterrupt"
        return improved

    def fault(self, stage: str, problem: str, action: str) -> None:
        """Record a fault met while fitting and log it as a warning."""
        self.events.append(
            {"iteration": self.step, "stage": stage, "event": problem, "action": action}
        )
        logger.warning("%s step %d: %s; %s", stage, self.step, problem, action)

    def stopping(self) -> bool:
        """True once a signal or the callback asked training to stop.

        Under ``torchrun`` every process answers the same: true when any of
        them was asked to stop (a collective, so all call it in step)."""
        if self.stop_reason is None and self.stop is not None:
            self.stop_reason = self.stop.reason
        if _distributed.any_true(self.stop_reason is not None):
            self.stop_reason = self.stop_reason or "another process stopped"
        return self.stop_reason is not None

    def interrupt(self, reason: str) -> None:
        """Mark the fit interrupted; the best model so far will be kept."""
        self.interrupted = True
        self.events.append(
            {
                "iteration": self.step,
                "stage": "training",
                "event": f"interrupted ({reason})",
                "action": "kept the best model so far",
            }
        )
        logger.warning(
            "training interrupted (%s) after %d steps; keeping the best model",
            reason,
            self.step,
        )

    def save(self, stage: str, stage_step: int, **state: Any) -> None:
        """Write the checkpoint, if the fit has one (rank 0 only)."""
        if self.checkpoint is None or not _distributed.is_main():
            return
        path, key = self.checkpoint
        fit_state = _checkpoint.FitState(
            stage=stage,
            stage_step=stage_step,
            step=self.step,
            best_val=self.best_val,
            history=self.history,
            events=self.events,
            current=self._snapshot(),
            best=self.best_state,
            **state,
        )
        _checkpoint.save_checkpoint(Path(path), fit_state, key)

    def restore(self) -> _checkpoint.FitState:
        """Load the checkpoint into the model and this tracker."""
        assert self.checkpoint is not None  # identify checks resume=True needs one
        path, key = self.checkpoint
        saved = _checkpoint.load_checkpoint(Path(path), key)
        try:
            self.fitted.load_state_dict(saved.best)
            self.fitted.load_state_dict(saved.current)
        except RuntimeError as err:
            raise ModelFileError(
                f"cannot resume from {path!r}: its parameters do not fit this "
                f"model ({_first_line(err)}); start a new fit without resume"
            ) from err
        self.best_state = {k: v.clone() for k, v in saved.best.items()}
        self.best_val, self.step = saved.best_val, saved.step
        self.history, self.events = list(saved.history), list(saved.events)
        logger.info("resuming from %s: %s step %d", path, saved.stage, self.step)
        return saved


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _is_physical(name: str) -> bool:
    """True for a parameter of the physical part (no neural correction)."""
    return ".net." not in name and "correction" not in name


_DIVERGED = 1e10
"""Loss reported to L-BFGS for a trial point whose simulation diverged."""

_EXPLODED = 100.0
"""Normalised loss above which a loss that also grew a thousandfold counts
as exploding: the simulation is then ten standard deviations off."""

_MAX_FAULTS = 10
"""Faults the Adam stage absorbs before it gives up."""


def _exploding(loss: float, reference: float) -> bool:
    """True for a non-finite loss, or one far above both its bounds."""
    return not math.isfinite(loss) or loss > max(_EXPLODED, 1e3 * reference)


def _fit_lbfgs(
    fitted: IdentifiedModel,
    windows: tuple[Tensor, Tensor, Tensor, Tensor],
    val_win: tuple[Tensor, Tensor, Tensor, Tensor],
    steps: int,
    tracker: _Tracker,
    deadline: float,
    *,
    total: int,
    start: int = 0,
) -> None:
    """Stage 1: L-BFGS on the physical parameters over fixed windows.

    ``windows`` are this process's share of ``total`` windows; the loss and
    its gradient are summed over the processes inside the closure, so the
    line search sees the same values everywhere."""
    params = [p for n, p in fitted.named_parameters() if _is_physical(n)]
    frozen = [p for n, p in fitted.named_parameters() if not _is_physical(n)]
    opt = torch.optim.LBFGS(
        params, lr=1.0, max_iter=10, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        loss = _window_loss_grad(fitted, *windows, total=total)
        if not math.isfinite(loss):
            # A diverging trial point: report it as very bad, with no slope,
            # so the line search steps back instead of failing.
            loss = _DIVERGED
        for p in params:  # L-BFGS flattens gradients with view()
            if p.grad is not None:
                p.grad = p.grad.contiguous()
        return torch.tensor(loss)

    for p in frozen:  # no gradients for what this stage leaves alone
        p.requires_grad_(False)
    try:
        for k in range(start + 1, steps + 1):
            try:
                loss = float(opt.step(closure))  # type: ignore[arg-type]
            except (IndexError, RuntimeError) as err:  # the line search broke down
                if _distributed.is_comm_error(err):  # a peer is gone
                    raise
                fitted.load_state_dict(tracker.best_state)
                tracker.fault(
                    "lbfgs",
                    f"the line search failed ({_first_line(err)})",
                    "rolled back to the best model and ended the L-BFGS stage",
                )
                break
            val_loss = _window_loss(fitted, *val_win)
            tracker.record("lbfgs", loss, val_loss)
            if _exploding(val_loss, tracker.best_val):
                fitted.load_state_dict(tracker.best_state)
                tracker.fault(
                    "lbfgs",
                    f"the validation loss diverged ({val_loss:.3g})",
                    "rolled back to the best model and ended the L-BFGS stage",
                )
                break
            if tracker.stopping():
                tracker.save("lbfgs", k)
                tracker.interrupt(str(tracker.stop_reason))
                return
            if _past(deadline):
                break
            tracker.save("lbfgs", k)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    tracker.save("adam", 0)


def _fit_lm(
    fitted: IdentifiedModel,
    record: tuple[Tensor, Tensor, Tensor],
    val_win: tuple[Tensor, Tensor, Tensor, Tensor],
    tracker: _Tracker,
    deadline: float,
    *,
    n_past: int,
    windows: int,
    lengths: Sequence[int],
    iterations: int,
    start: int = 0,
) -> None:
    """Stage 1: Levenberg–Marquardt on the physical parameters of the
    system, with a free initial state per window (see :mod:`._lm`)."""
    n = record[0].shape[0]
    lengths = [int(k) for k in lengths if n_past + int(k) + 2 <= n]
    if not lengths:
        tracker.save("adam", 0)
        return
    starts = torch.linspace(n_past, n - max(lengths) - 2, windows).long().unique()
    params = [(k, p) for k, p in fitted.system.named_parameters() if _is_physical(k)]
    lm = LevenbergMarquardt(fitted, params, record, _share(starts))
    for k, length in enumerate(lengths):
        if k < start:
            continue
        cost = lm.fit(length, iterations, stop=tracker.stopping)
        if not math.isfinite(cost):
            fitted.load_state_dict(tracker.best_state)
            tracker.fault(
                "lm",
                f"the simulation of {length}-sample windows diverged",
                "rolled back to the best model and ended the first stage",
            )
            break
        misfit = lm.refit_encoder(length)
        val_loss = _window_loss(fitted, *val_win)
        logger.info(
            "LM, %d-sample windows: train %.4g, val %.4g, encoder misfit %.3g",
            length,
            cost,
            val_loss,
            misfit,
        )
        if _exploding(val_loss, tracker.best_val):
            tracker.record("lm", cost, val_loss)
            fitted.load_state_dict(tracker.best_state)
            tracker.fault(
                "lm",
                f"the validation loss diverged ({val_loss:.3g})",
                "rolled back to the best model and ended the first stage",
            )
            break
        # Each length starts from the fit of the one before and weighs the
        # long-horizon behaviour more, which short validation windows
        # barely see: the last length's model is kept, not the best score.
        tracker.record("lm", cost, val_loss, keep=True)
        if tracker.stopping():
            tracker.save("lbfgs", k + 1)
            tracker.interrupt(str(tracker.stop_reason))
            return
        if _past(deadline):
            break
        tracker.save("lbfgs", k + 1)
    tracker.save("adam", 0)


def _fit_adam(
    fitted: IdentifiedModel,
    train: tuple[Tensor, Tensor, Tensor],
    val_win: tuple[Tensor, Tensor, Tensor, Tensor],
    tracker: _Tracker,
    deadline: float,
    *,
    gen: torch.Generator,
    n_past: int,
    window: int,
    batch_size: int,
    iterations: int,
    lr: float,
    val_every: int,
    patience: int,
    saved: _checkpoint.FitState | None = None,
) -> None:
    """Stage 2: Adam on every parameter over random windows.

    Every process draws the same batch from ``gen`` and simulates its share
    of it; the gradients are then summed over the processes by hand (one
    all-reduce, see :func:`_window_loss_grad`). ``DistributedDataParallel``
    would need the loss inside one ``forward`` of the wrapped module (here
    the encoder and the rollout are separate calls) and reduces inside
    ``backward``, which a process skips for a non-finite loss. Every process
    thus takes the same Adam step."""
    ut = train[0]
    opt = torch.optim.Adam(fitted.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations, eta_min=lr / 20)
    stale, faults, first = 0, 0, 1
    best_train = math.inf
    if saved is None or saved.stage_step == 0:
        fitted.load_state_dict(tracker.best_state)
    else:
        if saved.optimizer is not None:
            opt.load_state_dict(saved.optimizer)
        if saved.scheduler is not None:
            sched.load_state_dict(saved.scheduler)
        if saved.generator is not None:
            gen.set_state(saved.generator)
        stale = int(saved.extra.get("stale", 0))
        faults = int(saved.extra.get("faults", 0))
        best_train = float(saved.extra.get("best_train", math.inf))
        first = saved.stage_step + 1

    def save(it: int) -> None:
        tracker.save(
            "adam",
            it,
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
            generator=gen.get_state(),
            extra={"stale": stale, "faults": faults, "best_train": best_train},
        )

    for it in range(first, iterations + 1):
        starts = torch.randint(
            n_past, len(ut) - window - 1, (batch_size,), generator=gen
        )
        loss = _window_loss_grad(
            fitted, *_windows(train, n_past, window, _share(starts)), total=batch_size
        )
        if _exploding(loss, best_train):
            faults += 1
            fitted.load_state_dict(tracker.best_state)
            opt.state.clear()  # moments gathered on the way to the fault
            for group in opt.param_groups:
                group["lr"] *= 0.5
            problem = (
                "non-finite training loss"
                if not math.isfinite(loss)
                else f"exploding training loss {loss:.3g}"
            )
            if faults > _MAX_FAULTS:
                raise ConvergenceError(
                    f"the fit stopped at Adam iteration {it}: {problem} after "
                    f"{_MAX_FAULTS} roll-backs, the learning rate already lowered "
                    f"to {opt.param_groups[0]['lr']:.3g}; lower `lr`, shorten "
                    "`window` or raise `substeps`"
                )
            tracker.fault(
                "adam",
                f"{problem} at iteration {it}",
                "rolled back to the best model, halved the learning rate to "
                f"{opt.param_groups[0]['lr']:.3g} and reset the Adam moments",
            )
            continue
        best_train = min(best_train, loss)
        opt.step()
        sched.step()
        timed_out = _past(deadline)
        validate = it % val_every == 0 or it == iterations or timed_out
        val_loss = _window_loss(fitted, *val_win) if validate else None
        if tracker.record("adam", loss, val_loss):
            stale = 0
        elif validate:
            stale += 1
        if tracker.stopping():
            save(it)
            tracker.interrupt(str(tracker.stop_reason))
            return
        if validate:
            save(it)
        if stale >= patience or timed_out:
            break


def _output_error(z_sim: Tensor, z: Tensor) -> Tensor:
    """Mean squared simulation error of windows, (batch, T + 1, n_outputs)."""
    return ((z_sim - z) ** 2).mean()


def _window_loss_grad(
    fitted: IdentifiedModel,
    u_past: Tensor,
    z_past: Tensor,
    u: Tensor,
    z: Tensor,
    *,
    total: int | None = None,
) -> float:
    """Mean squared error of the windows; its gradient is left in ``.grad``.

    Under ``torchrun`` the windows are this process's share of ``total``
    windows: the loss and the gradients are summed over the processes, so
    every process returns the mean over all ``total`` windows and holds its
    gradient. A non-finite loss (anywhere) returns NaN with no gradient.
    """
    fitted.zero_grad(set_to_none=True)
    x0 = fitted.encoder(u_past, z_past)
    z_sim, _ = fitted.rollout(x0, u, substep_inputs=True)
    if _distributed.world_size() == 1:
        loss = _output_error(z_sim, z)
        if not torch.isfinite(loss):
            return math.nan
        loss.backward()
        return float(loss.detach())
    if total is None:
        raise TypeError("`total` is needed when the windows are shared out")
    loss = ((z_sim - z) ** 2).sum() / (total * z.shape[1] * z.shape[2])
    summed = float(_distributed.all_reduce_sum(loss.detach()))
    if not math.isfinite(summed):
        return math.nan
    if loss.requires_grad:
        loss.backward()
    _distributed.all_reduce_grads(fitted.parameters())
    return summed


def _share(starts: Tensor) -> Tensor:
    """This process's windows of ``starts``: every ``world_size``-th one."""
    return starts[_distributed.rank() :: _distributed.world_size()]


def _past(deadline: float) -> bool:
    """True once ``deadline`` has passed, on every process alike."""
    if math.isinf(deadline):  # the same on every process: nothing to agree
        return False
    return _distributed.any_true(time.perf_counter() > deadline)


@torch.no_grad()
def _window_loss(
    fitted: IdentifiedModel, u_past: Tensor, z_past: Tensor, u: Tensor, z: Tensor
) -> float:
    x0 = fitted.encoder(u_past, z_past)
    z_sim, _ = fitted.rollout(x0, u, substep_inputs=True)
    return float(_output_error(z_sim, z))


@torch.no_grad()
def _parameters(fitted: IdentifiedModel) -> dict[str, Any]:
    """Named values of the fitted model, in its units."""
    system = fitted.system
    units = (
        "physical, time in seconds"
        if fitted.time_step != 1.0
        else "normalised: u and z scaled to unit variance, time in samples"
    )
    if not isinstance(system, PortHamiltonian):  # a black box: no R, G or H
        layers = [m for m in system.modules() if isinstance(m, torch.nn.Linear)]
        return {
            "units": units,
            "model": type(system).__name__,
            "n_states": int(system.n_states),
            "hidden": [int(m.out_features) for m in layers[:-1]],
            "n_parameters": int(sum(p.numel() for p in system.parameters())),
        }
    x = torch.zeros(1, system.n_states, dtype=torch.float64)
    out: dict[str, Any] = {
        "R": system.R_matrix(x)[0].tolist(),
        "G": system.G_matrix(x)[0].tolist(),
        "units": units,
    }
    named = greybox.parameter_values(system)
    if any(isinstance(m, greybox.NamedParameters) for m in system.modules()):
        out["named"] = named
    if isinstance(system.R, PolynomialDissipation):
        out["damping_coefficients"] = system.R.coefficients()[-1].tolist()
    if isinstance(system.R, _tanks.TankDissipation):
        out["tank_flows"] = system.R.coefficients()
    H = system.H
    if isinstance(H, MechanicalHamiltonian):
        out["mass"] = float(H.mass(torch.zeros(1, 1, dtype=torch.float64))[0, 0, 0])
        for V in H.potentials:
            if isinstance(V, PolynomialPotential):
                out["potential_coefficients"] = V.coefficients()[0].tolist()
    return out


def _settings(source: str, **options: Any) -> dict[str, Any]:
    import platform

    import scipy

    from . import __version__

    return {
        "source": source,
        **options,
        "versions": {
            "phcontrol": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "threads": torch.get_num_threads(),
    }
