"""Faults while fitting: bad losses, interruptions, resuming and atomic writes.

Every fit here is tiny (a 200-sample log, windows of 10 samples, a handful
of iterations), so each takes a second or two.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from phcontrol.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from phcontrol.data import Log
from phcontrol.errors import ConvergenceError, ModelFileError
from phcontrol.identify import identify

# ``phcontrol.identify`` is also the name of the function, so fetch the module.
identify_module = importlib.import_module("phcontrol.identify")

TINY = dict(
    window=8,
    batch_size=4,
    val_every=2,
    first_stage="lbfgs",
    lbfgs_steps=0,
    iterations=6,
    substeps=1,
)


def spring_arrays(samples: int = 200) -> tuple[np.ndarray, ...]:
    """A damped spring driven by a smooth random input, sampled every 0.1 s."""
    rng = np.random.default_rng(0)
    t = 0.1 * np.arange(samples)
    u = np.convolve(rng.standard_normal(samples), np.ones(5) / 5, mode="same")
    q = np.zeros(samples)
    v = 0.0
    for k in range(samples - 1):
        v += 0.1 * (u[k] - q[k] - 0.3 * v)
        q[k + 1] = q[k] + 0.1 * v
    return t, u, q


@pytest.fixture(scope="module")
def log() -> Log:
    t, u, q = spring_arrays()
    return Log(t=t, u=u[:, None], z=q[:, None], source="spring")


@pytest.fixture(scope="module")
def reference(log: Log):
    """The uninterrupted tiny fit."""
    return identify(log, **TINY)


def fail_on_calls(monkeypatch, name: str, calls: set[int], value: float) -> list:
    """Make ``identify_module.<name>`` return ``value`` on the given calls."""
    original = getattr(identify_module, name)
    seen: list[int] = []

    def patched(*args, **kwargs):
        seen.append(1)
        result = original(*args, **kwargs)
        return value if len(seen) in calls else result

    monkeypatch.setattr(identify_module, name, patched)
    return seen


def test_nan_loss_once_rolls_back_lowers_the_step_and_goes_on(log, monkeypatch):
    fail_on_calls(monkeypatch, "_window_loss_grad", {3}, math.nan)
    fit = identify(log, **TINY)
    (event,) = fit.report.events
    assert event["stage"] == "adam"
    assert "non-finite" in event["event"]
    assert "rolled back" in event["action"] and "halved" in event["action"]
    assert not fit.report.interrupted
    assert math.isfinite(fit.report.metrics["val"]["rmse"])
    # The faulty iteration took no step: five of six were recorded.
    assert fit.report.settings["steps_run"] == 5


def test_exploding_loss_is_treated_like_a_nan(log, monkeypatch):
    fail_on_calls(monkeypatch, "_window_loss_grad", {4}, 1e8)
    fit = identify(log, **TINY)
    (event,) = fit.report.events
    assert "exploding training loss 1e+08" in event["event"]


def test_a_loss_that_stays_nan_stops_with_a_clear_message(log, monkeypatch):
    fail_on_calls(monkeypatch, "_window_loss_grad", set(range(1, 100)), math.nan)
    with pytest.raises(ConvergenceError, match=r"lower `lr`, shorten `window`"):
        identify(log, **{**TINY, "iterations": 20})


def test_diverging_lbfgs_step_rolls_back_and_ends_the_stage(log, monkeypatch):
    # Call 1 scores the warm start; call 2 scores the first L-BFGS step.
    fail_on_calls(monkeypatch, "_window_loss", {2}, math.nan)
    fit = identify(log, **{**TINY, "lbfgs_steps": 3, "iterations": 2})
    (event,) = fit.report.events
    assert event["stage"] == "lbfgs" and "diverged" in event["event"]
    assert "ended the L-BFGS stage" in event["action"]
    stages = [h["stage"] for h in fit.report.history]
    assert stages.count("lbfgs") == 1 and "adam" in stages
    assert math.isfinite(fit.report.metrics["val"]["rmse"])


def stop_at(iteration: int, how: str):
    """A callback that interrupts the fit at ``iteration``."""

    def callback(record: dict) -> None:
        if record.get("iteration") == iteration and record.get("stage") != "simulate":
            if how == "callback":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)

    return callback


@pytest.mark.parametrize("how", ["callback", "sigterm"])
def test_interruption_keeps_the_best_model_and_says_so(log, tmp_path, how):
    path = tmp_path / "fit.safetensors"
    fit = identify(log, checkpoint=path, callback=stop_at(3, how), **TINY)
    assert fit.report.interrupted
    assert fit.report.settings["steps_run"] == 3
    reason = "KeyboardInterrupt" if how == "callback" else "SIGTERM"
    assert fit.report.events[-1]["event"] == f"interrupted ({reason})"
    assert path.is_file()
    # The returned model is the best one by validation, which the checkpoint
    # also keeps beside the current one.
    import safetensors.torch

    stored = safetensors.torch.load_file(str(path))
    for key, value in fit.model.state_dict().items():
        assert torch.equal(stored[f"best.{key}"], value)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_interruption_inside_a_step_keeps_the_best_model(log, monkeypatch):
    original = identify_module._window_loss_grad
    calls: list[int] = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(identify_module, "_window_loss_grad", interrupted)
    fit = identify(log, **TINY)
    assert fit.report.interrupted
    assert fit.report.settings["steps_run"] == 3
    assert math.isfinite(fit.report.metrics["val"]["rmse"])


def test_resume_continues_an_interrupted_fit_exactly(log, reference, tmp_path):
    path = tmp_path / "fit.safetensors"
    first = identify(log, checkpoint=path, callback=stop_at(4, "callback"), **TINY)
    assert first.report.interrupted
    again = identify(log, checkpoint=path, resume=True, **TINY)
    assert not again.report.interrupted and again.report.settings["resumed"]
    ours = [h["val_loss"] for h in again.report.history]
    assert ours == [h["val_loss"] for h in reference.report.history]
    assert (
        again.report.metrics["val"]["rmse"] == reference.report.metrics["val"]["rmse"]
    )


def test_resume_refuses_a_checkpoint_of_other_options(log, tmp_path):
    path = tmp_path / "fit.safetensors"
    identify(log, checkpoint=path, callback=stop_at(2, "callback"), **TINY)
    with pytest.raises(ModelFileError, match="other data or other options"):
        identify(log, checkpoint=path, resume=True, **{**TINY, "window": 12})


def test_resume_refuses_a_tampered_checkpoint(log, tmp_path):
    path = tmp_path / "fit.safetensors"
    identify(log, checkpoint=path, callback=stop_at(2, "callback"), **TINY)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        identify(log, checkpoint=path, resume=True, **TINY)


def test_resume_needs_a_checkpoint(log, tmp_path):
    with pytest.raises(ValueError, match="`resume=True` needs `checkpoint=`"):
        identify(log, resume=True, **TINY)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        identify(log, checkpoint=tmp_path / "none.safetensors", resume=True, **TINY)


def test_resume_refuses_a_pickle_without_running_it(log, tmp_path):
    import pickle

    marker = tmp_path / "ran.txt"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "fit.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match="pickle"):
        identify(log, checkpoint=path, resume=True, **TINY)
    assert not marker.exists()


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


@pytest.fixture()
def spring_csv(tmp_path: Path) -> Path:
    t, u, q = spring_arrays()
    path = tmp_path / "spring.csv"
    np.savetxt(
        path, np.column_stack([t, u, q]), delimiter=",", header="t,u,q", comments=""
    )
    return path


CLI_TINY = (
    "--first-stage lbfgs --lbfgs-steps 0 --iterations 6 --window 8 "
    "--batch-size 4 --substeps 1 -q"
).split()


def test_cli_sigterm_writes_the_best_model_and_resume_finishes(
    spring_csv, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "fit"
    args = ["identify", str(spring_csv), "--time", "t", "--inputs", "u"]
    args += ["--outputs", "q", "--out", str(out), *CLI_TINY]
    original = identify_module._window_loss_grad
    calls: list[int] = []

    def terminate_on_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*a, **k)

    monkeypatch.setattr(identify_module, "_window_loss_grad", terminate_on_the_third)
    assert main(args) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err
    names = sorted(p.name for p in out.iterdir())
    assert "checkpoint.safetensors" in names and "model.safetensors" in names
    doc = json.loads((out / "report.json").read_text())
    assert doc["interrupted"] is True

    monkeypatch.setattr(identify_module, "_window_loss_grad", original)
    assert main([*args, "--resume"]) == EXIT_OK
    doc = json.loads((out / "report.json").read_text())
    assert doc["interrupted"] is False and doc["settings"]["resumed"] is True
    assert not (out / "checkpoint.safetensors").exists()


def test_cli_resume_without_a_checkpoint_is_a_usage_error(spring_csv, tmp_path, capsys):
    out = tmp_path / "fit"
    args = ["identify", str(spring_csv), "--time", "t", "--outputs", "q"]
    assert main([*args, "--out", str(out), "--resume", *CLI_TINY]) == EXIT_USAGE
    assert "no checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_cli_failed_fit_leaves_no_output(spring_csv, tmp_path, monkeypatch):
    fail_on_calls(monkeypatch, "_window_loss_grad", set(range(1, 500)), math.nan)
    out = tmp_path / "fit"
    args = ["identify", str(spring_csv), "--time", "t", "--inputs", "u"]
    args += ["--outputs", "q", "--out", str(out), *CLI_TINY]
    assert main([*args, "--iterations", "20"]) == 1
    assert not out.exists()


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


def test_report_that_fails_midway_leaves_the_old_directory(reference, tmp_path):
    from phcontrol import plotting
    from phcontrol.report import write_report

    out = tmp_path / "fit"
    out.mkdir()
    (out / "old.txt").write_text("old")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plotting, "plot_prediction", broken)
        with pytest.raises(OSError, match="disk full"):
            write_report(reference, out, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_certificate_write_is_atomic(tmp_path, monkeypatch):
    import phcontrol as phc
    from phcontrol.passivity import write_certificate

    model = phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2),
        phc.CanonicalJ(2),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )
    phc.save(model, tmp_path / "m.safetensors")
    target = tmp_path / "m.cert.json"
    target.write_text("previous")

    def no_rename(src, dst):
        raise OSError("rename refused")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename refused"):
        write_certificate(tmp_path / "m.safetensors", target, steps=3)
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.cert.json",
        "m.safetensors",
    ]
