r"""A fitted port-Hamiltonian model with its scaling, measurement map and encoder.

:class:`IdentifiedModel` bundles

* a :class:`~phcontrol.models.PortHamiltonian` in normalised units (inputs
  and outputs scaled to zero mean and unit variance, time measured in
  samples), passive by construction, or the black-box baseline
  :class:`~phcontrol.models.NeuralODE`, which has no energy;
* a measurement map: ``z = x[:, :n_outputs]`` by default (for a mechanical
  model the measured output is the position ``q``), or an ``output_map``
  module (the tank model's gain, offset and sensor saturation);
* an :class:`Encoder` that estimates the state at a sample from the
  ``n_past`` samples of ``u`` and ``z`` before it.

Every simulation of a pH model steps a discrete gradient, ``substeps`` steps
per sample, so the energy balance of the fitted model holds exactly in
discrete time; :func:`energy_audit` measures it along a whole record. A
neural ODE is stepped with classical RK4 instead and has no balance to audit.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import _mechanical, _tanks
from ._config import Configurable
from .data import Log
from .errors import NotSupportedError
from .integrators import simulate
from .models import AbstractModel, PortHamiltonian

__all__ = ["Encoder", "IdentifiedModel", "energy_audit"]

STITCH_TOL = 1e-10
"""Largest scaled state mismatch allowed at a seam of a stitched simulation."""

# Samples added at each end of a window before band-limited interpolation.
_BAND_PAD = 32


class Encoder(nn.Module, Configurable):
    """Estimate the state at sample ``k`` from ``u`` and ``z`` before it.

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
    system : PortHamiltonian or NeuralODE
        The model in normalised units (time in samples).
    encoder : Encoder
        State estimator from past samples.
    dt : float
        Sample interval of the log, seconds.
    u_mean, u_std, z_mean, z_std : list of float
        Normalisation of inputs and outputs.
    substeps : int, default 3
        Discrete-gradient steps per sample.
    input_hold : {"bandlimited", "linear", "cubic", "zoh"}, default "linear"
        How the input is held between samples (see :func:`identify`).
    output_map : nn.Module, optional
        Maps states (..., n_states) to normalised outputs (..., n_outputs);
        default: the first ``n_outputs`` states.
    time_step : float, default 1.0
        Model time per sample: 1 when the system's time is counted in
        samples (the built-in models), ``dt`` when it is in seconds (a
        grey-box model in physical units).

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.data import Log
    >>> t = 0.1 * np.arange(300)
    >>> u = np.sin(0.7 * t)[:, None]
    >>> log = Log(t=t, u=u, z=np.sin(0.7 * t - 0.3)[:, None], source="demo")
    >>> fit = phc.identify(log, model="linear", window=10, n_past=3, lbfgs_steps=0,
    ...                    iterations=1)
    >>> model = fit.model  # an IdentifiedModel
    >>> model.n_past, type(model.system).__name__
    (3, 'PortHamiltonian')
    """

    def __init__(
        self,
        system: AbstractModel,
        encoder: Encoder,
        dt: float,
        u_mean: Sequence[float],
        u_std: Sequence[float],
        z_mean: Sequence[float],
        z_std: Sequence[float],
        substeps: int = 3,
        input_hold: str = "linear",
        output_map: nn.Module | None = None,
        time_step: float = 1.0,
    ) -> None:
        super().__init__()
        self.time_step = float(time_step)
        self.system = system
        self.encoder = encoder
        self.output_map = output_map
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

    def measure(self, x: Tensor) -> Tensor:
        """Map states (..., n_states) to normalised outputs (..., n_outputs)."""
        if self.output_map is None:
            return x[..., : self.n_outputs]
        return self.output_map(x)

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
        self,
        x0: Tensor,
        u: Tensor,
        *,
        substep_inputs: bool = False,
        tol: float = 1e-12,
        max_iter: int = 50,
    ) -> tuple[Tensor, Tensor]:
        """Simulate normalised windows from ``x0``.

        Parameters
        ----------
        x0 : Tensor, shape (batch, n_states)
            Initial states at the first sample.
        u : Tensor, shape (batch, T + 1, n_inputs)
            Normalised inputs at the samples ``0 .. T``; with
            ``substep_inputs=True``, shape (batch, T * substeps, n_inputs),
            the inputs of every sub-step (already held as ``input_hold``
            says, for example computed from a longer record).
        substep_inputs : bool, default False
            Whether ``u`` holds sub-step inputs rather than samples.
        tol, max_iter
            Tolerance and iteration cap of each implicit step (a neural ODE's
            RK4 steps are explicit and ignore them).

        Returns
        -------
        z : Tensor, shape (batch, T + 1, n_outputs)
            Normalised simulated outputs.
        converged : Tensor, shape (batch,), bool
        """
        hold = "substeps" if substep_inputs else self.input_hold
        xs, ok = _rollout_states(
            self.system, x0, u, self.substeps, hold, tol, max_iter, self.time_step
        )
        return self.measure(xs), ok

    def _initial_state(
        self, u: np.ndarray, z: np.ndarray, n_init: int
    ) -> tuple[Tensor, Tensor]:
        """Return the encoded state at ``n_init`` (1, n) and the normalised
        inputs from there on (N - n_init, n_inputs)."""
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
        return x0, un[n_init:]

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
        z_phys, info, _ = self._predict_pieces(u, z, n_init, chunks)
        return z_phys, info

    @torch.no_grad()
    def _predict_pieces(
        self, u: np.ndarray, z: np.ndarray, n_init: int, chunks: int | None
    ) -> tuple[np.ndarray, dict[str, Any], tuple[Tensor, Tensor]]:
        """:meth:`predict`, plus the pieces' start states and sub-step inputs.

        The pieces let ``_energy_audit_pieces`` audit this simulation
        without simulating the record again.
        """
        x0, seq = self._initial_state(u, z, n_init)
        with one_thread():
            starts, u_chunks, xs, info = _stitch(self, x0, seq, chunks)
        N = seq.shape[0]
        zs = self.measure(torch.cat([xs[:, :-1].flatten(0, 1), xs[-1:, -1]])[:N])
        z_phys = zs * self.z_std + self.z_mean
        return z_phys.numpy(), info, (starts, u_chunks)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread, then restore the count.

    Simulations step batches of a few hundred one- or two-state rows, one
    step after another; at that size every operation is dominated by its
    fixed cost, which a second thread only raises (measured 5x slower with
    two threads on two cores).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _substep_inputs(u: Tensor, substeps: int, hold: str) -> Tensor:
    r"""Return the input at the midpoint of every sub-step.

    Parameters
    ----------
    u : Tensor, shape (batch, T + 1, n_inputs)
        Inputs at the samples ``0 .. T``.
    substeps : int
        Sub-steps per sample interval.
    hold : {"bandlimited", "zoh", "linear", "cubic"}
        ``bandlimited`` reconstructs the band-limited signal through the
        samples (Kaiser-windowed sinc interpolation over about ten samples
        on each side, :func:`scipy.signal.resample_poly`; the window's ends
        are extended by odd reflection); ``zoh`` holds ``u[k]`` over
        interval ``k``; ``linear`` interpolates between ``u[k]`` and
        ``u[k + 1]``; ``cubic`` fits the Catmull-Rom cubic through
        ``u[k - 1] .. u[k + 2]`` (ends repeated).

    Returns
    -------
    Tensor, shape (batch, T * substeps, n_inputs)
    """
    if hold == "bandlimited":
        return _band_limited(u, substeps)
    w = (torch.arange(substeps, dtype=u.dtype, device=u.device) + 0.5) / substeps
    w = w[None, None, :, None]
    u0, u1 = u[:, :-1, None], u[:, 1:, None]
    if hold == "zoh":
        mid = u0.expand(-1, -1, substeps, -1)
    elif hold == "linear":
        mid = (1.0 - w) * u0 + w * u1
    else:
        padded = torch.cat([u[:, :1], u, u[:, -1:]], dim=1)
        um, up = padded[:, :-3, None], padded[:, 3:, None]
        slope = u1 - um
        curve = 2.0 * um - 5.0 * u0 + 4.0 * u1 - up
        cubic = 3.0 * (u0 - u1) + up - um
        mid = u0 + 0.5 * w * (slope + w * (curve + w * cubic))
    return mid.flatten(1, 2)


def _band_limited(u: Tensor, substeps: int) -> Tensor:
    """Sub-step midpoints of the band-limited signal through ``u``'s samples.

    ``u`` (batch, T + 1, m) becomes (batch, T * substeps, m). Constants are
    exact; a sampled sine at a tenth or a third of the sample rate comes
    back within 2e-4 of its amplitude away from the window's last ten
    samples, where linear interpolation is off by 5% and 46%.
    """
    from scipy.signal import resample_poly

    steps = u.shape[1] - 1
    if u.shape[2] == 0 or steps == 0:  # no inputs, or no interval
        return u.new_zeros(u.shape[0], steps * substeps, u.shape[2])
    pad = _BAND_PAD  # numpy reflects repeatedly when the window is shorter
    data = u.detach().cpu().numpy()
    data = np.pad(data, ((0, 0), (pad, pad), (0, 0)), "reflect", reflect_type="odd")
    up = 2 * substeps
    fine = resample_poly(data, up, 1, axis=1)[:, up * pad : up * (pad + steps)]
    mids = fine.reshape(u.shape[0], steps, up, u.shape[2])[:, :, 1::2]
    mids = mids / _phase_gains(up)[None, None, 1::2, None]
    out = torch.as_tensor(np.ascontiguousarray(mids), dtype=u.dtype)
    return out.to(u.device).flatten(1, 2)


@functools.lru_cache(maxsize=16)
def _phase_gains(up: int) -> np.ndarray:
    """Gain of each of the ``up`` interpolation phases on a constant signal.

    The windowed-sinc filter's phases pass a constant with gains a little off
    one (about 1e-3); dividing by them makes constants and offsets exact.
    """
    from scipy.signal import resample_poly

    ones = np.ones(2 * _BAND_PAD + 1)
    return resample_poly(ones, up, 1)[up * _BAND_PAD : up * (_BAND_PAD + 1)]


def _rollout_states(
    system: AbstractModel,
    x0: Tensor,
    u: Tensor,
    substeps: int,
    hold: str,
    tol: float = 1e-12,
    max_iter: int = 50,
    time_step: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Simulate from ``x0`` (batch, n) under ``u`` (batch, T + 1, m), with
    ``substeps`` steps of ``time_step / substeps`` per sample.

    Returns the states at the samples, (batch, T + 1, n), and the per-row
    convergence flags. ``hold="substeps"`` means ``u`` already holds the
    sub-step inputs, (batch, T * substeps, m). One-degree-of-freedom
    mechanical models take the fast scalar step; every other pH model the
    general Gonzalez step. A model without energy (a neural ODE) takes
    classical RK4 steps, each with its sub-step input held constant; RK4 is
    explicit, so every row counts as converged.
    """
    u_sub = u if hold == "substeps" else _substep_inputs(u, substeps, hold)
    h = time_step / substeps
    if not isinstance(system, PortHamiltonian):
        traj = simulate(system, x0, u_sub, dt=h, method="rk4")
        return traj.x[:, ::substeps], traj.converged
    if _tanks.supports(system):
        return _tanks.rollout(system, x0, u_sub, substeps, tol, max_iter)
    if _mechanical.supports(system):
        stepper = _mechanical.MechanicalStepper(system, h, tol, max_iter)
        x, V = x0, None
        xs = [x]
        ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for i in range(u_sub.shape[1]):
            x, V, conv = stepper.step(x, u_sub[:, i], V)
            ok = ok & conv
            if (i + 1) % substeps == 0:
                xs.append(x)
        return torch.stack(xs, dim=1), ok
    traj = simulate(system, x0, u_sub, dt=h, tol=tol, max_iter=max_iter)
    return traj.x[:, ::substeps], traj.converged


