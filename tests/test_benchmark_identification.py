"""The baselines benchmark fits the datasets' settings with another model."""

import math

import pytest

from benchmarks import identification_baselines as baselines
from benchmarks.identification_tanks import SETTINGS


def test_options_keep_the_dataset_settings_and_swap_the_model():
    opts = baselines.options("cascaded_tanks", "linear")
    assert opts["model"] == "linear"
    assert {k: v for k, v in opts.items() if k != "model"} == {
        k: v for k, v in SETTINGS.items() if k != "model"
    }
    ode = baselines.options("cascaded_tanks", "neural_ode")
    assert ode["iterations"] == baselines.NEURAL_ODE_ITERATIONS
    assert ode["max_time"] == SETTINGS["max_time"]
    assert SETTINGS["model"] == "tanks"  # the shared settings are not changed


def test_unknown_dataset_is_refused_by_name():
    with pytest.raises(ValueError, match="'tank'"):
        baselines.options("tank", "linear")


@pytest.mark.parametrize("model", baselines.MODELS)
def test_a_short_baseline_fit_is_scored_on_the_protocol(model):
    row = baselines.fit_baseline(
        "cascaded_tanks", model, 0, iterations=2, lbfgs_steps=0, window=20
    )
    assert set(row["rmse"]) == {"val", "test"}
    assert all(math.isfinite(v) and v > 0 for v in row["rmse"].values())
    text = baselines.table([row])
    assert f"| cascaded_tanks | {model} | 0 | test " in text
