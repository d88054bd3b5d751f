"""Passivity verdicts, certificates, indices and enforcement."""

from __future__ import annotations

import importlib.util
import math

import control
import numpy as np
import pytest

import phcontrol as phc
from phcontrol.errors import NotSupportedError, ShapeError
from phcontrol.passivity import frequency_sweep, passivity_indices
from phcontrol.passivity._lti import make_lti

# Re-check tolerance of the tests: the library's own tolerance (1e-7 relative).
TOL = 1e-7


def recheck_P(sys, P):
    """Independent re-check of a storage with numpy.linalg.eigvalsh."""
    dt = 0.0
    if isinstance(sys, control.StateSpace):
        A, B, C, D, dt = sys.A, sys.B, sys.C, sys.D, sys.dt or 0.0
    else:
        A, B, C, D = (np.atleast_2d(np.asarray(M, float)) for M in sys)
    if dt:
        M = np.block(
            [
                [A.T @ P @ A - P, A.T @ P @ B - C.T],
                [B.T @ P @ A - C, B.T @ P @ B - D - D.T],
            ]
        )
    else:
        M = np.block([[A.T @ P + P @ A, P @ B - C.T], [B.T @ P - C, -D - D.T]])
    scale = np.linalg.norm(M, 2) + np.linalg.norm(P, 2)
    lam_P = np.linalg.eigvalsh(0.5 * (P + P.T))[0] / np.linalg.norm(P, 2)
    lam_M = np.linalg.eigvalsh(0.5 * (M + M.T))[-1] / max(scale, 1e-300)
    return lam_P >= -TOL and lam_M <= 10 * TOL


def tf(num, den, dt=None):
    return control.tf(num, den) if dt is None else control.tf(num, den, dt)


# fmt: off
# Each case with its answer worked out by hand.
CASES = [
    # 1/(s+1): Re G = 1/(1+w^2) > 0, stable; P = 1 gives M = [[-2, 0], [0, 0]].
    ("first order", tf([1], [1, 1]), "passive"),
    # (s-1)/(s+2): G(0) = -1/2 < 0.
    ("non-minimum phase", tf([1, -1], [1, 2]), "not_passive"),
    # 1/s: pole on the axis, P = 1 makes M = 0 (lossless).
    ("integrator", tf([1], [1, 0]), "passive"),
    # s/(s^2+1): lossless oscillator, P = I in controllable form, M = 0.
    ("lossless oscillator", tf([1, 0], [1, 0, 1]), "passive"),
    # 1/s^2: Re G = -1/w^2 < 0.
    ("double integrator", tf([1], [1, 0, 0]), "not_passive"),
    # 1/(s+1)^2: relative degree 2, phase below -90 deg above w = 1.
    ("relative degree two", tf([1], [1, 2, 1]), "not_passive"),
    # 1 + 1/(s+1): D = 1 > 0 and Re G >= 1.
    ("feedthrough", tf([1, 2], [1, 1]), "passive"),
    # -1: D + D^T = -2 < 0.
    ("negative gain", tf([-1], [1]), "not_passive"),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "system", "verdict"), CASES, ids=[c[0] for c in CASES]
)
def test_verdict_matches_hand_worked_answer(name, system, verdict):
    res = phc.check_passivity(system)
    assert res.verdict == verdict, res.message
    if verdict == "passive":
        assert recheck_P(control.ss(system), res.P)
        assert res.margin >= -TOL


def test_zero_state_zero_feedthrough_is_passive():
    # No states and D = 0: y = 0, so y^T u = 0 >= 0; the empty storage works.
    res = phc.check_passivity(
        (np.zeros((0, 0)), np.zeros((0, 1)), np.zeros((1, 0)), [[0.0]])
    )
    assert res.verdict == "passive"


def test_zero_matrices_with_states_are_passive():
    # A = B = C = D = 0: P = 0 (or any P >= 0) gives M = 0.
    res = phc.check_passivity(
        (np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((1, 2)), [[0.0]])
    )
    assert res.verdict == "passive"


def test_non_square_system_raises_shape_error():
    with pytest.raises(ShapeError, match="as many outputs as inputs"):
        phc.check_passivity(
            (np.eye(2), np.ones((2, 2)), np.ones((1, 2)), np.zeros((1, 2)))
        )


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="`method`"):
        phc.check_passivity(tf([1], [1, 1]), method="magic")


