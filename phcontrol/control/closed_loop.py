r"""The closed loop of a plant and a controller, as a model again.

Where the controller knows the pH form of its loop and that form is
verified to reproduce the plant under the feedback at seeded states, the
closed loop *is* that pH model,

.. math:: \dot x = (J_d - R_d)\, \nabla H_d + G\, v, \qquad y = G^\top \nabla H_d,

so :func:`~phcontrol.simulate` steps it with a discrete gradient of ``H_d``
and its trajectory audits the closed-loop balance
:math:`\Delta H_d = -\Delta t\, \bar g^\top R_d \bar g + \Delta t\, \bar y^\top v`.
Otherwise (a switching controller, or a controller designed on another
model than the plant it runs on) the closed loop keeps the plant's ``H``
and :func:`~phcontrol.simulate` steps the plant under ``u = \beta(x) + v``:
the audit is then the plant's balance with the controller's supply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from .._validation import check_choice
from ..errors import NotSupportedError, ShapeError
from ..models import PortHamiltonian
from ._base import AbstractController, ClosedLoopForm, plant_dtype

__all__ = ["ClosedLoop", "closed_loop", "MATCH_RTOL"]

logger = logging.getLogger(__name__)

MATCH_RTOL = 1e-9
"""Largest accepted mismatch between the pH form and plant plus feedback,
relative to ``1 + |dx/dt|``, at the seeded check states (float64)."""


class ClosedLoop(PortHamiltonian):
    """A plant in feedback with a controller; built by :func:`closed_loop`.

    Attributes
    ----------
    plant : PortHamiltonian
        The plant the loop runs on.
    controller : AbstractController
        The feedback ``u = beta(x)``; the loop's input ``v`` adds to it.
    structured : bool
        True when the loop is the controller's verified pH form (energy
        ``H_d``); False when it is the plant with its own ``H`` under the
        feedback.
    x_star : Tensor, shape (n_states,)
        The target state.
    match_error : float
        Largest relative mismatch of the pH form at the check states (0.0
        when not structured, NaN when not checked).

    Examples
    --------
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection, certify_closed_loop, closed_loop
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> loop = closed_loop(plant, DampingInjection(plant, 2.0))
    >>> loop.structured, loop.n_states, loop.n_inputs
    (True, 2, 1)
    """

    def __init__(
        self,
        plant: PortHamiltonian,
        controller: AbstractController,
        form: ClosedLoopForm | None,
        match_error: float,
    ) -> None:
        if form is None:
            super().__init__(plant.H, plant.J, plant.R, plant.G)
        else:
            super().__init__(form.H, form.J, form.R, form.G)
        self.structured = form is not None
        self.controller = controller
        self.x_star = controller.x_star if form is None else form.x_star
        self.match_error = match_error
        # Kept out of the module tree: the plant's parts may be shared.
        object.__setattr__(self, "plant", plant)

    def flow(self, x: Tensor, grad_H: Tensor, u: Tensor) -> Tensor:
        """Return ``dx/dt`` for a gradient ``grad_H`` and external input ``u``."""
        if self.structured:
            return super().flow(x, grad_H, u)
        return super().flow(x, grad_H, u + self.controller.control(x))

    def feedback_loop(self) -> tuple[PortHamiltonian, Callable] | None:
        """Return ``(plant, u(t, x))`` for an unstructured loop, else None.

        :func:`~phcontrol.simulate` uses it to step the plant under the
        feedback, so that the controller's supply enters the audit.
        """
        if self.structured:
            return None
        return self.plant, self.controller


def closed_loop(
    model: PortHamiltonian,
    controller: AbstractController,
    *,
    form: Literal["auto", "port_hamiltonian", "feedback"] = "auto",
    n_check: int = 64,
    box: float = 0.5,
    seed: int = 0,
) -> ClosedLoop:
    r"""Close the loop of ``model`` with ``controller``.

    Parameters
    ----------
    model : PortHamiltonian
        The plant the loop runs on: the design model, or another one (the
        true plant when the controller was designed on an identified model).
    controller : AbstractController
        The feedback.
    form : {"auto", "port_hamiltonian", "feedback"}, default "auto"
        ``"port_hamiltonian"`` demands the controller's pH form and raises
        when it does not match; ``"feedback"`` keeps the plant's ``H``;
        ``"auto"`` takes the pH form where it matches and says so in the
        log otherwise.

    Returns
    -------
    ClosedLoop
        A :class:`~phcontrol.PortHamiltonian` with input ``v`` (``u = beta(x)
        + v``), simulated by :func:`~phcontrol.simulate` like any model.

    Other Parameters
    ----------------
    n_check : int, default 64
        Number of seeded states at which the pH form is compared with
        ``model`` under the feedback.
    box : float, default 0.5
        Half-width of the check region around the target, relative to
        ``1 + |x*_i|`` per coordinate.
    seed : int, default 0
        Seed of the check states.

    Raises
    ------
    NotSupportedError
        With ``form="port_hamiltonian"`` when the controller has no pH form
        or the form does not reproduce ``model`` under the feedback; for a
        controller with its own states (PI) when the form does not match,
        since such a loop has no feedback-only form.
    ShapeError
        If ``model`` and ``controller`` disagree on the number of inputs.

    Notes
    -----
    The pH form is accepted when, at every check state ``x``,

    .. math:: \|f_d(x) - f(x, \beta(x))\|_\infty \le
       10^{-9}\,(1 + \|f(x, \beta(x))\|_\infty),

    with :math:`f_d = (J_d - R_d)\nabla H_d` the form's field and ``f`` the
    plant's. For interconnection and damping assignment it is the matching
    condition; for a controller designed on another model it fails, and the
    loop is the plant under the feedback.

    Examples
    --------
    >>> import torch
    >>> import phcontrol as phc
    >>> from phcontrol.control import DampingInjection, closed_loop
    >>> plant = phc.plants.mass_spring_damper(damping=0.0).double()
    >>> loop = closed_loop(plant, DampingInjection(plant, 2.0))
    >>> x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    >>> loop.structured, loop.R_matrix(x0)[0].tolist()
    (True, [[0.0, 0.0], [0.0, 2.0]])
    >>> traj = phc.simulate(loop, x0, dt=0.05, steps=200)
    >>> bool(traj.energy[0, -1] < 1e-3 * traj.energy[0, 0])
    True
    """
    check_choice(form, "form", ("auto", "port_hamiltonian", "feedback"))
    if not isinstance(model, PortHamiltonian):
        raise TypeError(
            f"`model` must be a PortHamiltonian; found {type(model).__name__}"
        )
    if not isinstance(controller, AbstractController):
        raise TypeError(
            "`controller` must be a phcontrol controller (DampingInjection, "
            f"EnergyShaping, IDAPBC, PIPBC, EnergyPumping, ...); found "
            f"{type(controller).__name__}"
        )
    if model.n_inputs != controller.n_inputs:
        raise ShapeError(
            f"`controller` gives {controller.n_inputs} inputs but `model` takes "
            f"{model.n_inputs}; design the controller on a model with the same ports"
        )
    augmented = controller.n_states != model.n_states
    ph = None if form == "feedback" else controller.form()
    error = float("nan")
    if ph is not None:
        error = _match_error(model, controller, ph, n_check, box, seed)
        if not error <= MATCH_RTOL:
            why = (
                f"the controller's pH form does not reproduce the plant under the "
                f"feedback (relative mismatch {error:.3g} > {MATCH_RTOL:g} at the "
                "check states)"
            )
            if form == "port_hamiltonian" or augmented:
                raise NotSupportedError(
                    f"{why}; design the controller on this model, or use "
                    "form='feedback' for a controller without own states"
                )
            logger.info("%s; the loop keeps the plant's energy", why)
            ph = None
    elif form == "port_hamiltonian" or augmented:
        raise NotSupportedError(
            f"{type(controller).__name__} has no port-Hamiltonian closed-loop form "
            "here; use form='feedback' (the plant under the feedback)"
        )
    return ClosedLoop(model, controller, ph, error if ph is not None else 0.0)


def _match_error(
    model: PortHamiltonian,
    controller: AbstractController,
    ph: ClosedLoopForm,
    n: int,
    box: float,
    seed: int,
) -> float:
    dtype = plant_dtype(model)
    gen = torch.Generator().manual_seed(seed)
    x = controller.sample_states(n, box, gen).to(dtype)
    target = PortHamiltonian(ph.H, ph.J, ph.R, ph.G)
    with torch.no_grad():
        f_form = target.vector_field(x)
        f_true = controller.loop_field(model, x)
    scale = 1.0 + f_true.abs().amax(-1)
    return float(((f_form - f_true).abs().amax(-1) / scale).max())
