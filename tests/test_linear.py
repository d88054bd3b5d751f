"""Linear pH models and state-space conversion."""

from __future__ import annotations

import control
import numpy as np
import pytest
import torch

import phcontrol as phc
from phcontrol.errors import NotSupportedError
from phcontrol.linear import LinearPortHamiltonian

# Round trips must keep the transfer function to 1e-9 relative.
RT_RTOL = 1e-9


def _random_lph(rng, n, m, feedthrough):
    X = rng.normal(size=(n, n))
    Z = rng.normal(size=(n + m, n + m))
    Z = 0.3 * Z @ Z.T
    Y = rng.normal(size=(n, n))
    K = Z[:n, n:] if feedthrough else np.zeros((n, m))
    S = Z[n:, n:] if feedthrough else np.zeros((m, m))
    N = (lambda V: V - V.T)(rng.normal(size=(m, m))) if feedthrough else None
    return LinearPortHamiltonian.from_matrices(
        X - X.T, Z[:n, :n], Y @ Y.T + 0.5 * np.eye(n), rng.normal(size=(n, m)), K, S, N
    )


def _max_rel_error(sys1, sys2):
    w = np.concatenate([[0.0], np.logspace(-3, 3, 200)])
    g1 = np.array([np.atleast_2d(sys1(1j * x)) for x in w])
    g2 = np.array([np.atleast_2d(sys2(1j * x)) for x in w])
    num = np.linalg.norm(g1 - g2, axis=(1, 2))
    return float(np.max(num / np.linalg.norm(g1, axis=(1, 2))))


@pytest.mark.parametrize("feedthrough", [False, True])
def test_round_trip_keeps_transfer_function(feedthrough):
    rng = np.random.default_rng(2)
    for _ in range(3):
        lph = _random_lph(rng, 4, 2, feedthrough)
        sys = lph.to_state_space()
        back = phc.from_state_space(sys)
        assert _max_rel_error(sys, back.to_state_space()) < RT_RTOL
        assert np.linalg.eigvalsh(back.dissipation_block())[0] >= -1e-10
        assert np.abs(back.J + back.J.T).max() == 0.0
        assert np.linalg.eigvalsh(back.Q)[0] > 0


def test_model_round_trip_through_port_hamiltonian():
    rng = np.random.default_rng(3)
    lph = _random_lph(rng, 3, 1, False)
    model = lph.to_model()
    sys = phc.to_state_space(model)
    assert _max_rel_error(lph.to_state_space(), sys) < RT_RTOL
    res = phc.check_passivity(model)
    assert res.verdict == "passive" and res.method == "structure"


def test_feedthrough_model_cannot_become_port_hamiltonian():
    lph = _random_lph(np.random.default_rng(4), 2, 1, True)
    with pytest.raises(NotSupportedError, match="feedthrough"):
        lph.to_model()


def test_non_minimal_system_is_refused_with_advice():
    # x2 is uncontrollable and unobservable: every storage has P[1, 1] free,
    # P = diag(1, 0) included; we build the case where P must be singular:
    # unstable unobservable mode forces P v = 0.
    sys = control.ss(np.diag([-1.0, 1.0]), [[1.0], [1.0]], [[1.0, 0.0]], [[1.0]])
    with pytest.raises(ValueError, match="minreal"):
        phc.from_state_space(sys)


def test_non_passive_system_is_refused():
    with pytest.raises(ValueError, match="enforce_passivity"):
        phc.from_state_space(control.tf([1, -1], [1, 2]))


def test_learned_model_linearisation_matches_finite_differences():
    model = phc.PortHamiltonian(
        phc.MLPHamiltonian(2, hidden=(8,)),
        phc.SkewSymmetric(2, state_dependent=True, hidden=(4,)),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )
    from phcontrol.linear import minimise_energy

    x_eq = minimise_energy(model)
    sys = phc.to_state_space(model, x_eq=x_eq)
    h = 1e-6
    x = torch.tensor(x_eq).reshape(1, -1)
    for i in range(2):
        e = torch.zeros(1, 2, dtype=x.dtype)
        e[0, i] = h
        with torch.no_grad():
            col = (model.vector_field(x + e) - model.vector_field(x - e)) / (2 * h)
        np.testing.assert_allclose(sys.A[:, i], col[0].numpy(), rtol=1e-5, atol=1e-7)
    res = phc.check_passivity(sys)
    assert res.verdict == "passive", res.message


def test_linearisation_refuses_non_equilibrium():
    model = phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2), phc.CanonicalJ(2), None, phc.InputMatrix(2, 1)
    )
    with pytest.raises(ValueError, match="equilibrium"):
        phc.to_state_space(model, x_eq=[1.0, 0.0])