# Non-minimal realisations, worked out by hand.
def _diag2(a1, a2, b, c, d=0.0):
    return (np.diag([a1, a2]), np.array([[b[0]], [b[1]]]), np.array([c]), [[d]])


def test_uncontrollable_stable_mode_is_judged_as_given():
    # x2' = -2 x2 is uncontrollable but seen (C = [1, 1]); with D = 0, P B = C^T
    # forces P = [[1, 1], [1, p]]; p >= 9/8 makes A^T P + P A <= 0: passive.
    res = phc.check_passivity(_diag2(-1.0, -2.0, (1.0, 0.0), [1.0, 1.0]))
    assert res.verdict == "passive", res.message
    assert recheck_P(_diag2(-1.0, -2.0, (1.0, 0.0), [1.0, 1.0]), res.P)


def test_unstable_unobservable_mode_is_passive_with_singular_P():
    # x2' = x2 is controllable but unseen (C = [1, 0]); P = diag(1, 0) works.
    sys = _diag2(-1.0, 1.0, (1.0, 1.0), [1.0, 0.0], 1.0)
    res = phc.check_passivity(sys)
    assert res.verdict == "passive", res.message
    assert recheck_P(sys, res.P)
    assert np.linalg.eigvalsh(res.P)[0] < 1e-6 * np.linalg.norm(res.P)


def test_unstable_observable_uncontrollable_mode_is_not_passive():
    # x2' = x2 is seen by y but not driven: P v = 0 is forced, then C v = 0 fails.
    res = phc.check_passivity(_diag2(-1.0, 1.0, (1.0, 0.0), [1.0, 1.0], 1.0))
    assert res.verdict == "not_passive"
    assert "unstable" in res.message


def test_mimo_system_with_identity_storage():
    # A + A^T = -2I, B = C^T: P = I gives M = diag(-2I, -2D_s) <= 0.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 3))
    A = X - X.T - np.eye(3)
    B = rng.normal(size=(3, 2))
    res = phc.check_passivity((A, B, B.T, np.zeros((2, 2))))
    assert res.verdict == "passive"
    assert recheck_P((A, B, B.T, np.zeros((2, 2))), res.P)
    flipped = phc.check_passivity((A, B, -B.T, np.zeros((2, 2))))
    assert flipped.verdict == "not_passive"


def test_tustin_keeps_passivity_and_zoh_loses_it():
    # Tustin maps the imaginary axis onto the unit circle, so G_d(e^{jwT}) =
    # G(j tan(wT/2) 2/T): passive stays passive. ZOH of 1/(s+1) is
    # (1 - a)/(z - a), a = e^{-T}; at z = -1 it is -(1 - a)/(1 + a) < 0.
    G = tf([1], [1, 1])
    tust = control.c2d(G, 0.1, "tustin")
    zoh = control.c2d(G, 0.1, "zoh")
    res = phc.check_passivity(tust)
    assert res.verdict == "passive" and recheck_P(control.ss(tust), res.P)
    bad = phc.check_passivity(zoh)
    assert bad.verdict == "not_passive"
    assert bad.witness_frequency == pytest.approx(math.pi / 0.1)


def test_tustin_of_lossless_oscillator_is_passive():
    sys = control.ss(control.c2d(tf([1, 0], [1, 0, 1]), 0.1, "tustin"))
    res = phc.check_passivity(sys)
    assert res.verdict == "passive" and recheck_P(sys, res.P)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_index_boundary_flips_the_verdict(sign):
    # G = 1/(s+1) + d has nu = d (the infimum of Re G is d, at w -> inf).
    eps = 1e-4
    d = sign * eps
    res = phc.check_passivity(tf([d, 1 + d], [1, 1]))
    assert res.verdict == ("passive" if sign > 0 else "not_passive"), res.message


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_boundary_without_feedthrough(sign):
    # (s + a)/((s + 1)(s + 2)): Re G(jw) has numerator (2a + 3 - a) ... the
    # frequency term w^2 (3 - a) + 2a, non-negative for all w iff a <= 3.
    a = 3.0 - sign * 1e-3
    res = phc.check_passivity(tf([1, a], [1, 3, 2]))
    assert res.verdict == ("passive" if sign > 0 else "not_passive"), res.message


