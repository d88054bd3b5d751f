r"""Run several integrators on one problem and tabulate their energy errors.

The energy error at sample ``k`` is the distance of ``H`` from its own
balance, :math:`e_k = H(x_k) - H(x_0) - \sum_{i<k} (s_i - d_i)`, the
running sum of :attr:`Trajectory.residual`; for a lossless model without
input it is :math:`H(x_k) - H(x_0)`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..errors import NotSupportedError
from ..models import AbstractModel, PortHamiltonian
from ._base import InputFn
from ._simulate import METHODS, simulate

__all__ = ["IntegratorRow", "IntegratorComparison", "compare_integrators"]


@dataclass(frozen=True)
class IntegratorRow:
    r"""One method's result in :func:`compare_integrators`.

    Attributes
    ----------
    method : str
        The integrator.
    dt : float
        Step used.
    max_energy_error : float
        Largest :math:`|e_k|` over time and batch.
    final_energy_error : float
        Largest :math:`|e_N|` over the batch at the last sample.
    max_residual : float
        Largest per-step power-balance residual.
    seconds : float
        Wall-clock time of the simulation.
    converged : bool
        Every implicit solve met its tolerance.
    energy_error : Tensor, shape (steps + 1,)
        :math:`\max_{\text{batch}} |e_k|` at each sample.

    Examples
    --------
    >>> import torch
    >>> from phcontrol import plants
    >>> from phcontrol.integrators import compare_integrators
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> table = compare_integrators(plants.pendulum(), x0, dt=0.1, steps=20,
    ...                             methods=["gonzalez", "rk4"])
    >>> row = table.row("gonzalez")
    >>> row.method, bool(row.max_energy_error < 1e-12)
    ('gonzalez', True)
    """

    method: str
    dt: float
    max_energy_error: float
    final_energy_error: float
    max_residual: float
    seconds: float
    converged: bool
    energy_error: Tensor


@dataclass(frozen=True)
class IntegratorComparison:
    """The table returned by :func:`compare_integrators`.

    Attributes
    ----------
    rows : tuple of IntegratorRow
        One row per method, in the order asked.
    figure : matplotlib.figure.Figure or None
        Energy error against time and against ``dt`` when a plot was asked.

    Examples
    --------
    >>> import torch
    >>> from phcontrol import plants
    >>> from phcontrol.integrators import compare_integrators
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> table = compare_integrators(plants.pendulum(), x0, dt=0.1, steps=20,
    ...                             methods=["gonzalez", "rk4"])
    >>> [row.method for row in table.rows]
    ['gonzalez', 'rk4']
    """

    rows: tuple[IntegratorRow, ...]
    figure: Any = None

    def row(self, method: str) -> IntegratorRow:
        """Return the row of ``method``."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(
            f"no row for method {method!r}; have {[r.method for r in self.rows]}"
        )

    def to_markdown(self) -> str:
        """Return the table as GitHub markdown."""
        lines = [
            "| method | dt | max energy error | final energy error | max residual "
            "| seconds | converged |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.method} | {r.dt:g} | {r.max_energy_error:.3e} | "
                f"{r.final_energy_error:.3e} | {r.max_residual:.3e} | "
                f"{r.seconds:.3f} | {r.converged} |"
            )
        return "\n".join(lines)


def _run(
    model: PortHamiltonian,
    x0: Tensor,
    u: Tensor | InputFn | None,
    dt: float,
    steps: int | None,
    method: str,
    options: dict[str, Any],
) -> IntegratorRow:
    start = time.perf_counter()
    run: Any = simulate  # `method` is a checked str here, not the Literal
    traj = run(model, x0, u, dt, steps=steps, method=method, **options)
    seconds = time.perf_counter() - start
    assert traj.residual is not None and traj.energy is not None
    res = traj.residual.detach()
    e = res.cumsum(dim=1).abs()
    per_t = e.amax(0)
    full = per_t.new_zeros(per_t.shape[0] + 1)
    full[1:] = per_t
    return IntegratorRow(
        method=method,
        dt=float(dt),
        max_energy_error=float(full.max()),
        final_energy_error=float(full[-1]),
        max_residual=float(res.abs().max()),
        seconds=seconds,
        converged=bool(traj.converged.all()),
        energy_error=full,
    )


