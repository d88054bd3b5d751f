r"""The driver: :func:`simulate` steps a model and audits its energy balance.

Each method advances the state; afterwards the bookkeeping of every step is
computed in one batched pass with the method's own gradient ``ḡ``
(the discrete gradient for ``gonzalez``, ``itoh_abe`` and ``avf``, the
midpoint gradient :math:`\nabla H(\bar x)` otherwise):

.. math:: \bar y = G(\bar x)^\top \bar g, \quad
   s = \Delta t\, \bar y^\top \bar u, \quad
   d = \Delta t\, \bar g^\top R(\bar x)\, \bar g, \quad
   r = H(x') - H(x) + d - s .
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

import torch
from torch import Tensor

from .._validation import (
    check_batch,
    check_choice,
    check_keywords,
    check_positive,
    default_tol,
)
from ..errors import NotSupportedError
from ..models import AbstractModel, PortHamiltonian
from ._base import (
    InputFn,
    Trajectory,
    _InputSchedule,
    _NewtonSolver,
    _report_convergence,
)
from .discrete_gradient import implicit_step, method_gradient
from .explicit import VerletStepper, check_verlet, explicit_step

__all__ = ["simulate", "METHODS", "Method"]

logger = logging.getLogger(__name__)

Method = Literal[
    "gonzalez",
    "itoh_abe",
    "avf",
    "invariant",
    "implicit_midpoint",
    "verlet",
    "rk4",
    "euler",
]
METHODS: tuple[str, ...] = get_args(Method)
IMPLICIT: tuple[str, ...] = (
    "gonzalez",
    "itoh_abe",
    "avf",
    "invariant",
    "implicit_midpoint",
)
# Methods whose step keeps the energy balance exactly (for every H they take).
EXACT: tuple[str, ...] = ("gonzalez", "itoh_abe", "invariant")

# Rows per batched bookkeeping pass; bounds the (rows, n, n) matrices of R.
_CHUNK = 1 << 16


def _check_model(model: AbstractModel, method: str, like: Tensor) -> None:
    if method in IMPLICIT and not isinstance(model, PortHamiltonian):
        raise NotSupportedError(
            f"method={method!r} needs a PortHamiltonian (it uses H, J, R and G); "
            f"{type(model).__name__} has no energy. Use method='rk4'."
        )
    if method == "verlet":
        check_verlet(model, like)
    if method == "invariant":
        assert isinstance(model, PortHamiltonian)
        why = model.H._invariant_refusal()
        if why is not None:
            raise NotSupportedError(
                "method='invariant' needs an energy written through its invariants "
                "(PairwiseHamiltonian, QuadraticHamiltonian, or MechanicalHamiltonian "
                "with constant mass and quadratic, polynomial, cosine or "
                f"gravitational potentials); {why}. Use method='gonzalez' (exact "
                "energy balance) or 'avf' (also keeps linear invariants)."
            )


@check_keywords
def simulate(
    model: AbstractModel,
    x0: Tensor,
    u: Tensor | InputFn | None = None,
    dt: float = 0.01,
    *,
    steps: int | None = None,
    method: Method = "gonzalez",
    substeps: int = 1,
    input_hold: Literal["zoh", "linear"] = "zoh",
    tol: float | None = None,
    max_iter: int = 50,
    strict: bool = False,
    gradient: Literal["ift", "unroll"] = "ift",
    avf_nodes: int = 2,
    t0: float = 0.0,
) -> Trajectory:
    r"""Simulate a model from ``x0`` under the input ``u``.

    Parameters
    ----------
    model : AbstractModel
        A :class:`PortHamiltonian` (every method) or a baseline such as
        :class:`NeuralODE` (``rk4`` and ``euler`` only). A closed loop
        from :func:`phcontrol.control.closed_loop` without a pH form of its
        own is stepped as its plant under ``u = beta(x) + v``.
    x0 : Tensor, shape (batch, n_states) or (n_states,)
        Initial states. The trajectory uses its dtype and device.
    u : Tensor or callable or None
        Inputs. A tensor of shape ``(batch, steps, n_inputs)`` (or without the
        batch axis) is held over each interval; with ``input_hold="linear"``
        it has ``steps + 1`` samples and is interpolated linearly between
        them. A callable ``u(t, x) -> (batch, n_inputs)`` closes a loop; an
        implicit method evaluates it at the step's midpoint
        ``(t + dt/2, x̄)``, so the closed loop's balance is exact too. None
        means no input.
    dt : float
        Sample interval; must be positive.
    steps : int, optional
        Number of intervals; taken from ``u`` when it is a tensor.
    method : {"gonzalez", "itoh_abe", "avf", "invariant", "implicit_midpoint", \
"verlet", "rk4", "euler"}, default "gonzalez"
        The integrator; see Notes.
    substeps : int, default 1
        Integrator steps per sample interval.

    Returns
    -------
    Trajectory
        States, outputs, energies and the per-interval energy bookkeeping.

    Other Parameters
    ----------------
    input_hold : {"zoh", "linear"}, default "zoh"
        How a tensor input is held between samples.
    tol : float, optional
        Scaled residual tolerance of the implicit solve (default 1e-12 in
        float64, 1e-6 in float32).
    max_iter : int, default 50
        Iteration cap of the implicit solve.
    strict : bool, default False
        Raise :class:`ConvergenceError` instead of warning when a row does
        not converge.
    gradient : {"ift", "unroll"}, default "ift"
        How gradients pass through implicit solves: the implicit function
        theorem (memory independent of the iteration count) or unrolled
        Newton iterations.
    avf_nodes : int, default 2
        Gauss-Legendre nodes ``k`` of ``method="avf"``; exact for
        polynomial ``H`` of degree at most ``2k``.
    t0 : float, default 0.0
        Start time.

    Raises
    ------
    ConvergenceError
        With ``strict=True`` when a row's implicit solve misses ``tol``.
    NotSupportedError
        For an implicit method on a model without energy, ``verlet`` on
        a model that is not separable mechanical with canonical ``J``, or
        ``invariant`` on an energy without ``invariant_gradient``.

    Warns
    -----
    NumericsWarning
        When a row's implicit solve misses ``tol`` (its ``converged`` entry
        is then False).

    Notes
    -----
    ===================  =====  ==========================================
    method               order  energy balance per step
    ===================  =====  ==========================================
    ``gonzalez``         2      exact for any ``H`` (to ``tol``)
    ``itoh_abe``         1      exact for any ``H`` (``n + 1`` evaluations)
    ``avf``              2      exact for polynomial ``H`` of degree
                                ``<= 2 avf_nodes``; quadrature error else;
                                keeps linear invariants
    ``invariant``        2      exact; a discrete gradient through the
                                invariants of ``H`` (needs an ``H`` with
                                ``invariant_gradient``); keeps total and
                                angular momentum of pair energies
    ``implicit_midpoint`` 2     exact for quadratic ``H`` only
    ``verlet``           2      explicit; bounded error (symplectic) for
                                separable ``H`` with canonical ``J``
    ``rk4``              4      drifts
    ``euler``            1      drifts (grows when lossless)
    ===================  =====  ==========================================

    The implicit methods solve
    :math:`x' = x + \Delta t\,[(J - R)(\bar x)\,\bar g + G(\bar x)\,\bar u]`;
    with an exact discrete gradient ``ḡ`` each interval satisfies

    .. math:: H(x_{k+1}) - H(x_k) = -\Delta t\, \bar g^\top R\,
       \bar g + \Delta t\, \bar y^\top \bar u

    up to ``tol`` times the size of ``ḡ`` plus round-off in ``H``;
    ``Trajectory.residual`` reports the difference for every method.

    Examples
    --------
    A lossless oscillator keeps its energy to round-off:

    >>> import torch
    >>> import phcontrol as phc
    >>> model = phc.PortHamiltonian(phc.QuadraticHamiltonian(2), phc.CanonicalJ(2))
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> traj = phc.simulate(model.double(), x0, dt=0.1, steps=100)
    >>> bool((traj.energy - traj.energy[:, :1]).abs().max() < 1e-12)
    True
    >>> rk4 = phc.simulate(model.double(), x0, dt=0.1, steps=100, method="rk4")
    >>> bool((rk4.energy - rk4.energy[:, :1]).abs().max() > 1e-8)
    True
    """
    feedback = getattr(model, "feedback_loop", None)
    loop = feedback() if callable(feedback) else None
    if loop is not None:
        # A closed loop without a pH form of its own: step its plant under
        # u = beta(x) + v, so the controller's supply enters the audit.
        plant, beta = loop
        return simulate(
            plant, x0, _with_feedback(beta, u), dt, steps=steps, method=method,
            substeps=substeps, input_hold=input_hold, tol=tol, max_iter=max_iter,
            strict=strict, gradient=gradient, avf_nodes=avf_nodes, t0=t0,
        )  # fmt: skip
    check_choice(method, "method", METHODS)
    check_choice(input_hold, "input_hold", ("zoh", "linear"))
    check_choice(gradient, "gradient", ("ift", "unroll"))
    dt = check_positive(dt, "dt")
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"`substeps` must be a positive integer; found {substeps!r}")
    if not isinstance(avf_nodes, int) or avf_nodes < 1:
        raise ValueError(f"`avf_nodes` must be a positive integer; found {avf_nodes!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer; found {max_iter!r}")
    x = check_batch(x0, "x0", model.n_states)
    _check_model(model, method, x)
    batch = x.shape[0]
    schedule = _InputSchedule(u, steps, batch, model.n_inputs, input_hold, x)
    steps = schedule.steps
    tol = default_tol(x.dtype) if tol is None else check_positive(tol, "tol")
    h = dt / substeps
    has_energy = isinstance(model, PortHamiltonian)
    grad_fn = (
        method_gradient(model, method, avf_nodes)
        if isinstance(model, PortHamiltonian)
        else None
    )

    xs, us, grads = [x], [], []
    energies: list[Tensor] | None = None
    converged = torch.ones(batch, dtype=torch.bool, device=x.device)
    if method in IMPLICIT:
        assert isinstance(model, PortHamiltonian) and grad_fn is not None
        solver = _NewtonSolver(tol, max_iter)
        H_x = model.H(x)
        energies = [H_x]
        for k in range(steps):
            for j in range(substeps):
                t_mid = torch.as_tensor(
                    t0 + k * dt + (j + 0.5) * h, dtype=x.dtype, device=x.device
                )
                guess = None
                if len(xs) >= 3:
                    guess = 3.0 * (xs[-1] - xs[-2]) + xs[-3]
                x, H_x, g, um, ok = implicit_step(
                    model, x, H_x, t_mid, h, k, j, substeps, schedule, solver,
                    gradient, grad_fn, guess,
                )  # fmt: skip
                grads.append(g)
                converged = converged & ok
                xs.append(x)
                us.append(um)
                energies.append(H_x)
        _report_convergence(converged, tol, max_iter, strict, method)
    elif method == "verlet":
        assert isinstance(model, PortHamiltonian)
        stepper = VerletStepper(model, h, x)
        for k in range(steps):
            for j in range(substeps):
                x, um = stepper.step(x, t0 + k * dt + j * h, k, j, substeps, schedule)
                xs.append(x)
                us.append(um)
    else:
        for k in range(steps):
            for j in range(substeps):
                t = t0 + k * dt + j * h
                x, um = explicit_step(model, x, t, h, k, j, substeps, schedule, method)
                xs.append(x)
                us.append(um)

    X = torch.stack(xs, dim=1)
    t_grid = t0 + dt * torch.arange(steps + 1, dtype=x.dtype, device=x.device)
    if not isinstance(model, PortHamiltonian):
        return Trajectory(
            t=t_grid,
            x=X[:, ::substeps],
            y=x.new_zeros(batch, steps, model.n_inputs),
            energy=None,
            supplied=None,
            dissipated=None,
            residual=None,
            converged=converged,
            method=method,
        )
    assert grad_fn is not None and has_energy
    U = torch.stack(us, dim=1)
    E = torch.stack(energies, dim=1) if energies is not None else None
    Gd = torch.stack(grads, dim=1) if grads else None
    E, y, s, d = _bookkeeping(model, X, U, E, h, grad_fn, Gd)
    m = model.n_inputs
    y = y.reshape(batch, steps, substeps, m).mean(2)
    s = s.reshape(batch, steps, substeps).sum(2)
    d = d.reshape(batch, steps, substeps).sum(2)
    energy = E[:, ::substeps]
    return Trajectory(
        t=t_grid,
        x=X[:, ::substeps],
        y=y,
        energy=energy,
        supplied=s,
        dissipated=d,
        residual=energy[:, 1:] - energy[:, :-1] + d - s,
        converged=converged,
        method=method,
    )


def _with_feedback(beta: InputFn, u: Tensor | InputFn | None) -> InputFn:
    """Return ``u(t, x) = beta(t, x) + v(t, x)`` for a closed loop's input ``v``."""
    if u is None:
        return beta
    if callable(u) and not isinstance(u, Tensor):
        v = u
        return lambda t, x: beta(t, x) + v(t, x)
    raise NotSupportedError(
        "a closed loop stepped as its plant under feedback takes its external "
        "input `u` as a callable u(t, x) or None, not a sequence; wrap the "
        "sequence in a function of t"
    )


