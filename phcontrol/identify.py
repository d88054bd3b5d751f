r"""Fit port-Hamiltonian models to input/output logs by output error.

The fitted object, :class:`IdentifiedModel`, bundles

* a :class:`~phcontrol.models.PortHamiltonian` in normalised units (inputs
  and outputs scaled to zero mean and unit variance, time measured in
  samples), passive by construction;
* a measurement map ``z = x[:, :n_outputs]`` (for a mechanical model the
  measured output is the position ``q``);
* an :class:`Encoder` that estimates the state at a sample from the
  ``n_past`` samples of ``u`` and ``z`` before it (the SUBNET idea).

Fitting minimises the simulation error over truncated windows stepped with
a discrete gradient, ``substeps`` steps per sample, the input interpolated
linearly between samples (first-order hold). Linear interpolation makes the
model use ``u[k+1]`` on the interval ``[t_k, t_{k+1}]``: the simulated output
at ``t_{k+1}`` depends on the input up to ``t_{k+1}``, as for a sampled
continuous plant whose input is band limited.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from . import _mechanical
from ._config import Configurable
from .data import Log
from .errors import ConvergenceError, DataError, NotSupportedError
from .hamiltonians import (
    MechanicalHamiltonian,
    MLPPotential,
    PolynomialPotential,
    QuadraticHamiltonian,
)
from .integrators import simulate
from .models import PortHamiltonian
from .structure import CanonicalJ, CholeskyDissipation, InputMatrix, SkewSymmetric

__all__ = ["Encoder", "IdentifiedModel", "FitReport", "FitResult", "identify"]

logger = logging.getLogger(__name__)

ModelKind = Literal["mechanical", "linear"]


class Encoder(nn.Module, Configurable):
    """Estimate the state at sample ``k`` from ``u``, ``z`` at ``k - n_past .. k - 1``.

    A linear map plus a small tanh correction whose output layer starts at
    zero, so the encoder starts as the least-squares linear estimator.

    Parameters
    ----------
    n_past : int
        Number of past samples used.
    n_inputs, n_outputs, n_states : int
        Sizes of ``u``, ``z`` and ``x``.
    hidden : int, default 32
        Width of the correction network.

    Examples
    --------
    >>> import torch
    >>> enc = Encoder(10, 1, 1, 2)
    >>> enc(torch.zeros(4, 10, 1), torch.zeros(4, 10, 1)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        n_past: int,
        n_inputs: int,
        n_outputs: int,
        n_states: int,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        self.n_past = n_past
        width = n_past * (n_inputs + n_outputs)
        self.linear = nn.Linear(width, n_states)
        self.correction = nn.Sequential(
            nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, n_states)
        )
        with torch.no_grad():
            self.correction[-1].weight.zero_()
            self.correction[-1].bias.zero_()

    def forward(self, u_past: Tensor, z_past: Tensor) -> Tensor:
        """Return states, shape (batch, n_states), from (batch, n_past, .) windows."""
        feats = torch.cat([u_past, z_past], dim=-1).flatten(1)
        return self.linear(feats) + self.correction(feats)


