"""``identify`` under ``torchrun``: two CPU processes fit what one process fits.

A tiny fit (``tests/_distributed_fit.py``) runs in this process and once
more as two processes joined by gloo. Each process simulates half of the
windows; the sums over windows are reduced in another order, so the two
fits agree to round-off amplified by the optimisers, not bit for bit. The
processes among themselves hold the same numbers exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _distributed_fit import FITS, tiny_fit, write_csv
from _tol import EPS

from phcontrol._lm import _FD_STEP

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (
            torch.distributed.is_available() and torch.distributed.is_gloo_available()
        ),
        reason="this torch build has no torch.distributed with the gloo backend",
    ),
]

ROOT = Path(__file__).resolve().parents[1]

LM_SOLVE_TOL = 1e-13
"""Tolerance of the implicit steps in the Levenberg–Marquardt stage."""

# Forward differences divide each simulation's error by the step: a state
# solved to 1e-13 on one side of the convergence test and a little closer on
# the other moves a Jacobian entry by up to tol / step = 1e-7, and two LM
# rounds of two steps carry that into the parameters. Measured: parameters
# 6.6e-7, validation RMSE 5.2e-7, validation losses 1.0e-6.
RTOL = {"lm": 100 * LM_SOLVE_TOL / _FD_STEP}  # 1e-5
# Gradients summed in another order differ by a few eps; L-BFGS's line search
# and Adam's division by the root mean square gradient amplify that.
# Measured: parameters 3.3e-12, validation RMSE 2.1e-12, losses 4.1e-12.
RTOL["lbfgs"] = 2**22 * EPS  # about 9e-10


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the tiny fits as two processes; return their folder, their
    stdout and each rank's results."""
    out = tmp_path_factory.mktemp("ddp")
    write_csv(out / "duffing.csv")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH")) if p
    )
    env["OMP_NUM_THREADS"] = "1"
    env["PHCONTROL_DIST_TIMEOUT"] = "120"  # a lost peer fails the test, no hang
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free port on localhost
        "--nproc_per_node=2",
        str(ROOT / "tests" / "_distributed_fit.py"),
        str(out),
    ]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads((out / f"rank{k}.json").read_text()) for k in range(2)]
    return {"out": out, "stdout": done.stdout, "ranks": results}


def _assert_parameters_close(ours: dict, reference: dict, rtol: float) -> None:
    assert ours.keys() == reference.keys()
    for name, values in reference.items():
        expected = torch.tensor(values, dtype=torch.float64)
        found = torch.tensor(ours[name], dtype=torch.float64)
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        # atol scales with the tensor's largest entry: an entry near zero
        # inherits the absolute error of the larger ones it was computed with.
        torch.testing.assert_close(
            found, expected, rtol=rtol, atol=rtol * scale, msg=name
        )


def test_every_process_ends_with_the_same_model(two_processes):
    first, second = two_processes["ranks"]
    for name in FITS:
        assert first[name]["processes"] == second[name]["processes"] == 2
        assert first[name]["parameters"] == second[name]["parameters"]
        assert first[name]["val_rmse"] == second[name]["val_rmse"]


@pytest.mark.parametrize("name", sorted(FITS))
def test_two_processes_fit_what_one_process_fits(two_processes, name):
    one = tiny_fit(name)
    two = two_processes["ranks"][0][name]
    assert one["processes"] == 1
    _assert_parameters_close(two["parameters"], one["parameters"], RTOL[name])
    assert two["val_rmse"] == pytest.approx(one["val_rmse"], rel=RTOL[name], abs=0)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=RTOL[name], abs=0)


def test_command_line_under_torchrun_writes_and_prints_once(two_processes):
    assert [r["cli_status"] for r in two_processes["ranks"]] == [0, 0]
    report = json.loads((two_processes["out"] / "cli" / "report.json").read_text())
    assert report["settings"]["processes"] == 2
    assert two_processes["stdout"].count("simulation RMSE") == 1
