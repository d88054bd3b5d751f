"""Output-error identification on logs of a known Duffing oscillator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import phcontrol as phc
from phcontrol import _mechanical
from phcontrol.data import Log
from phcontrol.identify import identify
from phcontrol.structure import PolynomialDissipation

DT = 0.1


def duffing_log(samples: int = 900, noise: float = 0.0, seed: int = 0) -> Log:
    """Simulate m q'' + r(p) q' + k q + c q^3 = u with a smooth random input."""
    H = phc.MechanicalHamiltonian(
        1,
        potential=[
            phc.PolynomialPotential(
                1, degree=4, coefficients=torch.tensor([[0.0, 0.5, 0.0, 0.1]])
            )
        ],
        mass=torch.tensor([[1.0]]),
    )
    R = PolynomialDissipation(
        2, mask=[False, True], degree=1, init=torch.tensor([[0.3, 0.1], [0.3, 0.1]])
    )
    G = phc.InputMatrix(
        2, 1, mask=torch.tensor([[0.0], [1.0]]), init=torch.tensor([[0.0], [1.0]])
    )
    plant = phc.PortHamiltonian(H, phc.CanonicalJ(2), R, G)
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal(samples + 20)
    u = np.convolve(raw, np.ones(8) / 8, mode="same")[:samples] * 2.0
    stepper = _mechanical.MechanicalStepper(plant, DT / 4, 1e-13, 50)
    x = torch.zeros(1, 2)
    z = np.zeros(samples)
    with torch.no_grad():
        for k in range(samples):
            z[k] = float(x[0, 0])
            uk = torch.tensor([[u[k]]])
            for _ in range(4):
                x, _, _ = stepper.step(x, uk)
    z = z + noise * rng.standard_normal(samples)
    t = DT * np.arange(samples)
    return Log(t=t, u=u[:, None], z=z[:, None], source="duffing")


@pytest.fixture(scope="module")
def quick_fit():
    return identify(
        duffing_log(),
        input_hold="zoh",
        window=40,
        batch_size=16,
        first_stage="lbfgs",
        lbfgs_steps=4,
        iterations=5,
        val_every=5,
    )


@pytest.fixture(scope="module")
def lm_fit():
    return identify(
        duffing_log(),
        input_hold="zoh",
        window=40,
        lm_windows=16,
        lm_lengths=(20, 40),
        lm_iterations=6,
        iterations=0,
    )


def test_levenberg_marquardt_stage_fits_and_is_the_default(lm_fit):
    z = duffing_log().z
    assert lm_fit.report.settings["first_stage"] == "lm"
    stages = [h["stage"] for h in lm_fit.report.history]
    assert stages == ["start", "lm", "lm"]
    assert lm_fit.report.metrics["val"]["rmse"] < 0.1 * float(np.std(z))
    val = [h["val_loss"] for h in lm_fit.report.history]
    assert val[-1] < 0.2 * val[0]
    assert lm_fit.report.audit["max_relative_residual"] <= 1e-10


def test_fit_recovers_a_duffing_oscillator(quick_fit):
    z = duffing_log().z
    rmse = quick_fit.report.metrics["val"]["rmse"]
    assert rmse < 0.1 * float(np.std(z))
    # The output-error stages improve well on the equation-error warm start.
    val = [h["val_loss"] for h in quick_fit.report.history]
    assert min(val) < 0.2 * val[0]


def test_fit_history_scores_each_stage_on_validation(quick_fit):
    stages = [h["stage"] for h in quick_fit.report.history]
    assert stages[0] == "start"
    assert "lbfgs" in stages and "adam" in stages
    assert all(math.isfinite(h["val_loss"]) for h in quick_fit.report.history)


def test_fitted_model_keeps_its_energy_balance(quick_fit):
    audit = quick_fit.report.audit
    assert audit["steps"] > 0
    assert audit["max_relative_residual"] <= 1e-10


def test_audit_checks_the_simulation_that_was_scored(quick_fit):
    # identify audits the pieces it simulated for the validation score; an
    # audit that simulates the record afresh must find the same steps.
    _, val = duffing_log().split(0.2)
    audit = phc.fitted.energy_audit(
        quick_fit.model, val, n_init=quick_fit.model.n_past
    )
    report = {k: v for k, v in quick_fit.report.audit.items() if k != "split"}
    assert report == audit


def test_fitted_model_is_passive_by_construction(quick_fit):
    system = quick_fit.model.system
    x = torch.randn(64, 2) * 3.0
    assert bool((torch.linalg.eigvalsh(system.R_matrix(x)) >= 0).all())
    J = system.J_matrix(x)
    assert torch.equal(J, -J.transpose(1, 2))


