"""Closed-loop certificates and gain synthesis: both sides of each verdict."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from phcontrol import plants
from phcontrol.control import (
    PIPBC,
    EnergyPumping,
    EnergyShaping,
    certify_closed_loop,
    closed_loop,
    lyapunov_lmi,
    synthesize_shaping_gains,
    verify_closed_loop_certificate,
    wheel_pendulum_ida_pbc,
)
from phcontrol.errors import ModelFileError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def arm_loop():
    arm = plants.two_link_arm()
    return closed_loop(arm, EnergyShaping(arm, [0.5, -0.3], 20.0, 5.0))


def test_energy_shaping_loop_is_certified_and_every_number_rechecks(arm_loop):
    cert = certify_closed_loop(arm_loop, decay_rate=0.5)
    assert cert.verdict == "certified"
    P = np.asarray(cert.data["matrices"]["P"])
    A = np.asarray(cert.data["matrices"]["A"])
    assert np.linalg.eigvalsh(P).min() > 0
    assert np.linalg.eigvalsh(A.T @ P + P @ A + 2 * 0.5 * P).max() < 0
    assert np.linalg.eigvalsh(np.asarray(cert.data["matrices"]["hessian"])).min() > 0


def test_decay_rate_beyond_the_slowest_mode_is_refuted_by_an_eigenvalue(arm_loop):
    cert = certify_closed_loop(arm_loop, decay_rate=0.5)
    A = np.asarray(cert.data["matrices"]["A"])
    slowest = -float(np.linalg.eigvals(A).real.max())
    below = certify_closed_loop(arm_loop, decay_rate=0.99 * slowest)
    above = certify_closed_loop(arm_loop, decay_rate=1.01 * slowest)
    assert below.check("lyapunov_lmi").status == "pass"
    assert above.check("lyapunov_lmi").status == "fail"
    assert above.verdict == "not_certified"


def test_pd_loop_is_not_certified_at_the_target():
    arm = plants.two_link_arm()
    pd = EnergyShaping(arm, [0.5, -0.3], 20.0, 5.0, gravity_compensation=False)
    cert = certify_closed_loop(closed_loop(arm, pd))
    assert cert.check("equilibrium").status == "fail"
    assert cert.verdict == "not_certified"


def test_energy_pumping_loop_fails_on_its_indefinite_damping():
    plant = plants.pendulum()
    pump = EnergyPumping(plant, [math.pi, 0.0], gain=1.0, max_input=3.0)
    cert = certify_closed_loop(closed_loop(plant, pump))
    assert cert.check("R_d_psd").status == "fail"
    assert cert.check("hessian_pd").status == "fail"  # upright is a maximum of H
    # R_d varies with the state: the SDP saw x* and the 4 worst samples.
    assert len(cert.data["matrices"]["R_d_sdp"]) == 5
    assert cert.verdict == "not_certified"


def test_ida_pbc_and_pi_pbc_loops_are_certified():
    iwp = plants.inertia_wheel_pendulum()
    cert = certify_closed_loop(
        closed_loop(iwp, wheel_pendulum_ida_pbc(iwp)), decay_rate=0.3
    )
    assert cert.verdict == "certified", [c.message for c in cert.checks]
    boost = plants.boost_converter()
    xs, us = plants.boost_equilibrium(boost, 24.0, 12.0)
    loop = closed_loop(boost, PIPBC(boost, xs, us, 1e-2, 10.0))
    assert certify_closed_loop(loop, decay_rate=50.0).verdict == "certified"


def test_saved_certificate_rechecks_and_tampering_is_caught(arm_loop, tmp_path):
    path = tmp_path / "cert.json"
    certify_closed_loop(arm_loop, decay_rate=0.5).save(path)
    again = verify_closed_loop_certificate(path, arm_loop)
    assert again.verdict == "certified" and not again.problems
    doc = json.loads(path.read_text())
    doc["matrices"]["P"] = np.eye(4).tolist()  # not a storage of this loop
    bad = verify_closed_loop_certificate(doc)
    assert bad.verdict != "certified"
    assert any("disagrees" in p for p in bad.problems)
    doc = json.loads(path.read_text())
    doc["matrices"]["A"][0][0] += 1.0
    moved = verify_closed_loop_certificate(doc, arm_loop)
    assert any("differs from the stored A" in p for p in moved.problems)
    with pytest.raises(ModelFileError, match="not a phcontrol closed-loop"):
        verify_closed_loop_certificate({"format": "other"})


def test_lyapunov_lmi_handles_any_time_scale():
    A = np.array([[0.0, 1.0], [-1.0, -0.5]])
    for scale in (1e-4, 1.0, 1e5):
        P, status = lyapunov_lmi(scale * A, decay_rate=0.1 * scale)
        assert P is not None, status
        M = scale * (A.T @ P + P @ A) + 0.2 * scale * P
        assert np.linalg.eigvalsh(M).max() < 0


def test_synthesised_gains_meet_the_rate_and_grow_with_it():
    arm = plants.two_link_arm()
    slow = synthesize_shaping_gains(arm, [0.5, -0.3], decay_rate=1.0)
    fast = synthesize_shaping_gains(arm, [0.5, -0.3], decay_rate=2.0)
    for gains, rate in ((slow, 1.0), (fast, 2.0)):
        assert gains.verified and gains.lmi_margin < 0
        # The requirement binds: the slowest mode sits near -rate.
        assert -1.5 * rate < gains.max_real_eigenvalue < -rate
    assert np.trace(fast.stiffness) > np.trace(slow.stiffness)
    loop = closed_loop(
        arm, EnergyShaping(arm, [0.5, -0.3], fast.stiffness, fast.damping)
    )
    assert certify_closed_loop(loop, decay_rate=2.0).verdict == "certified"


def test_matrix_checks_are_decided_by_an_sdp_and_by_numpy(arm_loop):
    cert = certify_closed_loop(arm_loop, decay_rate=0.5)
    for name in ("R_d_psd", "hessian_pd"):
        sdp = cert.check(name).sdp
        assert sdp["status"] == "optimal"
    hess = np.asarray(cert.data["matrices"]["hessian"])
    low = np.linalg.eigvalsh(hess).min()
    assert cert.check("hessian_pd").sdp["margin"] == pytest.approx(low, rel=1e-6)
    # R_d = R + G K_d G^T is constant here: the SDP sees it once.
    R = np.asarray(cert.data["matrices"]["R_d_sdp"])
    assert R.shape == (1, 4, 4)
    assert np.allclose(R[0], cert.data["matrices"]["R_d_at_target"])


def test_a_solver_that_is_not_optimal_leaves_the_verdict_undecided(
    arm_loop, monkeypatch
):
    from phcontrol.control import certificates

    monkeypatch.setattr(
        certificates, "psd_margin", lambda M, solver: (0.5, "optimal_inaccurate")
    )
    cert = certify_closed_loop(arm_loop, decay_rate=0.5)
    assert cert.check("hessian_pd").status == "undecided"
    assert "optimal_inaccurate" in cert.check("hessian_pd").message
    assert cert.verdict == "undecided"


def test_an_sdp_margin_that_numpy_refutes_is_not_certified(arm_loop):
    doc = certify_closed_loop(arm_loop, decay_rate=0.5).data
    doc = json.loads(json.dumps(doc))
    for c in doc["checks"]:
        if c["name"] == "hessian_pd":
            c["sdp"]["margin"] *= 3.0  # claims more than the Hessian has
    again = verify_closed_loop_certificate(doc)
    assert again.check("hessian_pd").status == "undecided"
    assert again.verdict == "undecided" and again.problems


def test_version_1_certificates_still_load_and_newer_ones_are_refused(arm_loop):
    doc = json.loads(json.dumps(certify_closed_loop(arm_loop, decay_rate=0.5).data))
    doc["version"] = 1  # written before the SDP margins: no sdp, no R_d_sdp
    del doc["matrices"]["R_d_sdp"], doc["matrices"]["R_d_sdp_states"]
    for c in doc["checks"]:
        c.pop("sdp")
    old = verify_closed_loop_certificate(doc, arm_loop)
    assert old.verdict == "certified" and not old.problems
    assert old.check("hessian_pd").sdp["status"] == "optimal"  # solved on load
    doc["version"] = 99
    with pytest.raises(ModelFileError, match="version 99.*reads versions"):
        verify_closed_loop_certificate(doc)


def test_damping_gain_for_a_single_input_is_the_analytic_one():
    from phcontrol.control import synthesize_damping_gain

    plant = plants.mass_spring_damper(damping=0.0)  # s^2 + k s + 1
    for rate in (0.3, 0.8):
        out = synthesize_damping_gain(plant, decay_rate=rate)
        assert out.verified and out.lmi_margin < 0
        # The smallest k with Re(s) <= -rate is k = 2 rate (until k = 2).
        assert out.gain[0, 0] == pytest.approx(2 * rate, rel=5e-3)
        assert -1.01 * rate < out.max_real_eigenvalue < -rate
        cert = certify_closed_loop(closed_loop(plant, out.controller))
        P, A = out.storage, np.asarray(cert.data["matrices"]["A"])
        assert np.linalg.eigvalsh(A.T @ P + P @ A + 2 * rate * P).max() < 0


def test_a_rate_no_damping_reaches_is_refused_with_the_best_one():
    from phcontrol.control import synthesize_damping_gain
    from phcontrol.errors import SolverError

    plant = plants.mass_spring_damper(damping=0.0)  # fastest: k = 2, rate 1
    with pytest.raises(SolverError, match=r"decay_rate=1.2.*best rate is 1 \("):
        synthesize_damping_gain(plant, decay_rate=1.2)


def test_damping_gains_on_two_inputs_meet_the_rate_and_certify():
    from phcontrol.control import synthesize_damping_gain

    arm = plants.two_link_arm()
    full = synthesize_damping_gain(arm, decay_rate=0.5, rounds=3)
    diag = synthesize_damping_gain(arm, decay_rate=0.5, diagonal=True, rounds=3)
    assert full.verified and diag.verified
    assert diag.gain[0, 1] == 0.0 and np.trace(full.gain) <= np.trace(diag.gain)
    cert = certify_closed_loop(closed_loop(arm, full.controller), decay_rate=0.5)
    assert cert.verdict == "certified"


def test_damping_gain_rounds_that_solve_inexactly_do_not_warn():
    # With the default ten rounds on the arm, some round solves end
    # 'optimal_inaccurate' (seen with Clarabel). Their storage only steers the
    # next gain and the gain found is re-checked in numpy, so a verified
    # result comes without a NumericsWarning.
    from phcontrol.control import synthesize_damping_gain

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = synthesize_damping_gain(plants.two_link_arm(), decay_rate=0.5)
    assert out.verified and out.max_real_eigenvalue < -0.5


def test_ida_pbc_damping_is_synthesised_through_its_port():
    from phcontrol.control import synthesize_damping_gain

    iwp = plants.inertia_wheel_pendulum()
    bare = wheel_pendulum_ida_pbc(iwp, damping=0.0)
    out = synthesize_damping_gain(bare, decay_rate=0.1)
    assert out.verified and out.max_real_eigenvalue < -0.1
    x = bare.x_star[None]
    R = out.controller.R_d(x)[0]
    assert R[3, 3].item() == pytest.approx(out.gain[0, 0])  # G = e_4
    loop = closed_loop(iwp, out.controller, form="port_hamiltonian")
    # The certificate's LMI, solved in the energy coordinates, proves the rate.
    assert certify_closed_loop(loop, decay_rate=0.1).verdict == "certified"
