"""The black-box neural ODE baseline, fitted by the same code as the pH models."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from _tol import ATOL, RTOL

import phcontrol as phc
from phcontrol.cli import EXIT_OK, EXIT_USAGE, main
from phcontrol.data import Log
from phcontrol.errors import NotSupportedError
from phcontrol.fitted import _rollout_states, energy_audit
from phcontrol.identify import (
    NO_ENERGY,
    _initial_model,
    _record,
    _tame_neural_ode,
    identify,
)

DT = 0.1


@functools.lru_cache(maxsize=1)
def spring_log(samples: int = 300) -> Log:
    """A damped spring driven by a smooth random force (stationary, so the
    validation part needs no extrapolation)."""
    rng = np.random.default_rng(0)
    u = np.convolve(rng.standard_normal(samples), np.ones(5) / 5, mode="same")
    q = np.zeros(samples)
    v = 0.0
    for k in range(samples - 1):
        v += DT * (u[k] - q[k] - 0.3 * v)
        q[k + 1] = q[k] + DT * v
    t = DT * np.arange(samples)
    return Log(t=t, u=u[:, None], z=q[:, None], source="spring")


@pytest.fixture(scope="module")
def tiny_fit():
    # A tenth of the default learning rate: at 2e-3 the MLP's first Adam
    # steps overshoot on a run this short (measured on this log; at 2e-4
    # eight steps cut the validation loss two- to tenfold for seeds 0-4).
    return identify(
        spring_log(),
        model="neural_ode",
        substeps=2,
        input_hold="zoh",
        window=30,
        batch_size=8,
        iterations=8,
        val_every=2,
        lr=2e-4,
    )


def test_tiny_fit_runs_adam_only_and_improves_on_its_start(tiny_fit):
    assert isinstance(tiny_fit.model.system, phc.NeuralODE)
    history = tiny_fit.report.history
    assert {h["stage"] for h in history} == {"start", "adam"}
    assert tiny_fit.report.settings["first_stage"] is None
    start = history[0]["val_loss"]
    best = min(h["val_loss"] for h in history[1:] if "val_loss" in h)
    assert best < 0.5 * start
    val = tiny_fit.report.metrics["val"]
    assert val["converged"] is True
    assert 0 < val["rmse"] < float(np.std(spring_log().z))


def test_report_says_the_energy_balance_was_not_audited(tiny_fit):
    audit = tiny_fit.report.audit
    assert audit == {"audited": False, "reason": NO_ENERGY, "split": "val"}
    params = tiny_fit.report.parameters
    assert "R" not in params and "G" not in params
    assert params["hidden"] == [16, 16] and params["n_states"] == 2
    with pytest.raises(NotSupportedError, match="no energy balance to audit"):
        energy_audit(tiny_fit.model, spring_log(), n_init=10)


def test_model_file_round_trip_predicts_the_same(tiny_fit, tmp_path):
    log = spring_log()
    path = tmp_path / "node.safetensors"
    phc.io.save(tiny_fit.model, path)
    loaded = phc.io.load(path)
    assert isinstance(loaded.system, phc.NeuralODE)
    a, _ = tiny_fit.model.predict(log.u, log.z, n_init=10)
    b, _ = loaded.predict(log.u, log.z, n_init=10)
    np.testing.assert_array_equal(a, b)


def test_passivity_of_a_neural_ode_is_refused_not_claimed(tiny_fit):
    with pytest.raises(NotSupportedError, match="cannot be decided"):
        phc.check_passivity(tiny_fit.model)
    with pytest.raises(NotSupportedError, match="NeuralODE"):
        phc.check_passivity(phc.NeuralODE(2, 1, hidden=(4,)))


def test_rollout_steps_rk4_on_the_substep_inputs_and_is_differentiable():
    system = phc.NeuralODE(2, 1, hidden=(8,))
    x0 = torch.randn(3, 2)
    u = torch.randn(3, 6, 1)
    xs, ok = _rollout_states(system, x0, u, 4, "zoh")
    ref = phc.simulate(
        system, x0, u[:, :-1], dt=1.0, substeps=4, method="rk4", input_hold="zoh"
    )
    torch.testing.assert_close(xs, ref.x, rtol=RTOL, atol=ATOL)
    assert xs.shape == (3, 6, 2) and bool(ok.all())
    xs.square().sum().backward()
    grads = [p.grad for p in system.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads if g is not None)


def test_a_diverging_warm_start_is_replaced_by_a_zero_vector_field():
    train, _ = spring_log().split(0.2)
    fitted = _initial_model(train, "neural_ode", 10, 8, 2, "zoh", 0)
    record = _record(fitted, train)
    assert _tame_neural_ode(fitted, record, 30) is None  # the warm start is tame
    last = fitted.system.net[-1]
    with torch.no_grad():
        last.bias.fill_(1e3)  # drifts by a thousand units a sample
    reason = _tame_neural_ode(fitted, record, 30)
    assert reason is not None and "diverged" in reason
    assert not bool(last.weight.any()) and not bool(last.bias.any())


def test_first_stage_is_refused_for_the_neural_ode():
    with pytest.raises(NotSupportedError, match="first_stage='lbfgs'"):
        identify(spring_log(), model="neural_ode", first_stage="lbfgs", window=30)


def test_cli_fits_the_neural_ode_and_writes_its_outputs(tmp_path, capsys):
    log = spring_log()
    csv = tmp_path / "spring.csv"
    rows = np.column_stack([log.t, log.u[:, 0], log.z[:, 0]])
    np.savetxt(csv, rows, delimiter=",", header="t,u,q", comments="")
    out = tmp_path / "fit"
    args = [str(csv), "--time", "t", "--inputs", "u", "--outputs", "q"]
    tiny = ["--iterations", "2", "--window", "20", "--substeps", "2", "-q"]
    code = main(
        ["identify", *args, "--model", "neural_ode", "--out", str(out), "--json"] + tiny
    )
    assert code == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["audit"]["audited"] is False
    assert doc["settings"]["model"] == "neural_ode"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figures", "model.safetensors", "report.html", "report.json"]
    page = (out / "report.html").read_text()
    assert "Not audited: no energy" in page and "R (dissipation)" not in page
    assert main(["check", str(out / "model.safetensors")]) == EXIT_USAGE
    assert "cannot be decided" in capsys.readouterr().err