def test_scaled_time_axis_keeps_the_verdict():
    A0 = np.array([[-1.0, 2.0], [-2.0, -3.0]])
    B = np.array([[1.0], [0.5]])
    for k in (0, 4, 8, 12):
        res = phc.check_passivity((A0 * 10.0**k, B, B.T, [[0.0]]))
        assert res.verdict == "passive", (k, res.message)
        bad = phc.check_passivity((A0 * 10.0**k, B, -B.T, [[0.0]]))
        assert bad.verdict == "not_passive", k


def _random_system(rng, n, m, dt):
    A = rng.normal(size=(n, n))
    A -= (np.abs(np.linalg.eigvals(A).real).max() + 0.3) * np.eye(n)
    if dt:
        A = A / (1.2 * np.abs(np.linalg.eigvals(A)).max())
    B, C = rng.normal(size=(n, m)), rng.normal(size=(m, n))
    D = rng.normal(size=(m, m))
    D = rng.uniform(0.1, 3.0) * D @ D.T + 0.1 * np.eye(m)
    return A, B, C, D


@pytest.mark.parametrize("dt", [0.0, 0.5])
def test_lmi_and_hamiltonian_test_agree_on_random_systems(dt):
    rng = np.random.default_rng(7)
    seen = {"passive": 0, "not_passive": 0}
    for _ in range(12):
        sys = _random_system(rng, int(rng.integers(1, 4)), int(rng.integers(1, 3)), dt)
        lmi = phc.check_passivity(sys, dt=dt, method="lmi")
        try:
            ham = phc.check_passivity(sys, dt=dt, method="hamiltonian")
        except NotSupportedError:
            continue
        assert lmi.verdict == ham.verdict, lmi.message
        seen[lmi.verdict] += 1
        if lmi.verdict == "passive":
            assert recheck_P(control.ss(*sys, dt) if dt else sys, lmi.P)
    assert min(seen.values()) >= 1


def test_hamiltonian_bands_contain_the_negative_frequencies():
    # 0.1 + (s - 1)/((s + 1)(s + 2)) ... negative at low frequency only.
    sys = tf([1.1, 0.3 - 0.0, 1.2 - 1], [1, 3, 2])
    res = phc.check_passivity(sys, method="hamiltonian")
    assert res.verdict == "not_passive" and res.bands
    sweep = frequency_sweep(sys, omega=np.linspace(0.0, 50.0, 2001))
    for w, lam in zip(sweep.omega, sweep.min_eig, strict=True):
        inside = any(lo <= w <= hi for lo, hi in res.bands)
        if lam < -1e-9:
            assert inside, w


def test_hamiltonian_method_refuses_singular_feedthrough():
    with pytest.raises(NotSupportedError, match="D \\+ D\\^T"):
        phc.check_passivity(tf([1], [1, 1]), method="hamiltonian")


def test_riccati_path_is_used_when_feedthrough_is_invertible():
    res = phc.check_passivity(tf([1, 2], [1, 1]))
    assert res.method == "riccati" and res.hamiltonian_verdict == "passive"


def test_linear_ph_model_is_certified_by_Q():
    import torch

    model = phc.PortHamiltonian(
        H=phc.QuadraticHamiltonian(2, Q=torch.diag(torch.tensor([2.0, 0.5]))),
        J=phc.CanonicalJ(2),
        R=None,
        G=phc.InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])),
    )
    res = phc.check_passivity(model)
    assert res.verdict == "passive" and res.method == "structure"
    np.testing.assert_allclose(res.P, model.H.Q.detach().numpy(), rtol=0, atol=0)


def test_learned_model_is_passive_by_construction():
    model = phc.PortHamiltonian(
        phc.MLPHamiltonian(2, hidden=(8,)),
        phc.SkewSymmetric(2, state_dependent=True, hidden=(4,)),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )
    res = phc.check_passivity(model)
    assert res.verdict == "passive", res.message
    assert np.linalg.eigvalsh(res.P)[0] > 0
    # The message names what P is once and reads as one sentence.
    assert res.message.count("linearisation") == 1
    assert "P is the Hessian of H there; re-checked" in res.message


@pytest.mark.skipif(
    importlib.util.find_spec("cvxopt") is None,
    reason="python-control's ispassive needs cvxopt, which is not installed",
)
def test_agrees_with_python_control_on_shared_cases():
    for _, system, verdict in CASES[:3] + CASES[6:7]:
        assert control.ispassive(system) == (verdict == "passive")