def compare_integrators(
    model: AbstractModel,
    x0: Tensor,
    u: Tensor | InputFn | None = None,
    dt: float = 0.01,
    steps: int | None = None,
    methods: Sequence[str] = ("gonzalez", "implicit_midpoint", "rk4", "euler"),
    *,
    plot: bool = False,
    dts: Sequence[float] | None = None,
    tol: float | None = None,
    avf_nodes: int = 2,
) -> IntegratorComparison:
    r"""Simulate one problem with several methods and compare energy errors.

    Parameters
    ----------
    model : PortHamiltonian
        The model; it must have an energy.
    x0 : Tensor, shape (batch, n_states) or (n_states,)
        Initial states.
    u : Tensor or callable or None
        Inputs, as for :func:`simulate`.
    dt : float
        Step.
    steps : int, optional
        Number of steps (taken from ``u`` when it is a tensor).
    methods : sequence of str
        Methods to run, each one of :data:`METHODS`.

    Returns
    -------
    IntegratorComparison
        ``rows`` (one per method) and, with ``plot=True``, a ``figure``.

    Other Parameters
    ----------------
    plot : bool, default False
        Draw energy error against time (at ``dt``) and the largest energy
        error against the step (over the same time span, at each of
        ``dts``). Imports matplotlib.
    dts : sequence of float, optional
        Steps of the second panel (default ``dt, dt/2, dt/4``). Only used
        with ``plot=True``, and only with an input that is None or a
        callable, since a held sequence fixes the step.
    tol : float, optional
        Implicit solve tolerance (the numerics contract's default).
    avf_nodes : int, default 2
        Gauss-Legendre nodes of ``avf``.

    Raises
    ------
    NotSupportedError
        If ``model`` has no energy, or a method cannot step it (see
        :func:`simulate`).

    Examples
    --------
    >>> import torch
    >>> from phcontrol import plants
    >>> model = plants.pendulum()
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> table = compare_integrators(model, x0, dt=0.1, steps=200,
    ...                             methods=["gonzalez", "rk4"])
    >>> table.row("gonzalez").max_energy_error < 1e-12
    True
    >>> table.row("rk4").max_energy_error > 1e-8
    True
    """
    if not isinstance(model, PortHamiltonian):
        raise NotSupportedError(
            f"compare_integrators needs a model with an energy; "
            f"{type(model).__name__} has none. Use a PortHamiltonian or HNN."
        )
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"`methods` must hold names from {METHODS}; found {m!r}")
    options: dict[str, Any] = {"tol": tol, "avf_nodes": avf_nodes}
    rows = tuple(_run(model, x0, u, dt, steps, m, options) for m in methods)
    figure = None
    if plot:
        figure = _figure(model, x0, u, dt, steps, rows, dts, options)
    return IntegratorComparison(rows=rows, figure=figure)


def _figure(
    model: PortHamiltonian,
    x0: Tensor,
    u: Tensor | InputFn | None,
    dt: float,
    steps: int | None,
    rows: tuple[IntegratorRow, ...],
    dts: Sequence[float] | None,
    options: dict[str, Any],
) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_dt) = plt.subplots(1, 2, figsize=(10, 4))
    for r in rows:
        n = r.energy_error.shape[0]
        t = [dt * i for i in range(n)]
        ax_t.semilogy(t[1:], r.energy_error[1:].clamp_min(1e-300).cpu(), label=r.method)
    ax_t.set_xlabel("t")
    ax_t.set_ylabel("|energy error|")
    ax_t.legend()
    if isinstance(u, Tensor):
        ax_dt.set_title("a held input fixes dt")
    else:
        span = dt * (steps or 0)
        grid = list(dts) if dts is not None else [dt, dt / 2, dt / 4]
        for r in rows:
            errs = []
            for h in grid:
                n_steps = max(1, round(span / h))
                errs.append(
                    _run(model, x0, u, h, n_steps, r.method, options).max_energy_error
                )
            ax_dt.loglog(grid, [max(e, 1e-300) for e in errs], "o-", label=r.method)
        ax_dt.set_xlabel("dt")
        ax_dt.set_ylabel("max |energy error|")
        ax_dt.legend()
    fig.tight_layout()
    return fig
