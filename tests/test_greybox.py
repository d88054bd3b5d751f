"""Grey-box models: named parameters, passivity guards, a fit that finds them."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from _records import stepped_positions

import phcontrol as phc
from phcontrol import _mechanical
from phcontrol.data import Log
from phcontrol.errors import NumericsError, ShapeError
from phcontrol.greybox import NamedParameters, mechanical_model, parameter_values
from phcontrol.identify import identify

DT = 0.02
TRUE = {"k1": 4.0, "k3": 2.0, "c0": 0.3, "c1": 0.2}


def duffing(values: dict[str, float], gain: float = 1.0) -> phc.PortHamiltonian:
    """m q'' = g u - k1 q - k3 q^3 - (c0 + c1 v^2) v with m = 1."""
    return mechanical_model(
        potential=lambda q, p: p.k1 * q[:, 0] ** 2 / 2 + p.k3 * q[:, 0] ** 4 / 4,
        damping=lambda v, p: p.c0 + p.c1 * v**2,
        values=values,
        positive=["k3", "c0", "c1"],
        gain=gain,
    )


@functools.lru_cache(maxsize=1)
def duffing_log(samples: int = 1500) -> Log:
    """The true model driven by a smooth random force, held constant over a
    sample, stepped exactly by the discrete gradient at a quarter sample."""
    plant = duffing(TRUE, gain=2.0)
    rng = np.random.default_rng(3)
    raw = rng.standard_normal(samples + 20)
    u = np.convolve(raw, np.ones(8) / 8, mode="same")[:samples] * 3.0
    z = stepped_positions(plant, u, DT)
    return Log(t=DT * np.arange(samples), u=u[:, None], z=z[:, None], source="duffing")


def test_positive_parameters_stay_positive_and_are_checked():
    params = NamedParameters({"k": -1.0, "c": 0.5}, positive=["c"])
    assert params.values() == pytest.approx({"k": -1.0, "c": 0.5})
    with torch.no_grad():
        params.c_raw.fill_(-30.0)
    assert params.values()["c"] > 0
    with pytest.raises(ValueError, match="'c'.*positive.*starts at -0.5"):
        NamedParameters({"c": -0.5}, positive=["c"])
    with pytest.raises(ValueError, match=r"\['d'\].*not in the parameters"):
        NamedParameters({"c": 0.5}, positive=["d"])
    with pytest.raises(ValueError, match="not a Python identifier"):
        NamedParameters({"2c": 0.5})
    with pytest.raises(ValueError, match=r"\['c2'\].*not in the parameters"):
        mechanical_model(  # a misspelt name is refused, not silently dropped
            potential=lambda q, p: q[:, 0] ** 2 / 2,
            damping=lambda v, p: p.c + 0.0 * v,
            values={"c": 0.1},
            positive=["c2"],
        )


def test_a_negative_damping_law_is_refused_not_simulated():
    model = mechanical_model(
        potential=lambda q, p: q[:, 0] ** 2 / 2,
        damping=lambda v, p: p.c - v**2,  # negative for |v| > sqrt(c)
        values={"c": 0.1},
    )
    x = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    with pytest.raises(NumericsError, match="r = .* < 0, which creates energy"):
        model.R_matrix(x)


def test_grey_box_step_keeps_the_energy_balance_exact():
    model = duffing(TRUE, gain=2.0)
    assert _mechanical.supports(model)
    stepper = _mechanical.MechanicalStepper(model, 0.05, 1e-13, 50)
    x = torch.tensor([[0.8, -1.5], [-0.3, 2.0]], dtype=torch.float64)
    u = torch.tensor([[1.0], [-2.0]], dtype=torch.float64)
    x1, _, ok = stepper.step(x, u)
    assert bool(ok.all())
    v_mid = (x1[:, 1] + x[:, 1]) / 2  # m = 1
    r = TRUE["c0"] + TRUE["c1"] * ((x1[:, 0] - x[:, 0]) / 0.05) ** 2
    dH = model.H(x1) - model.H(x)
    balance = -0.05 * r * v_mid**2 + 0.05 * v_mid * 2.0 * u[:, 0]
    assert torch.allclose(dH, balance, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def grey_fit():
    start = {"k1": 3.0, "k3": 1.0, "c0": 0.5, "c1": 0.05}
    return identify(
        duffing_log(),
        model=duffing(start, gain=1.5),
        substeps=2,
        input_hold="zoh",
        window=40,
        lm_windows=12,
        lm_lengths=(20, 50),
        lm_iterations=8,
        iterations=0,
    )


def test_grey_box_fit_recovers_the_named_parameters(grey_fit):
    found = parameter_values(grey_fit.model.system)
    for name, value in TRUE.items():
        assert found[name] == pytest.approx(value, rel=0.05), name
    assert found["gain"] == pytest.approx(2.0, rel=0.05)
    report = grey_fit.report
    assert report.parameters["named"] == pytest.approx(found)
    assert report.parameters["units"].startswith("physical")
    assert report.metrics["val"]["rmse"] < 0.02 * float(np.std(duffing_log().z))
    assert report.audit["max_relative_residual"] <= 1e-10


def test_grey_box_fit_leaves_the_given_model_unchanged():
    model = duffing(TRUE)
    before = parameter_values(model)
    identify(
        duffing_log(),
        model=model,
        input_hold="zoh",
        window=40,
        lm_windows=8,
        lm_lengths=(20,),
        lm_iterations=1,
        iterations=0,
    )
    assert parameter_values(model) == before


def test_grey_box_with_wrong_ports_is_refused_by_its_shape():
    two_inputs = duffing_log()
    log = Log(
        t=two_inputs.t,
        u=np.repeat(two_inputs.u, 2, axis=1),
        z=two_inputs.z,
        source="two-inputs",
    )
    with pytest.raises(ShapeError, match="1 inputs but two-inputs has 2 input"):
        identify(log, model=duffing(TRUE), iterations=0)


def test_a_model_holding_python_functions_is_not_written(tmp_path):
    path = tmp_path / "grey.safetensors"
    with pytest.raises(TypeError, match="Python function .* hold no code"):
        phc.io.save(duffing(TRUE), path)
    assert list(tmp_path.iterdir()) == []
