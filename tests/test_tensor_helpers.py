"""The small tensor helpers behind the implicit steps agree with plain torch."""

from __future__ import annotations

import math

import torch

from phcontrol._tensor import is_shared, matvec, rowdot, rownorm
from phcontrol.integrators._base import _NewtonSolver


def test_rowdot_and_rownorm_match_reductions() -> None:
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 7):
        a = torch.randn(5, 3, n, generator=g, dtype=torch.float64)
        b = torch.randn(5, 3, n, generator=g, dtype=torch.float64)
        assert rowdot(a, b).shape == (5, 3)
        torch.testing.assert_close(rowdot(a, b), (a * b).sum(-1))
        torch.testing.assert_close(rownorm(a), a.norm(dim=-1))


def test_matvec_takes_the_shared_path_only_for_an_expanded_matrix() -> None:
    g = torch.Generator().manual_seed(1)
    M = torch.randn(3, 2, generator=g, dtype=torch.float64)
    v = torch.randn(6, 2, generator=g, dtype=torch.float64)
    shared = M.expand(6, 3, 2)
    full = shared.clone()
    assert is_shared(shared) and not is_shared(full)
    assert not is_shared(M.expand(1, 3, 2))
    expected = torch.einsum("ij,bj->bi", M, v)
    torch.testing.assert_close(matvec(shared, v), expected)
    torch.testing.assert_close(matvec(full, v), expected)


def test_matvec_passes_gradients_to_a_shared_matrix() -> None:
    M = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    v = torch.ones(4, 2, dtype=torch.float64)
    matvec(M.expand(4, 2, 2), v).sum().backward()
    assert M.grad is not None
    torch.testing.assert_close(M.grad, torch.full((2, 2), 4.0, dtype=torch.float64))


def test_newton_inverse_marks_singular_rows_instead_of_raising() -> None:
    jac = torch.stack(
        [torch.eye(2, dtype=torch.float64) * 2.0, torch.ones(2, 2, dtype=torch.float64)]
    )
    inv = _NewtonSolver.inverse(jac)
    torch.testing.assert_close(inv[0], torch.eye(2, dtype=torch.float64) / 2.0)
    assert all(math.isnan(float(v)) for v in inv[1].flatten())
