"""Structure of J, R and G for any weights: skewness, semidefiniteness, masks."""

from __future__ import annotations

import itertools

import pytest
import torch
from _tol import EIG_ATOL, EPS
from torch import nn

from phcontrol.errors import ShapeError
from phcontrol.structure import (
    CanonicalJ,
    CholeskyDissipation,
    InputMatrix,
    PolynomialDissipation,
    SkewSymmetric,
    mlp,
)

SEEDS = range(4)
SIZES = (1, 2, 3, 5)
BATCHES = (1, 7)
SWEEP = list(itertools.product(SEEDS, SIZES, BATCHES))


def randomise(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Overwrite every floating parameter with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def states(seed: int, batch: int, n: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + seed)
    return scale * torch.randn(batch, n, generator=gen)


# --------------------------------------------------------------------------
# J
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "batch"), SWEEP)
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_skew_symmetric_is_exactly_skew_for_any_weights(
    seed: int, n: int, batch: int, state_dependent: bool, scale: float
) -> None:
    J = randomise(SkewSymmetric(n, state_dependent=state_dependent, hidden=(8,)), seed)
    with torch.no_grad():
        M = J(states(seed, batch, n, scale))
    assert M.shape == (batch, n, n)
    assert torch.equal(M + M.transpose(1, 2), torch.zeros_like(M))
    assert torch.equal(torch.diagonal(M, dim1=1, dim2=2), torch.zeros(batch, n))


def test_skew_symmetric_constant_uses_init_and_ignores_state() -> None:
    S = torch.tensor([[1.0, 2.0], [-3.0, 4.0]])
    J = SkewSymmetric(2, init=S)
    M = J(torch.randn(3, 2))
    expected = torch.tensor([[0.0, 5.0], [-5.0, 0.0]])
    assert torch.equal(M, expected.expand(3, 2, 2))
    assert not J.state_dependent


def test_skew_symmetric_state_dependent_varies_with_state() -> None:
    J = randomise(SkewSymmetric(3, state_dependent=True, hidden=(8,)), 0)
    M = J(torch.randn(2, 3))
    assert not torch.equal(M[0], M[1])


@pytest.mark.parametrize("n", [2, 4, 6])
@pytest.mark.parametrize("batch", BATCHES)
def test_canonical_j_is_the_symplectic_matrix(n: int, batch: int) -> None:
    M = CanonicalJ(n)(torch.randn(batch, n))
    k = n // 2
    eye, zero = torch.eye(k), torch.zeros(k, k)
    expected = torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)])
    assert torch.equal(M, expected.expand(batch, n, n))
    assert torch.equal(M + M.transpose(1, 2), torch.zeros_like(M))
    assert list(CanonicalJ(n).parameters()) == []


@pytest.mark.parametrize("n", [1, 3, 5])
def test_canonical_j_refuses_odd_state_dimension(n: int) -> None:
    with pytest.raises(ShapeError, match=r"`n_states` must be even.*SkewSymmetric"):
        CanonicalJ(n)


def test_canonical_j_follows_state_dtype() -> None:
    M = CanonicalJ(2)(torch.zeros(1, 2, dtype=torch.float32))
    assert M.dtype == torch.float32


# --------------------------------------------------------------------------
# R
# --------------------------------------------------------------------------


def assert_psd(M: torch.Tensor) -> None:
    """Check a batch of matrices is symmetric positive semidefinite to round-off."""
    scale = M.abs().amax(dim=(1, 2)).clamp_min(1.0)
    n = M.shape[-1]
    torch.testing.assert_close(
        M, M.transpose(1, 2), rtol=0.0, atol=float(4 * n * EPS * scale.max())
    )
    eig = torch.linalg.eigvalsh(M)
    assert bool((eig >= -EIG_ATOL * n * scale[:, None]).all()), eig.min()


@pytest.mark.parametrize(("seed", "n", "batch"), SWEEP)
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize("scale", [1.0, 1e2])
def test_cholesky_dissipation_is_psd_for_any_weights(
    seed: int, n: int, batch: int, state_dependent: bool, scale: float
) -> None:
    R = CholeskyDissipation(n, state_dependent=state_dependent, hidden=(8,))
    randomise(R, seed, scale)
    with torch.no_grad():
        M = R(states(seed, batch, n, 10.0))
    assert M.shape == (batch, n, n)
    assert_psd(M)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("state_dependent", [False, True])
