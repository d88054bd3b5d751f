r"""Grey-box port-Hamiltonian models: known forms, a few named parameters.

An engineer who knows the physics writes the potential energy and the
damping law as ordinary functions of the state and of named parameters;
:func:`mechanical_model` turns them into a
:class:`~phcontrol.models.PortHamiltonian` that :func:`phcontrol.identify`
fits like any other model (Levenberg–Marquardt over windows with free
initial states), in physical units, with time in seconds.

The model is passive by construction as long as the damping is
non-negative: declare the parameters that must stay positive in
``positive`` (they are fitted through a softplus), and write ``r(v)`` so that
positive parameters make it non-negative. A negative ``r`` met during a
simulation raises an error rather than creating energy.

For one degree of freedom, with ``x = (q, p)`` and ``p = m v``,

.. math::

    H = \frac{p^2}{2m} + V(q), \qquad
    \dot q = p/m, \qquad
    \dot p = -V'(q) - r(v)\, p/m + g\, u, \qquad y = g\, p/m,

and the measured output is the position ``z = q``. Such a model steps with
the fast exact scalar discrete gradient, so a fit takes seconds to
minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from .errors import NumericsError
from .hamiltonians import AbstractPotential, MechanicalHamiltonian
from .models import PortHamiltonian
from .structure import AbstractStructureMatrix, CanonicalJ, InputMatrix

__all__ = [
    "FunctionPotential",
    "MomentumDamping",
    "NamedParameters",
    "mechanical_model",
    "parameter_values",
]


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value)) if value < 30 else value


class NamedParameters(nn.Module):
    """Scalar parameters with names; ``positive`` ones stay positive.

    A positive parameter ``c`` is stored as ``c_raw`` with
    ``c = softplus(c_raw)``.

    Parameters
    ----------
    values : mapping of str to float
        Initial values.
    positive : iterable of str, default ()
        Names whose value must stay positive (initial values must be > 0).

    Examples
    --------
    >>> params = NamedParameters({"k": 2.0, "c": 0.1}, positive=["c"])
    >>> {k: round(v, 6) for k, v in params.values().items()}
    {'k': 2.0, 'c': 0.1}
    >>> params.namespace().k.item()
    2.0
    """

    def __init__(self, values: Mapping[str, float], positive: Iterable[str] = ()):
        super().__init__()
        positive = set(positive)
        unknown = positive - set(values)
        if unknown:
            raise ValueError(
                f"`positive` names {sorted(unknown)} that are not in the "
                f"parameters {sorted(values)}; correct the names or give them "
                "initial values in `values`"
            )
        self.names = list(values)
        self.positive = positive
        for name, value in values.items():
            if not name.isidentifier():
                raise ValueError(
                    f"parameter name {name!r} is not a Python identifier; "
                    "use letters, digits and underscores"
                )
            value = float(value)
            if name in positive:
                if not value > 0:
                    raise ValueError(
                        f"parameter {name!r} is declared positive but starts at "
                        f"{value}; give it a positive initial value"
                    )
                raw = torch.tensor(_inverse_softplus(value), dtype=torch.float64)
                self.register_parameter(f"{name}_raw", nn.Parameter(raw))
            else:
                t = torch.tensor(value, dtype=torch.float64)
                self.register_parameter(name, nn.Parameter(t))

    def tensors(self) -> dict[str, Tensor]:
        """Return the current values as 0-d tensors, by name."""
        out = {}
        for name in self.names:
            if name in self.positive:
                out[name] = nn.functional.softplus(getattr(self, f"{name}_raw"))
            else:
                out[name] = getattr(self, name)
        return out

    def namespace(self) -> SimpleNamespace:
        """Return the values as attributes (``p.k``), for model functions."""
        return SimpleNamespace(**self.tensors())

    def values(self) -> dict[str, float]:
        """Return the current values as floats, by name."""
        return {k: float(v.detach()) for k, v in self.tensors().items()}


class FunctionPotential(AbstractPotential):
    """A potential ``V(q)`` written as a function with named parameters.

    Parameters
    ----------
    fn : callable
        ``fn(q, p) -> V``: ``q`` a Tensor of shape (batch, n_dof), ``p`` a
        namespace of the parameters (``p.k``); returns shape (batch,).
    values : mapping of str to float
        Initial parameter values.
    positive : iterable of str, default ()
        Parameters that must stay positive.
    n_dof : int, default 1
        Degrees of freedom.

    Notes
    -----
    A model with a Python function cannot be written to a model file,
    since model files never hold code; keep the function in your script
    and save the values of :func:`parameter_values`.

    Examples
    --------
    >>> import torch
    >>> V = FunctionPotential(lambda q, p: 0.5 * p.k * q[:, 0] ** 2, {"k": 4.0})
    >>> V.grad(torch.tensor([[0.5]], dtype=torch.float64)).tolist()
    [[2.0]]
    """

    def __init__(
        self,
        fn: Callable[[Tensor, SimpleNamespace], Tensor],
        values: Mapping[str, float],
        positive: Iterable[str] = (),
        n_dof: int = 1,
    ) -> None:
        super().__init__()
        self.fn = fn
        self.params = NamedParameters(values, positive)
        self.n_dof = n_dof

    def forward(self, q: Tensor) -> Tensor:
        return self.fn(q, self.params.namespace())

    def grad(self, q: Tensor) -> Tensor:
        """Return ``dV/dq``, shape (batch, n_dof), by autograd."""
        with torch.enable_grad():
            qg = q if q.requires_grad else q.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(
                self.forward(qg).sum(), qg, create_graph=torch.is_grad_enabled()
            )
        return g


class MomentumDamping(AbstractStructureMatrix):
    """Damping on the momentum of a one-degree-of-freedom model, ``r(v) ≥ 0``.

    ``R(x) = diag(0, r(v))`` with ``v = p / m``, so the friction force is
    ``r(v) v``.

    Parameters
    ----------
    fn : callable
        ``fn(v, p) -> r``: ``v`` a Tensor of velocities (any shape), ``p`` the
        parameter namespace; returns ``r`` of the same shape, ``r ≥ 0``.
    values : mapping of str to float
        Initial parameter values.
    positive : iterable of str, default ()
        Parameters that must stay positive.
    mass : float, default 1.0
        The model's (fixed) mass, which turns ``p`` into ``v``.

    Raises
    ------
    NumericsError
        When ``r`` is negative somewhere it is evaluated: the model would
        create energy there. Declare the coefficients ``positive``.

    Examples
    --------
    >>> import torch
    >>> R = MomentumDamping(
    ...     lambda v, p: p.c0 + p.c1 * v**2, {"c0": 0.1, "c1": 0.01},
    ...     positive=["c0", "c1"],
    ... )
    >>> round(R(torch.tensor([[0.0, 10.0]], dtype=torch.float64))[0, 1, 1].item(), 6)
    1.1
    """

    n_states = 2
    state_dependent = True

    def __init__(
        self,
        fn: Callable[[Tensor, SimpleNamespace], Tensor],
        values: Mapping[str, float],
        positive: Iterable[str] = (),
        mass: float = 1.0,
    ) -> None:
        super().__init__()
        self.fn = fn
        self.params = NamedParameters(values, positive)
        self.mass = float(mass)
        self.register_buffer("mask", torch.tensor([0.0, 1.0], dtype=torch.float64))

    def rate(self, p: Tensor) -> Tensor:
        """Return ``r`` at momenta ``p`` (any shape); error where ``r < 0``."""
        r = self.fn(p / self.mass, self.params.namespace())
        r = r * torch.ones_like(p)
        if bool((r.detach() < 0).any()):
            worst = float(r.detach().min())
            raise NumericsError(
                f"`damping`: the law gives r = {worst:.3g} < 0, which creates "
                "energy; write r(v) so that it is non-negative for "
                "every v once the names in `positive` are positive (a sum of "
                "positive terms such as c0 + c1 * v**2, not a difference)"
            )
        return r

    def forward(self, x: Tensor) -> Tensor:
        r = self.rate(x[..., 1])
        zero = torch.zeros_like(r)
        return torch.stack(
            [torch.stack([zero, zero], -1), torch.stack([zero, r], -1)], -2
        )


def mechanical_model(
    potential: Callable[[Tensor, SimpleNamespace], Tensor],
    damping: Callable[[Tensor, SimpleNamespace], Tensor],
    values: Mapping[str, float],
    *,
    positive: Iterable[str] = (),
    gain: float = 1.0,
    mass: float = 1.0,
) -> PortHamiltonian:
    r"""A one-degree-of-freedom mechanical grey-box pH model.

    :math:`H = p^2/(2m) + V(q)`, canonical ``J``, ``R = diag(0, r(v))``,
    ``G = (0, g)^T``. ``V`` and ``r`` are your functions; the mass ``m`` is
    fixed (the input gain ``g`` and the rest of the model scale with it, so
    only their ratios are identifiable); ``g`` is fitted.

    Parameters
    ----------
    potential : callable
        ``potential(q, p) -> V``, ``q`` of shape (batch, 1), result (batch,).
    damping : callable
        ``damping(v, p) -> r``, elementwise in the velocity ``v``, ``r ≥ 0``.
    values : mapping of str to float
        Initial values of every named parameter the two functions use.
    positive : iterable of str, default ()
        Parameters that must stay positive.
    gain : float, default 1.0
        Initial input gain ``g``.
    mass : float, default 1.0
        The fixed mass.

    Returns
    -------
    PortHamiltonian
        Two states ``(q, p)``, one input; ``z = q`` is the measured output.

    Examples
    --------
    A Duffing oscillator with a speed-dependent damping:

    >>> import torch
    >>> import phcontrol as phc
    >>> model = phc.greybox.mechanical_model(
    ...     potential=lambda q, p: (
    ...         p.k1 * q[:, 0] ** 2 / 2 + p.k3 * q[:, 0] ** 4 / 4
    ...     ),
    ...     damping=lambda v, p: p.c0 + p.c1 * v**2,
    ...     values={"k1": 1.0, "k3": 0.1, "c0": 0.05, "c1": 0.01},
    ...     positive=["k3", "c0", "c1"],
    ... )
    >>> sorted(phc.greybox.parameter_values(model))
    ['c0', 'c1', 'gain', 'k1', 'k3']
    """
    values = dict(values)
    # An unknown name in `positive` is refused (by NamedParameters), not
    # dropped: a misspelt name would otherwise leave that parameter free to
    # change sign.
    V = FunctionPotential(potential, values, positive=positive, n_dof=1)
    H = MechanicalHamiltonian(
        1,
        potential=[V],
        mass=torch.tensor([[float(mass)]], dtype=torch.float64),
        learn_mass=False,
    )
    # The damping's parameters are the same objects as the potential's, so
    # a name used by both functions is one parameter.
    R = MomentumDamping(damping, {}, mass=mass)
    R.params = V.params
    G = InputMatrix(
        2,
        1,
        mask=torch.tensor([[0.0], [1.0]]),
        init=torch.tensor([[0.0], [float(gain)]]),
    )
    return PortHamiltonian(H, CanonicalJ(2), R, G).to(torch.float64)


def parameter_values(model: Any) -> dict[str, float]:
    """Return the named parameters of a grey-box model, and its input gain.

    Parameters
    ----------
    model : PortHamiltonian or IdentifiedModel
        A model built by :func:`mechanical_model` (or a fit of one).

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> model = mechanical_model(
    ...     potential=lambda q, p: p.k * q[:, 0] ** 2 / 2,
    ...     damping=lambda v, p: p.c + 0.0 * v,
    ...     values={"k": 2.0, "c": 0.5},
    ...     positive=["c"],
    ...     gain=3.0,
    ... )
    >>> {k: round(v, 6) for k, v in parameter_values(model).items()}
    {'k': 2.0, 'c': 0.5, 'gain': 3.0}
    """
    system = getattr(model, "system", model)
    out: dict[str, float] = {}
    for module in system.modules():
        if isinstance(module, NamedParameters):
            out.update(module.values())
    G = getattr(system, "G", None)
    if isinstance(G, InputMatrix):
        out["gain"] = float(G.weight.detach()[1, 0])
    return out