def test_indices_of_first_order_lag():
    # G = 1 + 2/(s+1): nu = inf Re G = 1; rho = min Re G/|G|^2 = 1/3 at w = 0;
    # the relative index |(s)/(s+2)|... of S = (1-G)/(1+G) = -1/(s+2): 1/2.
    idx = passivity_indices(tf([1, 3], [1, 1]))
    assert idx.input.value == pytest.approx(1.0, rel=1e-5)
    assert idx.output.value == pytest.approx(1.0 / 3.0, rel=1e-5)
    assert idx.relative.value == pytest.approx(0.5, rel=1e-5)
    for index in (idx.input, idx.output, idx.relative):
        assert index.certified
        assert np.linalg.eigvalsh(index.P)[0] >= -TOL * np.linalg.norm(index.P)


def test_indices_in_discrete_time_match_continuous_under_tustin():
    # Tustin maps the frequency axis one-to-one, so nu and the relative index
    # (frequency-wise quantities) are unchanged.
    idx = passivity_indices(control.c2d(tf([1, 3], [1, 1]), 0.1, "tustin"))
    assert idx.input.value == pytest.approx(1.0, rel=1e-4)
    assert idx.relative.value == pytest.approx(0.5, rel=1e-4)


def test_enforcement_returns_a_passive_model_close_to_the_original():
    G = tf([1, -0.5], [1, 1])  # G(0) = -0.5
    res = phc.enforce_passivity(G)
    assert res.check.verdict == "passive"
    assert recheck_P(res.system, res.check.P)
    assert res.perturbation > 0 and res.frequency_change > 0
    assert res.frequency_change < 1.5
    np.testing.assert_allclose(res.system.A, control.ss(G).A)


def test_enforcement_leaves_passive_models_alone():
    res = phc.enforce_passivity(tf([1], [1, 1]))
    assert res.perturbation == 0.0 and res.solver_status is None


def test_frequency_sweep_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    from phcontrol.passivity import plot_frequency_sweep

    sweep = frequency_sweep(tf([1, -1], [1, 2]), n_points=50)
    assert sweep.omega.shape == sweep.min_eig.shape == (50,)
    ax = plot_frequency_sweep(sweep)
    assert ax.get_ylabel() == "min eig of G + G^H"


def test_make_lti_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        make_lti([[np.nan]], [[1.0]], [[1.0]], [[0.0]])


def test_certificate_round_trip_and_tampering(tmp_path):
    from phcontrol.io import save
    from phcontrol.passivity import verify_certificate, write_certificate

    model = phc.PortHamiltonian(
        phc.MLPHamiltonian(2, hidden=(8,)),
        phc.CanonicalJ(2),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )
    save(model, tmp_path / "m.safetensors")
    cert = write_certificate(tmp_path / "m.safetensors", tmp_path / "c.json", steps=10)
    assert cert.verdict == "passive", cert.problems
    assert "J(x) is skew-symmetric" in cert.by_construction
    assert any("energy balance" in s for s in cert.sampled)
    again = verify_certificate(tmp_path / "c.json")
    assert again.verdict == "passive", again.problems
    P = np.asarray(cert.data["equilibria"][0]["P"])
    assert np.linalg.eigvalsh(P)[0] > 0
    # A different model file under the same name must be caught.
    other = phc.PortHamiltonian(
        phc.MLPHamiltonian(2, hidden=(8,)),
        phc.CanonicalJ(2),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )
    save(other, tmp_path / "m.safetensors")
    bad = verify_certificate(tmp_path / "c.json")
    assert bad.verdict == "undecided"
    assert any("SHA-256" in p for p in bad.problems)


def _random_ph(rng, n, m):
    """A random linear pH system with D = 0: passive with storage Q."""
    X = rng.normal(size=(n, n))
    L = rng.normal(size=(n, n)) / np.sqrt(n)
    Y = rng.normal(size=(n, n)) / np.sqrt(n)
    Q = Y @ Y.T + 0.5 * np.eye(n)
    G = rng.normal(size=(n, m))
    return (X - X.T - L @ L.T - 0.1 * np.eye(n)) @ Q, G, G.T @ Q, np.zeros((m, m))