class IdentifiedModel(nn.Module, Configurable):
    """A fitted pH model with its scaling, measurement map and state encoder.

    Parameters
    ----------
    system : PortHamiltonian
        The model in normalised units (time in samples).
    encoder : Encoder
        State estimator from past samples.
    dt : float
        Sample interval of the log, seconds.
    u_mean, u_std, z_mean, z_std : list of float
        Normalisation of inputs and outputs.
    substeps : int, default 3
        Discrete-gradient steps per sample.
    input_hold : {"linear", "zoh"}, default "linear"
        How the input is held between samples.

    Examples
    --------
    See :func:`identify`.
    """

    def __init__(
        self,
        system: PortHamiltonian,
        encoder: Encoder,
        dt: float,
        u_mean: Sequence[float],
        u_std: Sequence[float],
        z_mean: Sequence[float],
        z_std: Sequence[float],
        substeps: int = 3,
        input_hold: str = "linear",
    ) -> None:
        super().__init__()
        self.system = system
        self.encoder = encoder
        self.dt = float(dt)
        self.substeps = int(substeps)
        self.input_hold = input_hold
        self.n_outputs = len(z_mean)
        for name, values in (
            ("u_mean", u_mean),
            ("u_std", u_std),
            ("z_mean", z_mean),
            ("z_std", z_std),
        ):
            self.register_buffer(
                name, torch.as_tensor(list(values), dtype=torch.float64)
            )

    @property
    def n_past(self) -> int:
        """Samples the encoder needs before the first simulated one."""
        return self.encoder.n_past

    def normalise(self, u: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Scale physical ``u`` (..., n_inputs) and ``z`` (..., n_outputs)."""
        dtype = u.dtype
        un = (u - self.u_mean.to(dtype)) / self.u_std.to(dtype)
        zn = (z - self.z_mean.to(dtype)) / self.z_std.to(dtype)
        return un, zn

    def rollout(
        self, x0: Tensor, u: Tensor, *, tol: float = 1e-12, max_iter: int = 50
    ) -> tuple[Tensor, Tensor]:
        """Simulate normalised windows from ``x0``.

        Parameters
        ----------
        x0 : Tensor, shape (batch, n_states)
            Initial states at the first sample.
        u : Tensor, shape (batch, T + 1, n_inputs)
            Normalised inputs at the samples ``0 .. T``.

        Returns
        -------
        z : Tensor, shape (batch, T + 1, n_outputs)
            Normalised simulated outputs.
        converged : Tensor, shape (batch,), bool
        """
        return _rollout(
            self.system, x0, u, self.substeps, self.input_hold, tol, max_iter
        )

    @torch.no_grad()
    def predict(
        self, u: np.ndarray, z: np.ndarray, *, n_init: int, chunks: int | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Simulate a whole record from its first ``n_init`` samples.

        Parameters
        ----------
        u : ndarray, shape (N, n_inputs)
            Physical inputs.
        z : ndarray, shape (N, n_outputs)
            Physical outputs; only ``z[:n_init]`` is used (to set the state).
        n_init : int
            Samples used to set the initial state; at least ``n_past``.
        chunks : int, optional
            Split the record into this many pieces simulated in parallel and
            stitched until every seam agrees (see Notes). Default: one piece
            per ~500 samples.

        Returns
        -------
        z_sim : ndarray, shape (N - n_init, n_outputs)
            Simulated physical outputs at samples ``n_init ..``.
        info : dict
            ``converged`` (bool), ``sweeps`` and ``seam_error`` (the largest
            state mismatch at a seam, scaled by ``1 + |x|``).

        Notes
        -----
        A free-run simulation is sequential. To use a batch, the record is cut
        into pieces that start from guessed states and are simulated
        together; each sweep restarts every piece from the previous piece's
        end. Piece ``k`` is exact after at most ``k`` sweeps, and far sooner
        for a dissipative model, whose memory of its initial state fades. The
        sweeps stop when every seam matches to 1e-10, so the result is the
        sequential simulation up to that tolerance.
        """
        if n_init < self.n_past:
            raise ValueError(
                f"`n_init`={n_init} is shorter than the encoder's window "
                f"({self.n_past} samples)"
            )
        ut = torch.as_tensor(np.asarray(u, dtype=np.float64))
        zt = torch.as_tensor(np.asarray(z, dtype=np.float64))
        un, zn = self.normalise(ut, zt)
        x0 = self.encoder(
            un[None, n_init - self.n_past : n_init],
            zn[None, n_init - self.n_past : n_init],
        )
        seq = un[n_init:]
        zs, info = _rollout_long(self, x0, seq, chunks)
        z_phys = zs * self.z_std + self.z_mean
        return z_phys.numpy(), info


def _input_at(u: Tensor, k: int, j: int, substeps: int, hold: str) -> Tensor:
    if hold == "linear":
        w = (j + 0.5) / substeps
        return (1.0 - w) * u[:, k] + w * u[:, k + 1]
    return u[:, k]


def _rollout(
    system: PortHamiltonian,
    x0: Tensor,
    u: Tensor,
    substeps: int,
    hold: str,
    tol: float,
    max_iter: int,
) -> tuple[Tensor, Tensor]:
    n_out = 1 if system.n_states == 2 else system.n_states // 2
    steps = u.shape[1] - 1
    if _mechanical.supports(system):
        stepper = _mechanical.MechanicalStepper(system, 1.0 / substeps, tol, max_iter)
        x = x0
        V = None
        zs = [x[:, :n_out]]
        ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for k in range(steps):
            for j in range(substeps):
                x, V, conv = stepper.step(x, _input_at(u, k, j, substeps, hold), V)
                ok = ok & conv
            zs.append(x[:, :n_out])
        return torch.stack(zs, dim=1), ok
    uu = u if hold == "linear" else u[:, :-1]
    traj = simulate(
        system,
        x0,
        uu,
        dt=1.0,
        substeps=substeps,
        input_hold=hold,  # type: ignore[arg-type]
        tol=tol,
        max_iter=max_iter,
    )
    return traj.x[:, :, :n_out], traj.converged


def _rollout_long(
    model: IdentifiedModel, x0: Tensor, u: Tensor, chunks: int | None
) -> tuple[Tensor, dict[str, Any]]:
    """Simulate ``u`` (N, m) from ``x0`` (1, n); return z (N, n_out) and info."""
    N = u.shape[0]
    steps = N - 1
    if chunks is None:
        chunks = max(1, steps // 500)
    chunks = max(1, min(chunks, steps))
    L = math.ceil(steps / chunks)
    pad = chunks * L - steps
    if pad:
        u = torch.cat([u, u[-1:].expand(pad, -1)], dim=0)
    idx = torch.arange(chunks)[:, None] * L + torch.arange(L + 1)[None, :]
    u_chunks = u[idx]  # (chunks, L + 1, m)
    n = x0.shape[1]
    starts = x0.new_zeros(chunks, n)
    starts[0] = x0[0]
    tol = 1e-10
    sweeps = 0
    seam = math.inf
    ok = torch.zeros(chunks, dtype=torch.bool)
    while True:
        sweeps += 1
        xs, ok = _rollout_states(model, starts, u_chunks)
        ends = xs[:, -1]
        new_starts = torch.cat([x0, ends[:-1]], dim=0)
        seam = float(((new_starts - starts).abs() / (1.0 + new_starts.abs())).max())
        starts = new_starts
        if seam <= tol or sweeps >= chunks:
            break
    n_out = model.n_outputs
    z = xs[:, :-1, :n_out].reshape(chunks * L, n_out)
    z = torch.cat([z, xs[-1:, -1, :n_out]], dim=0)[:N]
    info = {"converged": bool(ok.all()), "sweeps": sweeps, "seam_error": seam}
    return z, info


def _rollout_states(
    model: IdentifiedModel, x0: Tensor, u: Tensor
) -> tuple[Tensor, Tensor]:
    """Like ``_rollout`` but return full states (batch, T + 1, n)."""
    system = model.system
    if _mechanical.supports(system):
        stepper = _mechanical.MechanicalStepper(system, 1.0 / model.substeps, 1e-12, 50)
        x, V = x0, None
        xs = [x]
        ok = torch.ones(x.shape[0], dtype=torch.bool)
        for k in range(u.shape[1] - 1):
            for j in range(model.substeps):
                x, V, conv = stepper.step(
                    x, _input_at(u, k, j, model.substeps, model.input_hold), V
                )
                ok &= conv
            xs.append(x)
        return torch.stack(xs, dim=1), ok
    uu = u if model.input_hold == "linear" else u[:, :-1]
    traj = simulate(
        system,
        x0,
        uu,
        dt=1.0,
        substeps=model.substeps,
        input_hold=model.input_hold,  # type: ignore[arg-type]
    )
    return traj.x, traj.converged


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
        relative to ``1 + |H|``.
    parameters : dict
        Fitted ``R`` and ``G`` (normalised units) and other named values.
    settings : dict
        Every option of the fit, the seed and the library versions.
    wall_time : float
        Seconds the whole fit took.
    """

    metrics: dict[str, dict[str, Any]]
    unit: str
    history: list[dict[str, float]]
    audit: dict[str, float]
    parameters: dict[str, Any]
    settings: dict[str, Any]
    wall_time: float

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
    """

    model: IdentifiedModel
    report: FitReport
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)


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
    scale = 1.0
    if m <= 0:  # a wrong-signed fit: fall back to a unit oscillator
        m, r, d1, d2, d3, d4, scale = 1.0, 0.1, 0.0, 0.4, 0.0, 0.0, 0.0
    m, r = float(m), float(max(r, 1e-3))
    coeffs = [d1, d2 / 2.0, d3 / 3.0, max(d4 / 4.0, 1e-4)]
    potential = [
        PolynomialPotential(1, degree=4, coefficients=torch.tensor([coeffs])),
        MLPPotential(1, hidden=(mlp_hidden,), out_scale=1e-3),
    ]
    H = MechanicalHamiltonian(1, potential=potential, mass=torch.tensor([[m]]))
    R = CholeskyDissipation(2, mask=[False, True], init_scale=math.sqrt(r))
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
    return system, states, scale


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
    return system, states, 1.0


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
    u: Tensor, z: Tensor, n_past: int, length: int, starts: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cut (batch) windows: past u/z for the encoder, future u/z to fit."""
    past = starts[:, None] + torch.arange(-n_past, 0)[None, :]
    fut = starts[:, None] + torch.arange(length + 1)[None, :]
    return u[past], z[past], u[fut], z[fut]


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


def identify(
    data: Log | Any,
    *,
    model: ModelKind = "mechanical",
    substeps: int = 3,
    input_hold: Literal["linear", "zoh"] = "linear",
    window: int = 80,
    batch_size: int = 128,
    iterations: int = 600,
    lr: float = 5e-3,
    n_past: int = 10,
    val_fraction: float = 0.2,
    val_every: int = 50,
    patience: int = 6,
    max_time: float | None = None,
    seed: int = 0,
    mlp_hidden: int = 16,
    n_init: int | None = None,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    r"""Fit a passive pH model to a log by output error over windows.

    Parameters
    ----------
    data : Log or Dataset or str
        The log, a bundled dataset, or its name (``"silverbox"``). A
        dataset brings its own train/validation/test split; a plain log
        keeps its last ``val_fraction`` for validation.
    model : {"mechanical", "linear"}, default "mechanical"
        ``mechanical``: one degree of freedom, :math:`H = p^2/2m + V(q)` with
        ``V`` a quartic plus a tanh correction, damping on ``p``, input on
        ``p``, measured output ``z = q``. ``linear``: quadratic ``H`` with
        two states per output, ``J = S - S^T``, ``R = LL^T``.
    substeps : int, default 3
        Discrete-gradient steps per sample.
    window : int, default 80
        Samples per training window.
    batch_size : int, default 128
        Windows per iteration.
    iterations : int, default 600
        Adam iterations (the learning rate follows a cosine schedule).
    lr : float, default 5e-3
        Initial learning rate.
    seed : int, default 0
        Seeds torch and numpy; the same seed gives the same fit on CPU.

    Returns
    -------
    FitResult
        ``model``, ``report`` and the test ``predictions``.

    Other Parameters
    ----------------
    input_hold : {"linear", "zoh"}, default "linear"
        How inputs are held between samples (see the module notes).
    n_past : int, default 10
        Encoder window.
    val_fraction : float, default 0.2
        Share of a plain log kept for validation.
    val_every, patience : int
        Validate every ``val_every`` iterations; stop after ``patience``
        validations without improvement. The best model is kept.
    max_time : float, optional
        Stop training after this many seconds.
    mlp_hidden : int, default 16
        Width of the potential's tanh correction.
    n_init : int, optional
        Samples that set the initial state of each evaluated split
        (default: the dataset's protocol, else ``n_past``).
    callback : callable, optional
        Called with a progress dict after every iteration.

    Raises
    ------
    DataError
        If the log is too short for the window or has no output.
    ConvergenceError
        If the fit produced non-finite losses it could not recover from.

    Examples
    --------
    >>> import phcontrol as phc
    >>> fit = phc.identify("silverbox", iterations=2, window=10)  # doctest: +SKIP
    >>> sorted(fit.report.metrics)  # doctest: +SKIP
    ['test_arrow_full', 'test_arrow_no_extrapolation', 'test_multisine', 'val']
    """
    t_start = time.perf_counter()
    if model not in ("mechanical", "linear"):
        raise ValueError(f"`model` must be 'mechanical' or 'linear'; found {model!r}")
    train, val, tests, dataset = _split_log(data, val_fraction)
    if train.n_outputs < 1:
        raise DataError(f"{train.source}: the log has no output column to fit")
    if model == "mechanical" and train.n_outputs != 1:
        raise NotSupportedError(
            f"model='mechanical' fits one measured position; the log has "
            f"{train.n_outputs} outputs. Use model='linear'."
        )
    need = n_past + window + 1
    for name, part in (("training", train), ("validation", val)):
        if len(part) < need:
            raise DataError(
                f"{train.source}: the {name} part has {len(part)} samples but a "
                f"window needs {need} (n_past + window + 1); shorten `window`"
            )
    torch.manual_seed(seed)
    np.random.seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64

    u_mean, u_std = train.u.mean(0), train.u.std(0) + 1e-12
    z_mean, z_std = train.z.mean(0), train.z.std(0) + 1e-12
    un = (train.u - u_mean) / u_std
    zn = (train.z - z_mean) / z_std
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if model == "mechanical":
            system, states, _ = _build_mechanical(train.n_inputs, un, zn, mlp_hidden)
        else:
            system, states, _ = _build_linear(train.n_inputs, train.n_outputs, un, zn)
        encoder = Encoder(n_past, train.n_inputs, train.n_outputs, system.n_states)
    _encoder_lstsq(encoder, un, zn, states)
    fitted = IdentifiedModel(
        system.to(dtype),
        encoder.to(dtype),
        dt=train.dt,
        u_mean=u_mean.tolist(),
        u_std=u_std.tolist(),
        z_mean=z_mean.tolist(),
        z_std=z_std.tolist(),
        substeps=substeps,
        input_hold=input_hold,
    )

    ut, zt = torch.as_tensor(un), torch.as_tensor(zn)
    uv, zv = fitted.normalise(torch.as_tensor(val.u), torch.as_tensor(val.z))
    val_len = min(len(val) - n_past - 1, 400)
    val_starts = torch.arange(n_past, len(val) - val_len, val_len)
    val_win = _windows(uv, zv, n_past, val_len, val_starts)

    opt = torch.optim.Adam(fitted.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations, eta_min=lr / 20)
    best_state = {k: v.clone() for k, v in fitted.state_dict().items()}
    best_val = _window_loss(fitted, *val_win)
    history: list[dict[str, float]] = [
        {"iteration": 0, "train_loss": math.nan, "val_loss": best_val, "seconds": 0.0}
    ]
    stale = 0
    last_train = math.nan
    for it in range(1, iterations + 1):
        starts = torch.randint(
            n_past, len(train) - window - 1, (batch_size,), generator=gen
        )
        loss = _window_loss_grad(fitted, *_windows(ut, zt, n_past, window, starts))
        if not math.isfinite(loss):
            fitted.load_state_dict(best_state)
            for group in opt.param_groups:
                group["lr"] *= 0.5
            logger.warning(
                "non-finite loss at iteration %d: rolled back, lr halved", it
            )
            if opt.param_groups[0]["lr"] < lr * 1e-3:
                raise ConvergenceError(
                    "the fit kept producing non-finite losses; lower `lr` or "
                    "shorten `window`"
                )
            continue
        opt.step()
        sched.step()
        last_train = loss
        record = {
            "iteration": it,
            "train_loss": loss,
            "seconds": time.perf_counter() - t_start,
        }
        timed_out = max_time is not None and time.perf_counter() - t_start > max_time
        if it % val_every == 0 or it == iterations or timed_out:
            v = _window_loss(fitted, *val_win)
            record["val_loss"] = v
            history.append(record)
            if v < best_val:
                best_val, stale = v, 0
                best_state = {k: t.clone() for k, t in fitted.state_dict().items()}
            else:
                stale += 1
        if callback is not None:
            callback(record)
        if stale >= patience or timed_out:
            break
    fitted.load_state_dict(best_state)
    logger.info("training done: train %.4g, best val %.4g", last_train, best_val)

    evaluate = {"val": val, **tests}
    scale = dataset.unit_scale if dataset is not None else 1.0
    unit = dataset.unit if dataset is not None else "log units"
    k0 = dataset.init_window if dataset is not None else n_past
    k0 = max(k0 if n_init is None else n_init, n_past)
    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, part in evaluate.items():
        z_sim, info = fitted.predict(part.u, part.z, n_init=k0)
        z_meas = part.z[k0:]
        rmse = float(np.sqrt(np.mean((z_sim - z_meas) ** 2)) * scale)
        metrics[name] = {"rmse": rmse, "samples": int(len(z_meas)), **info}
        predictions[name] = (z_meas, z_sim)
    longest = max(evaluate, key=lambda k: len(evaluate[k]))
    audit = energy_audit(fitted, evaluate[longest], n_init=k0)
    audit["split"] = longest  # type: ignore[assignment]
    report = FitReport(
        metrics=metrics,
        unit=unit,
        history=history,
        audit=audit,
        parameters=_parameters(fitted),
        settings=_settings(
            dataset.name if dataset is not None else train.source,
            model=model,
            substeps=substeps,
            input_hold=input_hold,
            window=window,
            batch_size=batch_size,
            iterations=iterations,
            lr=lr,
            n_past=n_past,
            seed=seed,
            mlp_hidden=mlp_hidden,
            n_init=k0,
            iterations_run=history[-1]["iteration"],
        ),
        wall_time=time.perf_counter() - t_start,
    )
    return FitResult(model=fitted, report=report, predictions=predictions)


def _window_loss_grad(
    fitted: IdentifiedModel, u_past: Tensor, z_past: Tensor, u: Tensor, z: Tensor
) -> float:
    fitted.zero_grad(set_to_none=True)
    x0 = fitted.encoder(u_past, z_past)
    z_sim, _ = fitted.rollout(x0, u)
    loss = ((z_sim - z) ** 2).mean()
    if not torch.isfinite(loss):
        return math.nan
    loss.backward()
    return float(loss.detach())


@torch.no_grad()
def _window_loss(
    fitted: IdentifiedModel, u_past: Tensor, z_past: Tensor, u: Tensor, z: Tensor
) -> float:
    x0 = fitted.encoder(u_past, z_past)
    z_sim, _ = fitted.rollout(x0, u)
    return float(((z_sim - z) ** 2).mean())


@torch.no_grad()
def energy_audit(fitted: IdentifiedModel, log: Log, *, n_init: int) -> dict[str, float]:
    """Audit the discrete energy balance along a simulation of ``log``.

    Parameters
    ----------
    fitted : IdentifiedModel
        The model to simulate.
    log : Log
        Inputs (and the first ``n_init`` outputs, which set the state).
    n_init : int
        Initialisation window.

    Returns
    -------
    dict
        ``max_residual`` (largest per-step ``|H' - H + dissipated - supplied|``),
        ``max_relative_residual`` (the same over ``1 + |H|``), ``steps``,
        ``supplied`` and ``dissipated`` (totals, normalised units).
    """
    u = torch.as_tensor(log.u)
    z = torch.as_tensor(log.z)
    un, zn = fitted.normalise(u, z)
    x0 = fitted.encoder(
        un[None, n_init - fitted.n_past : n_init],
        zn[None, n_init - fitted.n_past : n_init],
    )
    seq = un[None, n_init:]
    S = fitted.substeps
    traj = (
        simulate(
            fitted.system,
            x0,
            seq if fitted.input_hold == "linear" else seq[:, :-1],
            dt=1.0,
            substeps=S,
            input_hold=fitted.input_hold,  # type: ignore[arg-type]
            steps=min(seq.shape[1] - 1, 2000),
        )
        if not _mechanical.supports(fitted.system)
        else None
    )
    if traj is not None:
        assert traj.residual is not None and traj.energy is not None
        res = traj.residual.abs()
        rel = res / (1.0 + traj.energy[:, 1:].abs())
        return {
            "max_residual": float(res.max()),
            "max_relative_residual": float(rel.max()),
            "steps": int(res.shape[1] * S),
            "supplied": float(traj.supplied.sum()),  # type: ignore[union-attr]
            "dissipated": float(traj.dissipated.sum()),  # type: ignore[union-attr]
        }
    stepper = _mechanical.MechanicalStepper(fitted.system, 1.0 / S, 1e-12, 50)
    H = fitted.system.H
    x = x0
    worst = worst_rel = 0.0
    supplied = dissipated = 0.0
    steps = 0
    for k in range(seq.shape[1] - 1):
        for j in range(S):
            um = _input_at(seq, k, j, S, fitted.input_hold)
            xn, _, _ = stepper.step(x, um)
            s, d = stepper.balance_terms(x, xn, um)
            Hn = H(xn)
            r = float((Hn - H(x) + d - s).abs().max())
            worst = max(worst, r)
            worst_rel = max(worst_rel, r / (1.0 + float(Hn.abs().max())))
            supplied += float(s.sum())
            dissipated += float(d.sum())
            x = xn
            steps += 1
    return {
        "max_residual": worst,
        "max_relative_residual": worst_rel,
        "steps": steps,
        "supplied": supplied,
        "dissipated": dissipated,
    }


def _parameters(fitted: IdentifiedModel) -> dict[str, Any]:
    system = fitted.system
    x = torch.zeros(1, system.n_states, dtype=torch.float64)
    out: dict[str, Any] = {
        "R": system.R_matrix(x)[0].detach().tolist(),
        "G": system.G_matrix(x)[0].detach().tolist(),
        "units": "normalised: u and z scaled to unit variance, time in samples",
    }
    H = system.H
    if isinstance(H, MechanicalHamiltonian):
        out["mass"] = float(
            H.mass(torch.zeros(1, 1, dtype=torch.float64))[0, 0, 0].detach()
        )
        for V in H.potentials:
            if isinstance(V, PolynomialPotential):
                out["potential_coefficients"] = V.coefficients()[0].detach().tolist()
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