def test_fit_is_reproducible_with_its_seed():
    options = dict(
        window=20,
        batch_size=8,
        first_stage="lbfgs",
        lbfgs_steps=1,
        iterations=3,
        seed=7,
    )
    log = duffing_log(300)
    a = identify(log, **options).report.metrics["val"]["rmse"]
    b = identify(log, **options).report.metrics["val"]["rmse"]
    assert a == b


def test_fitted_model_file_round_trip_predicts_the_same(quick_fit, tmp_path):
    log = duffing_log()
    path = tmp_path / "duffing.safetensors"
    phc.io.save(quick_fit.model, path)
    loaded = phc.io.load(path)
    a, _ = quick_fit.model.predict(log.u, log.z, n_init=20)
    b, _ = loaded.predict(log.u, log.z, n_init=20)
    np.testing.assert_array_equal(a, b)


def test_predict_stitching_matches_one_sequential_simulation(quick_fit):
    log = duffing_log()
    one, info = quick_fit.model.predict(log.u, log.z, n_init=20, chunks=1)
    many, info_many = quick_fit.model.predict(log.u, log.z, n_init=20, chunks=9)
    assert info_many["seam_error"] <= 1e-10
    np.testing.assert_allclose(many, one, rtol=0.0, atol=1e-8 * np.abs(one).max())


def test_short_log_is_refused_with_the_window_named():
    with pytest.raises(phc.DataError, match="window"):
        identify(duffing_log(60), window=80)


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="model"):
        identify(duffing_log(200), model="quadratic")  # type: ignore[arg-type]


def test_check_command_certifies_a_fitted_model_file(quick_fit, tmp_path, capsys):
    from phcontrol.cli import main

    path = tmp_path / "fit.safetensors"
    phc.io.save(quick_fit.model, path)
    assert main(["check", str(path)]) == 0
    assert "passive" in capsys.readouterr().out


def test_cubic_input_hold_reproduces_a_cubic_input():
    from phcontrol.fitted import _substep_inputs

    t = torch.arange(8.0)
    u = (0.1 * t**3 - t**2 + 2.0)[None, :, None]
    mid = _substep_inputs(u, 3, "cubic")[0, 3:-3, 0]  # away from the ends
    tm = (torch.arange(7.0 * 3)[3:-3] + 0.5) / 3.0
    # Catmull-Rom is exact for quadratics; a cubic leaves a small remainder.
    torch.testing.assert_close(mid, 0.1 * tm**3 - tm**2 + 2.0, rtol=0.0, atol=0.05)
    linear = _substep_inputs(u, 3, "linear")[0, 3:-3, 0]
    assert (linear - (0.1 * tm**3 - tm**2 + 2.0)).abs().max() > 0.05


@pytest.mark.parametrize("cycles_per_sample", [0.1, 0.3])
def test_bandlimited_hold_reconstructs_a_sampled_sine(cycles_per_sample):
    from phcontrol.fitted import _substep_inputs

    f = cycles_per_sample
    k = torch.arange(200.0, dtype=torch.float64)
    u = (0.5 + torch.sin(2 * math.pi * f * k))[None, :, None]
    tm = (torch.arange(199.0 * 4, dtype=torch.float64) + 0.5) / 4.0
    truth = 0.5 + torch.sin(2 * math.pi * f * tm)
    band = _substep_inputs(u, 4, "bandlimited")[0, :, 0]
    linear = _substep_inputs(u, 4, "linear")[0, :, 0]
    assert band.shape == truth.shape and band.dtype == torch.float64
    # The odd reflection that extends the window is accurate at its start;
    # the last few intervals lose accuracy at high frequency, which is why
    # predictions take the sub-step inputs from the whole record.
    err = (band - truth).abs()[:-40]
    assert err.max() < 1e-3
    assert (linear - truth).abs()[:-40].max() > 10 * err.max()


@pytest.mark.parametrize("samples", [2, 5, 300])
def test_bandlimited_hold_keeps_a_constant_exactly(samples):
    from phcontrol.fitted import _substep_inputs

    u = torch.full((2, samples, 1), 2.5, dtype=torch.float64)
    band = _substep_inputs(u, 3, "bandlimited")
    assert band.shape == (2, (samples - 1) * 3, 1)
    torch.testing.assert_close(band, torch.full_like(band, 2.5), rtol=0, atol=1e-12)
