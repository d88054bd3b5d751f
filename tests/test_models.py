"""Models: the power balance for any weights, shapes, and checked arguments."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from _tol import EPS
from torch import nn

from phcontrol.errors import NotSupportedError, ShapeError
from phcontrol.hamiltonians import (
    MechanicalHamiltonian,
    MLPHamiltonian,
    MLPPotential,
    PolynomialPotential,
    QuadraticHamiltonian,
)
from phcontrol.models import HNN, NeuralODE, PortHamiltonian
from phcontrol.structure import (
    CanonicalJ,
    CholeskyDissipation,
    InputMatrix,
    SkewSymmetric,
)

SEEDS = range(3)
BATCHES = (1, 8)
# The balance is a sum of a few hundred roundings of terms of size ``scale``.
BALANCE_RTOL = 64 * EPS


def randomise(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Overwrite every floating parameter with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def model_quadratic(sd: bool) -> PortHamiltonian:
    return PortHamiltonian(
        H=QuadraticHamiltonian(3, learn_equilibrium=True),
        J=SkewSymmetric(3, state_dependent=sd, hidden=(8,)),
        R=CholeskyDissipation(3, state_dependent=sd, hidden=(8,)),
        G=InputMatrix(3, 2, state_dependent=sd, hidden=(8,)),
    )


def model_mlp(sd: bool) -> PortHamiltonian:
    return PortHamiltonian(
        H=MLPHamiltonian(4, hidden=(8, 8)),
        J=SkewSymmetric(4, state_dependent=sd, hidden=(8,)),
        R=CholeskyDissipation(4, state_dependent=sd, mask=[1, 0, 1, 1], hidden=(8,)),
        G=InputMatrix(4, 1, state_dependent=sd, hidden=(8,)),
    )


def model_mechanical(sd: bool) -> PortHamiltonian:
    pots = [PolynomialPotential(2, degree=4), MLPPotential(2, hidden=(8,))]
    return PortHamiltonian(
        H=MechanicalHamiltonian(2, potential=pots, state_dependent_mass=sd),
        J=CanonicalJ(4),
        R=CholeskyDissipation(4, state_dependent=sd, mask=[0, 0, 1, 1], hidden=(8,)),
        G=InputMatrix(4, 2, mask=torch.tensor([[0, 0], [0, 0], [1, 0], [1, 1]])),
    )


BUILDERS: dict[str, Callable[[bool], PortHamiltonian]] = {
    "quadratic": model_quadratic,
    "mlp": model_mlp,
    "mechanical": model_mechanical,
}


def balance_terms(
    model: PortHamiltonian, x: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return dH/dt along the vector field, its predicted value, and a scale."""
    with torch.no_grad():
        g = model.grad_energy(x)
        dH = (g * model.vector_field(x, u)).sum(-1)
        R = model.R_matrix(x)
        dissipated = (g * (R @ g.unsqueeze(-1)).squeeze(-1)).sum(-1)
        supplied = (model.output(x) * u).sum(-1)
        J, G = model.J_matrix(x), model.G_matrix(x)
        gabs = g.abs().unsqueeze(-1)
        # Sizes of every product that enters the sums above.
        scale = (
            (gabs.transpose(1, 2) @ (J.abs() + R.abs()) @ gabs).reshape(-1)
            + (gabs.transpose(1, 2) @ G.abs() @ u.abs().unsqueeze(-1)).reshape(-1)
            + 1e-300
        )
    return dH, supplied - dissipated, scale


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("batch", BATCHES)
def test_power_balance_holds_for_any_weights(
    kind: str, state_dependent: bool, seed: int, batch: int
) -> None:
    model = randomise(BUILDERS[kind](state_dependent), seed)
    gen = torch.Generator().manual_seed(100 + seed)
    x = 2.0 * torch.randn(batch, model.n_states, generator=gen)
    u = torch.randn(batch, model.n_inputs, generator=gen)
    dH, predicted, scale = balance_terms(model, x, u)
    assert bool(((dH - predicted).abs() <= BALANCE_RTOL * scale).all()), (
        (dH - predicted).abs() / scale
    ).max()
    # Passivity: the stored energy grows no faster than the supplied power.
    supplied = (model.output(x) * u).sum(-1).detach()
    assert bool((dH <= supplied + BALANCE_RTOL * scale).all())


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_energy_is_conserved_without_dissipation_and_input(
    kind: str, state_dependent: bool, seed: int
) -> None:
    full = randomise(BUILDERS[kind](state_dependent), seed)
    lossless = PortHamiltonian(H=full.H, J=full.J, R=None, G=full.G)
    x = 2.0 * torch.randn(8, full.n_states)
    u = torch.zeros(8, full.n_inputs)
    dH, predicted, scale = balance_terms(lossless, x, u)
    assert torch.equal(predicted, torch.zeros(8))
    assert bool((dH.abs() <= BALANCE_RTOL * scale).all())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dissipation", [False, True])
def test_hnn_conserves_or_dissipates_energy(seed: int, dissipation: bool) -> None:
    model = randomise(HNN(4, hidden=(8,), dissipation=dissipation), seed)
    x = torch.randn(8, 4)
    dH, predicted, scale = balance_terms(model, x, torch.zeros(8, 0))
    assert bool(((dH - predicted).abs() <= BALANCE_RTOL * scale).all())
    if dissipation:
        assert bool((dH <= BALANCE_RTOL * scale).all())
    else:
        assert bool((dH.abs() <= BALANCE_RTOL * scale).all())