def test_reduced_lmi_is_the_kyp_block_on_the_affine_set():
    # P = P0 + N X N^T satisfies P B U0 = C^T U0; in the basis (N, Qb, U1) the
    # KYP block is [[A_r^T X + X A_r + Q_c, X B_r + S], [., -W_r]] and its
    # rows along the ports U0 vanish.
    from phcontrol.passivity._kyp import null_split, reduce_kyp
    from phcontrol.passivity._lti import kyp_block

    rng = np.random.default_rng(3)
    A, B, C, _ = _random_ph(rng, 5, 3)
    D = np.diag([0.0, 0.0, 1.0])  # D + D^T singular along two ports
    sys = make_lti(A, B, C + D @ rng.normal(size=(3, 5)), D)
    red = reduce_kyp(sys)
    assert red.N.shape == (5, 3)
    X = rng.normal(size=(3, 3))
    X = X + X.T
    P = red.storage(X)
    _, _, U0 = null_split(2 * D, 1.0)
    np.testing.assert_allclose(P @ sys.B @ U0, sys.C.T @ U0, rtol=0, atol=1e-12)
    M, _ = kyp_block(sys, P)
    top = np.hstack([red.A.T @ X + X @ red.A + red.Q, X @ red.B + red.S])
    low = np.hstack([(X @ red.B + red.S).T, -red.W])
    np.testing.assert_allclose(
        red.basis.T @ M @ red.basis, np.vstack([top, low]), rtol=0, atol=1e-10
    )
    ports = np.vstack([np.zeros((5, 2)), U0])
    np.testing.assert_allclose(M @ ports, 0.0, rtol=0, atol=1e-12)
    full = np.hstack([red.basis, ports])
    np.testing.assert_allclose(full.T @ full, np.eye(8), rtol=0, atol=1e-12)


def test_riccati_shortcut_certifies_systems_without_feedthrough():
    # D = 0: P B = C^T is eliminated and the reduced Riccati equation gives P.
    rng = np.random.default_rng(5)
    sys = _random_ph(rng, 8, 2)
    res = phc.check_passivity(sys)
    assert res.verdict == "passive" and res.method == "riccati", res.message
    assert recheck_P(sys, res.P)
    np.testing.assert_allclose(res.P @ sys[1], sys[2].T, rtol=0, atol=1e-9)
    assert phc.check_passivity(sys, method="lmi").verdict == "passive"


def test_clarabel_solves_the_lmi_without_feedthrough_itself():
    # With the equality eliminated Clarabel no longer stops on a numerical
    # error (it used to, and SCS took over).
    from phcontrol.passivity._kyp import solve_lmi
    from phcontrol.passivity._lti import balance, recheck

    bal, _ = balance(make_lti(*_random_ph(np.random.default_rng(6), 6, 2)))
    sol = solve_lmi(bal, solver="CLARABEL")
    assert (sol.solver, sol.status) == ("CLARABEL", "optimal")
    assert recheck(bal, sol.P, TOL).ok


def test_second_markov_parameter_refutes_without_feedthrough():
    # (s + 5)/(s + 1)^2 = 1/s + 3/s^2 + ...: C B = 1 but C A B = 3 > 0, and
    # every storage has B^T (A^T P + P A) B = 2 C A B; Re G(jw) < 0 for
    # w^2 > 5/3.
    res = phc.check_passivity(tf([1, 5], [1, 2, 1]))
    assert res.verdict == "not_passive" and res.method == "witness"
    assert "C A B" in res.message


def test_frequency_sweep_refutes_before_any_sdp():
    # (s^2 + s + 4)/(s + 1)^3: C B = 1, C A B = -2 < 0, so no cheap witness
    # and no Riccati storage passes the re-check; Re G(j) = -1/2.
    res = phc.check_passivity(tf([1, 1, 4], [1, 3, 3, 1]))
    assert res.verdict == "not_passive" and res.solver_status is None
    assert res.witness_frequency == pytest.approx(1.0, rel=0.05)


def test_riccati_method_refuses_a_singular_fixed_block():
    # s/(s^2 + 1): C A B = 0, so -W_r = 0 and the Riccati equation is void.
    with pytest.raises(NotSupportedError, match="Riccati shortcut does not apply"):
        phc.check_passivity(tf([1, 0], [1, 0, 1]), method="riccati")