def _stitch(
    model: IdentifiedModel, x0: Tensor, u: Tensor, chunks: int | None
) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Simulate ``u`` (N, m) from ``x0`` (1, n) as pieces stepped together.

    Returns the start state of every piece (chunks, n), the pieces' sub-step
    inputs (chunks, L * substeps, m), their states (chunks, L + 1, n) and
    diagnostics.
    """
    steps = u.shape[0] - 1
    if chunks is None:
        chunks = max(1, steps // 500)
    chunks = max(1, min(chunks, steps))
    L = math.ceil(steps / chunks)
    pad = chunks * L - steps
    if pad:
        u = torch.cat([u, u[-1:].expand(pad, -1)], dim=0)
    # The sub-step inputs come from the whole record, so that a piece's
    # band-limited input does not depend on where the record was cut.
    S = model.substeps
    u_all = _substep_inputs(u[None], S, model.input_hold)[0]
    idx = torch.arange(chunks)[:, None] * (L * S) + torch.arange(L * S)[None, :]
    u_chunks = u_all[idx]
    starts = x0.new_zeros(chunks, x0.shape[1])
    starts[0] = x0[0]
    sweeps = 0
    while True:
        sweeps += 1
        xs, ok = _rollout_states(
            model.system, starts, u_chunks, S, "substeps", time_step=model.time_step
        )
        new_starts = torch.cat([x0, xs[:-1, -1]], dim=0)
        seam = float(((new_starts - starts).abs() / (1.0 + new_starts.abs())).max())
        starts = new_starts
        # A diverged piece spoils every later one: more sweeps cannot help.
        if seam <= STITCH_TOL or sweeps >= chunks or not math.isfinite(seam):
            break
    info = {"converged": bool(ok.all()), "sweeps": sweeps, "seam_error": seam}
    return starts, u_chunks, xs, info


@torch.no_grad()
def energy_audit(
    model: IdentifiedModel, log: Log, *, n_init: int, chunks: int | None = None
) -> dict[str, Any]:
    r"""Audit the discrete energy balance along a simulation of a whole log.

    Every integrator step of the free-run simulation of ``log`` is checked:

    .. math:: r = H(x') - H(x) + \Delta t\, \bar\nabla H^\top R\, \bar\nabla H
       - \Delta t\, \bar y^\top \bar u,

    which a discrete-gradient step keeps at the solve's tolerance.

    Parameters
    ----------
    model : IdentifiedModel
        The model to simulate.
    log : Log
        Inputs, and the first ``n_init`` outputs, which set the state.
    n_init : int
        Initialisation window, at least ``model.n_past``.
    chunks : int, optional
        Pieces simulated in parallel (see :meth:`IdentifiedModel.predict`).

    Returns
    -------
    dict
        ``max_residual`` (largest per-step ``|r|``), ``max_relative_residual``
        (the same over ``1 + |H|``), ``steps`` (integrator steps checked),
        ``supplied`` and ``dissipated`` (totals over the record, normalised
        units).

    Raises
    ------
    NotSupportedError
        If the model has no energy (a :class:`~phcontrol.models.NeuralODE`
        baseline): there is no balance to audit.

    Examples
    --------
    >>> import numpy as np, phcontrol as phc
    >>> from phcontrol.data import Log
    >>> t = 0.1 * np.arange(300)
    >>> u = np.sin(0.7 * t)[:, None]
    >>> log = Log(t=t, u=u, z=np.sin(0.7 * t - 0.3)[:, None], source="demo")
    >>> fit = phc.identify(log, model="linear", window=10, n_past=3, lbfgs_steps=0,
    ...                    iterations=1)
    >>> audit = energy_audit(fit.model, log, n_init=3)
    >>> bool(audit["max_relative_residual"] < 1e-9), audit["steps"] > 0
    (True, True)
    """
    if not _has_energy(model):
        raise NotSupportedError(
            f"energy_audit needs a model with an energy; this fit's "
            f"{type(model.system).__name__} has none, so there is no energy "
            "balance to audit. Fit a pH model (model='linear' or 'mechanical') "
            "when the balance matters"
        )
    _, _, pieces = model._predict_pieces(log.u, log.z, n_init, chunks)
    return _energy_audit_pieces(model, pieces)


@torch.no_grad()
def _energy_audit_pieces(
    model: IdentifiedModel, pieces: tuple[Tensor, Tensor]
) -> dict[str, Any]:
    """:func:`energy_audit` of a simulation already stitched by ``predict``.

    ``pieces`` are the start states and sub-step inputs that
    ``IdentifiedModel._predict_pieces`` returns; the result equals
    ``energy_audit`` of the same record with the same chunks.
    """
    with one_thread():
        return _audit(model, *pieces)


def _has_energy(model: IdentifiedModel) -> bool:
    """Return True when the fitted system has an energy (is port-Hamiltonian)."""
    return isinstance(model.system, PortHamiltonian)


def _audit(model: IdentifiedModel, starts: Tensor, u_chunks: Tensor) -> dict[str, Any]:
    """Step every piece once from its start and check each step's balance."""
    system, S = model.system, model.substeps
    assert isinstance(system, PortHamiltonian)  # energy_audit refuses the others
    u_sub = u_chunks
    if _tanks.supports(system):
        return _tanks.audit(system, starts, u_sub, S)
    if _mechanical.supports(system):
        stepper = _mechanical.MechanicalStepper(system, model.time_step / S, 1e-12, 50)
        x = starts
        worst = worst_rel = x.new_zeros(())
        supplied = dissipated = x.new_zeros(())
        for i in range(u_sub.shape[1]):
            um = u_sub[:, i]
            xn, _, _ = stepper.step(x, um)
            s, d = stepper.balance_terms(x, xn, um)
            H_next = system.H(xn)
            r = (H_next - system.H(x) + d - s).abs()
            worst = torch.maximum(worst, r.max())
            worst_rel = torch.maximum(worst_rel, (r / (1.0 + H_next.abs())).max())
            supplied = supplied + s.sum()
            dissipated = dissipated + d.sum()
            x = xn
        steps = u_sub.shape[0] * u_sub.shape[1]
        return {
            "max_residual": float(worst),
            "max_relative_residual": float(worst_rel),
            "steps": int(steps),
            "supplied": float(supplied),
            "dissipated": float(dissipated),
        }
    traj = simulate(system, starts, u_sub, dt=model.time_step / S)
    assert traj.residual is not None and traj.energy is not None
    res = traj.residual.abs()
    rel = res / (1.0 + traj.energy[:, 1:].abs())
    return {
        "max_residual": float(res.max()),
        "max_relative_residual": float(rel.max()),
        "steps": int(res.numel()),
        "supplied": float(traj.supplied.sum()),  # type: ignore[union-attr]
        "dissipated": float(traj.dissipated.sum()),  # type: ignore[union-attr]
    }
