"""Energies: bounded below by their floor, exact gradients, checked arguments."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from _tol import ATOL, EPS, RTOL
from torch import nn

from phcontrol.errors import ShapeError
from phcontrol.hamiltonians import (
    AbstractHamiltonian,
    MechanicalHamiltonian,
    MLPHamiltonian,
    MLPPotential,
    PolynomialPotential,
    QuadraticHamiltonian,
    QuadraticPotential,
)

SEEDS = range(4)
BATCHES = (1, 9)
# Far-away points probe the growth of each energy: tanh parts saturate and
# only the floor (quadratic or polynomial) is left.
SCALES = (1.0, 30.0, 1e4)


def randomise(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Overwrite every floating parameter with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def samples(seed: int, batch: int, n: int, scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + seed)
    return scale * torch.randn(batch, n, generator=gen)


def quadratic(n: int) -> AbstractHamiltonian:
    return QuadraticHamiltonian(n, learn_equilibrium=True)


def mlp_energy(n: int) -> AbstractHamiltonian:
    return MLPHamiltonian(n, hidden=(8, 8))


def mechanical_poly_mlp(n: int) -> AbstractHamiltonian:
    k = n // 2
    pots = [PolynomialPotential(k, degree=4), MLPPotential(k, hidden=(8,))]
    return MechanicalHamiltonian(k, potential=pots)


def mechanical_state_mass(n: int) -> AbstractHamiltonian:
    k = n // 2
    pots = [PolynomialPotential(k, degree=2), MLPPotential(k, hidden=(8,))]
    return MechanicalHamiltonian(k, potential=pots, state_dependent_mass=True)


ENERGIES: dict[str, Callable[[int], AbstractHamiltonian]] = {
    "quadratic": quadratic,
    "mlp": mlp_energy,
    "mechanical": mechanical_poly_mlp,
    "mechanical_state_mass": mechanical_state_mass,
}


def autograd_gradient(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    xg = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xg).sum(), xg)
    return g


# --------------------------------------------------------------------------
# Bounded below, for any weights
# --------------------------------------------------------------------------


def test_lower_bound_of_trainable_energy_is_a_float_without_warning() -> None:
    # Reading a bound must not go through autograd: converting a tensor that
    # requires grad to a float warns, and warnings are errors here.
    for energy in (MLPHamiltonian(2, hidden=(4,)), MLPPotential(2, hidden=(4,))):
        bound = energy.lower_bound()
        assert isinstance(bound, float)
        assert bound <= 0.0


@pytest.mark.parametrize("kind", list(ENERGIES))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("scale", SCALES)
def test_energy_is_never_below_its_lower_bound(
    kind: str, seed: int, n: int, scale: float
) -> None:
    H = randomise(ENERGIES[kind](n), seed)
    bound = H.lower_bound()
    assert np.isfinite(bound)
    with torch.no_grad():
        values = H(samples(seed, 64, n, scale))
    assert values.shape == (64,)
    assert bool(torch.isfinite(values).all())
    assert bool((values >= bound).all()), (float(values.min()), bound)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 3])
def test_potentials_are_never_below_their_lower_bound(seed: int, n: int) -> None:
    for V in (
        PolynomialPotential(n, degree=6),
        MLPPotential(n, hidden=(8, 8)),
        QuadraticPotential(torch.diag(torch.rand(n))),
    ):
        randomise(V, seed)
        bound = V.lower_bound()
        for scale in SCALES:
            with torch.no_grad():
                values = V(samples(seed, 64, n, scale))
            assert bool((values >= bound).all()), (type(V).__name__, scale)


def test_quadratic_energy_lower_bound_is_reached_at_equilibrium() -> None:
    H = randomise(QuadraticHamiltonian(3, learn_equilibrium=True), 1)
    assert H(H.x0.detach()[None]).item() == H.lower_bound() == 0.0


def test_mlp_energy_bound_is_the_output_layer_norm() -> None:
    H = randomise(MLPHamiltonian(2, hidden=(4,)), 2)
    w, b = H.net.out.weight.detach(), H.net.out.bias.detach()
    assert H.lower_bound() == -float(w.abs().sum() + b.abs().sum())


# --------------------------------------------------------------------------
# PolynomialPotential's bound is the true minimum
# --------------------------------------------------------------------------


def grid_minimum(coefficients: np.ndarray) -> float:
    """Minimum of a 1-D polynomial on a dense grid, refined around the best point."""
    poly = np.polynomial.Polynomial(np.concatenate([[0.0], coefficients]))
    # Cauchy's bound contains every root of the derivative, hence the minimiser.
    d = poly.deriv().coef
    radius = 1.0 + float(np.max(np.abs(d[:-1] / d[-1])))
    grid = np.linspace(-radius, radius, 200_001)
    best = grid[np.argmin(poly(grid))]
    step = grid[1] - grid[0]
    fine = np.linspace(best - step, best + step, 20_001)
    return float(poly(fine).min())


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("degree", [2, 4, 6])
def test_polynomial_lower_bound_is_the_true_minimum(seed: int, degree: int) -> None:
    V = randomise(PolynomialPotential(2, degree=degree), seed)
    coefficients = V.coefficients().detach().numpy()
    expected = sum(grid_minimum(c) for c in coefficients)
    bound = V.lower_bound()
    assert bound <= expected
    # The bound subtracts a safety margin of 1e-9 (1 + |min|); the refined
    # grid is accurate to well below that.
    assert expected - bound <= 2e-9 * (1.0 + abs(expected))


def test_polynomial_lower_bound_of_a_quadratic_is_closed_form() -> None:
    c = torch.tensor([[3.0, 0.5], [-1.0, 2.0]])
    V = PolynomialPotential(2, degree=2, coefficients=c)
    expected = sum(-(float(b) ** 2) / (4.0 * float(a)) for b, a in c)
    assert V.lower_bound() == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_polynomial_keeps_given_coefficients() -> None:
    c = torch.tensor([[0.1, -0.2, 0.3, 0.4]])
    V = PolynomialPotential(1, degree=4, coefficients=c)
    torch.testing.assert_close(V.coefficients(), c, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# Hand-written gradients equal autograd
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ENERGIES))
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("batch", BATCHES)
def test_energy_gradient_equals_autograd(
    kind: str, seed: int, n: int, batch: int
) -> None:
    H = randomise(ENERGIES[kind](n), seed)
    x = samples(seed, batch, n, 2.0)
    expected = autograd_gradient(H, x)
    got = H.grad(x)
    assert got.shape == (batch, n)
    scale = float(expected.abs().max()) + 1.0
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL * scale)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 3])
def test_potential_gradient_equals_autograd(seed: int, n: int) -> None:
    K = torch.randn(n, n)
    for V in (
        PolynomialPotential(n, degree=4),
        PolynomialPotential(n, degree=8),
        MLPPotential(n, hidden=(8, 8)),
        QuadraticPotential(K @ K.T, q0=torch.randn(n)),
    ):
        randomise(V, seed)
        q = samples(seed, 9, n, 2.0)
        expected = autograd_gradient(V, q)
        scale = float(expected.abs().max()) + 1.0
        torch.testing.assert_close(V.grad(q), expected, rtol=RTOL, atol=ATOL * scale)


def test_gradient_is_differentiable_for_training() -> None:
    H = randomise(MLPHamiltonian(2, hidden=(4,)), 0)
    x = torch.randn(3, 2)
    H.grad(x).square().sum().backward()
    # The output bias shifts H but not its gradient; every other weight counts.
    for name, p in H.named_parameters():
        assert (p.grad is None) == (name == "net.out.bias"), name


def test_quadratic_energy_reproduces_q() -> None:
    A = torch.randn(3, 3)
    Q = A @ A.T + torch.eye(3)
    H = QuadraticHamiltonian(3, Q=Q, eps=1e-6)
    torch.testing.assert_close(H.Q, Q, rtol=16 * EPS, atol=16 * EPS * 10)
    x = torch.randn(4, 3)
    torch.testing.assert_close(H(x), 0.5 * ((x @ Q) * x).sum(-1), rtol=RTOL, atol=ATOL)


def test_mechanical_energy_is_kinetic_plus_potential() -> None:
    M = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    V = PolynomialPotential(2, degree=2)
    H = MechanicalHamiltonian(2, potential=V, mass=M)
    x = torch.randn(5, 4)
    q, p = x[:, :2], x[:, 2:]
    kinetic = 0.5 * (p * torch.linalg.solve(M, p.T).T).sum(-1)
    torch.testing.assert_close(H(x), kinetic + V(q), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(H.mass(q), M.expand(5, 2, 2), rtol=RTOL, atol=ATOL)


def test_mechanical_state_dependent_mass_is_positive_definite() -> None:
    H = randomise(mechanical_state_mass(4), 0)
    M = H.mass(samples(0, 16, 2, 5.0))
    assert bool((torch.linalg.eigvalsh(M) >= H.eps * (1 - 1e-6)).all())
    assert not H.separable


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------


def test_quadratic_refuses_q_of_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"`Q` must have shape \(2, 2\); found"):
        QuadraticHamiltonian(2, Q=torch.eye(3))


@pytest.mark.parametrize(
    "Q",
    [
        torch.tensor([[1.0, 0.0], [0.0, -1.0]]),
        torch.tensor([[1.0, 2.0], [2.0, 1.0]]),
        torch.zeros(2, 2),
    ],
)
def test_quadratic_refuses_q_not_positive_definite(Q: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"`Q` must be symmetric positive definite"):
        QuadraticHamiltonian(2, Q=Q)


def test_quadratic_refuses_non_symmetric_q() -> None:
    # Only the lower triangle reaches the Cholesky factor, so an asymmetric Q
    # would silently become a different matrix.
    Q = torch.tensor([[2.0, 5.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match=r"`Q` must be symmetric"):
        QuadraticHamiltonian(2, Q=Q)


def test_mechanical_refuses_potential_of_other_size() -> None:
    with pytest.raises(ShapeError, match=r"has n_dof=2; expected 1"):
        MechanicalHamiltonian(1, potential=[PolynomialPotential(2)])


def test_mechanical_refuses_mass_not_positive_definite() -> None:
    with pytest.raises(ValueError, match=r"mass"):
        MechanicalHamiltonian(
            1, potential=PolynomialPotential(1), mass=torch.tensor([[-1.0]])
        )


@pytest.mark.parametrize("degree", [0, 1, 3, 5])
def test_polynomial_refuses_odd_degree(degree: int) -> None:
    with pytest.raises(ValueError, match=r"`degree` must be even and >= 2"):
        PolynomialPotential(1, degree=degree)


def test_polynomial_refuses_coefficients_of_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"`coefficients` must have shape \(2, 4\)"):
        PolynomialPotential(2, degree=4, coefficients=torch.ones(1, 4))


@pytest.mark.parametrize("lead", [0.0, -1.0])
def test_polynomial_refuses_non_positive_leading_coefficient(lead: float) -> None:
    with pytest.raises(ValueError, match=r"leading coefficient .* must exceed"):
        PolynomialPotential(1, degree=2, coefficients=torch.tensor([[1.0, lead]]))