def test_mass_spring_damper_vector_field_is_textbook() -> None:
    model = PortHamiltonian(
        H=QuadraticHamiltonian(2, Q=torch.diag(torch.tensor([4.0, 0.5])), eps=0.0),
        J=CanonicalJ(2),
        R=CholeskyDissipation(2, mask=[False, True], init_scale=0.5**0.5),
        G=InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])),
    )
    # q' = p/m, p' = -k q - c p/m + u with k = 4, m = 2, c = 0.5.
    x = torch.tensor([[0.3, -1.2]])
    u = torch.tensor([[0.7]])
    q, p = 0.3, -1.2
    expected = torch.tensor([[p / 2.0, -4.0 * q - 0.5 * p / 2.0 + 0.7]])
    torch.testing.assert_close(
        model.vector_field(x, u), expected, rtol=16 * EPS, atol=16 * EPS
    )
    torch.testing.assert_close(
        model.output(x), torch.tensor([[p / 2.0]]), rtol=16 * EPS, atol=16 * EPS
    )


# --------------------------------------------------------------------------
# Interface and shapes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_model_methods_have_documented_shapes(kind: str) -> None:
    model = BUILDERS[kind](False)
    n, m = model.n_states, model.n_inputs
    x, u = torch.randn(5, n), torch.randn(5, m)
    assert model.energy(x).shape == (5,)
    assert model.grad_energy(x).shape == (5, n)
    assert model.vector_field(x, u).shape == (5, n)
    assert model(x, u).shape == (5, n)
    assert model.output(x).shape == (5, m)
    assert model.J_matrix(x).shape == (5, n, n)
    assert model.R_matrix(x).shape == (5, n, n)
    assert model.G_matrix(x).shape == (5, n, m)


def test_single_state_vector_gains_a_batch_axis() -> None:
    model = model_quadratic(False)
    x, u = torch.randn(3), torch.randn(2)
    torch.testing.assert_close(
        model.vector_field(x, u), model.vector_field(x[None], u[None])
    )
    assert model.energy(x).shape == (1,)


def test_one_input_row_is_shared_by_the_batch() -> None:
    model = model_quadratic(False)
    x, u = torch.randn(4, 3), torch.randn(1, 2)
    torch.testing.assert_close(
        model.vector_field(x, u), model.vector_field(x, u.expand(4, 2))
    )


def test_missing_input_means_zero_input() -> None:
    model = model_mlp(False)
    x = torch.randn(4, 4)
    assert torch.equal(model.vector_field(x), model.vector_field(x, torch.zeros(4, 1)))


def test_autonomous_model_has_no_inputs() -> None:
    model = PortHamiltonian(H=QuadraticHamiltonian(2), J=CanonicalJ(2))
    x = torch.randn(3, 2)
    assert model.n_inputs == 0
    assert model.output(x).shape == (3, 0)
    assert model.G_matrix(x).shape == (3, 2, 0)
    assert torch.equal(model.R_matrix(x), torch.zeros(3, 2, 2))


def test_hnn_is_canonical_and_lossless() -> None:
    model = HNN(2, hidden=(8,))
    assert isinstance(model.J, CanonicalJ)
    assert model.R is None and model.G is None
    assert isinstance(model.H, MLPHamiltonian)


def test_neural_ode_shapes_and_zero_input() -> None:
    f = NeuralODE(3, 2, hidden=(8,))
    x = torch.randn(4, 3)
    assert f.vector_field(x, torch.randn(4, 2)).shape == (4, 3)
    assert torch.equal(f.vector_field(x), f.vector_field(x, torch.zeros(4, 2)))
    assert f(x).shape == (4, 3)


def test_neural_ode_has_no_energy() -> None:
    with pytest.raises(NotSupportedError, match=r"NeuralODE has no energy"):
        NeuralODE(2, 1).energy(torch.zeros(1, 2))


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 2), (4, 4), (4, 3, 1), (3, 4, 3), (2,), (0,)])
def test_wrong_state_shape_is_refused(shape: tuple[int, ...]) -> None:
    model = model_quadratic(False)
    x = torch.zeros(shape)
    for method in (model.energy, model.grad_energy, model.vector_field, model.output):
        with pytest.raises(ShapeError, match=r"`x` must have shape \(batch, 3\)"):
            method(x)


def test_integer_state_is_refused() -> None:
    model = model_quadratic(False)
    with pytest.raises(ShapeError, match=r"`x` must be a floating tensor"):
        model.vector_field(torch.zeros(2, 3, dtype=torch.int64))


def test_state_that_is_not_a_tensor_is_refused() -> None:
    with pytest.raises(TypeError, match=r"`x` must be a torch.Tensor"):
        model_quadratic(False).energy([[0.0, 0.0, 0.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(4, 3), (4, 1), (3, 2), (2, 2), (3,), (4, 1, 2)])
def test_wrong_input_shape_is_refused(shape: tuple[int, ...]) -> None:
    model = model_quadratic(False)
    with pytest.raises(ShapeError, match=r"`u` must have shape \(batch, 2\)"):
        model.vector_field(torch.zeros(4, 3), torch.zeros(shape))


@pytest.mark.parametrize("part", ["J", "R", "G"])
def test_parts_built_for_other_sizes_are_refused(part: str) -> None:
    parts: dict[str, nn.Module] = {
        "H": QuadraticHamiltonian(3),
        "J": SkewSymmetric(3),
        "R": CholeskyDissipation(3),
        "G": InputMatrix(3, 1),
    }
    parts[part] = {
        "J": SkewSymmetric(2),
        "R": CholeskyDissipation(4),
        "G": InputMatrix(2, 1),
    }[part]
    with pytest.raises(ShapeError, match=rf"`{part}` is built for .* same n_states"):
        PortHamiltonian(**parts)  # type: ignore[arg-type]


def test_hnn_refuses_odd_state_dimension() -> None:
    with pytest.raises(ShapeError, match=r"must be even"):
        HNN(3)