@pytest.mark.parametrize(
    "mask",
    [[False, True], [True, False, True], [False, False, False], [0, 1, 1, 0]],
)
def test_masked_dissipation_is_psd_and_zero_outside_mask(
    seed: int, state_dependent: bool, mask: list[bool]
) -> None:
    n = len(mask)
    R = randomise(
        CholeskyDissipation(n, state_dependent=state_dependent, mask=mask, hidden=(8,)),
        seed,
    )
    with torch.no_grad():
        M = R(states(seed, 6, n))
    off = ~torch.tensor(mask, dtype=torch.bool)
    assert torch.equal(M[:, off, :], torch.zeros_like(M[:, off, :]))
    assert torch.equal(M[:, :, off], torch.zeros_like(M[:, :, off]))
    assert_psd(M)


def test_dissipation_factor_is_lower_triangular_and_reproduces_r() -> None:
    R = randomise(CholeskyDissipation(4), 3)
    x = torch.randn(2, 4)
    F = R.factor(x)
    assert torch.equal(F, torch.tril(F))
    assert torch.equal(R(x), F @ F.transpose(1, 2))


def test_constant_dissipation_starts_at_init_scale() -> None:
    R = CholeskyDissipation(3, init_scale=0.5)
    assert torch.equal(R(torch.zeros(1, 3))[0], 0.25 * torch.eye(3))


@pytest.mark.parametrize("mask", [[True], [True, False, True, False], []])
def test_dissipation_refuses_mask_of_wrong_length(mask: list[bool]) -> None:
    with pytest.raises(ShapeError, match=r"`mask` must have one entry per state \(3\)"):
        CholeskyDissipation(3, mask=mask)


# --------------------------------------------------------------------------
# G
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n", "batch"), SWEEP)
@pytest.mark.parametrize("n_inputs", [1, 2])
@pytest.mark.parametrize("state_dependent", [False, True])
def test_input_matrix_has_batch_shape_and_respects_mask(
    seed: int, n: int, batch: int, n_inputs: int, state_dependent: bool
) -> None:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n_inputs, generator=gen) > 0.5
    G = InputMatrix(
        n, n_inputs, state_dependent=state_dependent, mask=mask, hidden=(8,)
    )
    randomise(G, seed)
    with torch.no_grad():
        M = G(states(seed, batch, n))
    assert M.shape == (batch, n, n_inputs)
    assert torch.equal(M[:, ~mask], torch.zeros_like(M[:, ~mask]))
    assert bool((M[:, mask] != 0).all())


def test_input_matrix_uses_init() -> None:
    init = torch.tensor([[0.0], [2.0]])
    G = InputMatrix(2, 1, init=init)
    assert torch.equal(G(torch.randn(4, 2)), init.expand(4, 2, 1))


@pytest.mark.parametrize("shape", [(2, 2), (3, 1), (2,)])
def test_input_matrix_refuses_mask_of_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match=r"`mask` must have shape \(2, 1\)"):
        InputMatrix(2, 1, mask=torch.ones(shape, dtype=torch.bool))


def test_input_matrix_refuses_init_of_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"`init` must have shape \(2, 1\); found"):
        InputMatrix(2, 1, init=torch.zeros(1, 2))


def test_mlp_has_requested_widths() -> None:
    net = mlp(3, 4, hidden=(5, 6), activation=nn.ReLU)
    widths = [m.out_features for m in net if isinstance(m, nn.Linear)]
    assert widths == [5, 6, 4]
    assert sum(isinstance(m, nn.ReLU) for m in net) == 2
    assert net(torch.zeros(2, 3)).shape == (2, 4)


@pytest.mark.parametrize(("seed", "n", "batch"), SWEEP)
def test_polynomial_dissipation_is_diagonal_and_semidefinite(seed, n, batch):
    R = randomise(PolynomialDissipation(n, degree=2), seed, scale=3.0)
    x = states(seed, batch, n, scale=5.0)
    M = R(x)
    assert torch.equal(M, torch.diag_embed(torch.diagonal(M, dim1=1, dim2=2)))
    assert bool((torch.diagonal(M, dim1=1, dim2=2) >= 0).all())


def test_polynomial_dissipation_evaluates_its_even_polynomial():
    c = torch.tensor([[0.2, 0.3, 0.5], [1.0, 2.0, 4.0]])
    R = PolynomialDissipation(2, degree=2, init=c, mask=[False, True])
    x = torch.tensor([[3.0, -1.5]])
    expected = 1.0 + 2.0 * 1.5**2 + 4.0 * 1.5**4
    diag = torch.diagonal(R(x)[0])
    torch.testing.assert_close(diag, torch.tensor([0.0, expected]))
    torch.testing.assert_close(R.coefficients(), c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degree": -1}, "degree"),
        ({"init": torch.ones(3, 2)}, "init"),
        ({"init": torch.zeros(2, 2)}, "positive"),
    ],
)
def test_polynomial_dissipation_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolynomialDissipation(2, **kwargs)