def _bookkeeping(
    model: PortHamiltonian,
    X: Tensor,
    U: Tensor,
    E: Tensor | None,
    h: float,
    grad_fn,
    Gd: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return energies (batch, S + 1), ``ȳ`` (batch, S, m), supplied, dissipated."""
    batch, S1, n = X.shape
    S = S1 - 1
    if E is None:
        E = torch.cat(
            [model.H(c) for c in X.reshape(-1, n).split(_CHUNK)], dim=0
        ).reshape(batch, S1)
    xa = X[:, :-1].reshape(-1, n)
    xb = X[:, 1:].reshape(-1, n)
    Ea = E[:, :-1].reshape(-1)
    Eb = E[:, 1:].reshape(-1)
    Uf = U.reshape(batch * S, -1)
    known = (
        [None] * len(xa.split(_CHUNK))
        if Gd is None
        else Gd.reshape(-1, n).split(_CHUNK)
    )
    ys, ss, ds = [], [], []
    for a, b, ha, hb, uu, gk in zip(
        xa.split(_CHUNK),
        xb.split(_CHUNK),
        Ea.split(_CHUNK),
        Eb.split(_CHUNK),
        Uf.split(_CHUNK),
        known,
        strict=True,
    ):
        g = grad_fn(a, b, ha, hb) if gk is None else gk
        xm = 0.5 * (a + b)
        y = model.output(xm, g)
        ys.append(y)
        ss.append(h * (y * uu).sum(-1))
        if model.R is None:
            ds.append(a.new_zeros(a.shape[0]))
        else:
            Rg = (model.R_matrix(xm) @ g.unsqueeze(-1)).squeeze(-1)
            ds.append(h * (g * Rg).sum(-1))
    y = torch.cat(ys).reshape(batch, S, -1)
    return E, y, torch.cat(ss).reshape(batch, S), torch.cat(ds).reshape(batch, S)
