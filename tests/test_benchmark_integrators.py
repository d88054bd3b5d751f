"""The integrator benchmark's measurements, run at toy sizes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import integrators as bench  # noqa: E402


def test_power_balance_meets_its_target_on_a_short_run():
    row = bench.power_balance(batch=4, steps=20, device="cpu")
    assert row.met is True
    assert row.value <= 1e-12
    assert "4 traj x 20 steps" in row.benchmark


def test_cost_row_reports_a_positive_ratio():
    row = bench.cost_of_exactness(batch=8, steps=2, repeats=1)
    assert row.value > 0.0
    assert row.met is (row.value <= 2.0)


@pytest.mark.parametrize("problem", sorted(bench.PROBLEMS))
def test_numpy_right_hand_side_is_the_models_vector_field(problem):
    name, model, states, f_numpy = bench.PROBLEMS[problem]()
    bench._check_rhs(model, f_numpy, states(8))


def test_scipy_rows_compare_the_same_trajectories():
    rows = bench.against_scipy(
        "pendulum", batch=3, steps=10, loop_numpy=3, loop_torch=2
    )
    assert [("numpy" in r.benchmark, "torch" in r.benchmark) for r in rows] == [
        (True, False),
        (False, True),
    ]
    assert "all 3 looped" in rows[0].benchmark
    assert "extrapolated" in rows[1].benchmark
    # Both integrators follow the same pendulum: the state gap is a
    # second-order error at dt = 0.05, far below the states' size.
    gap = float(rows[0].result.rsplit(";", 1)[1])
    assert gap < 1e-2


def test_verlet_row_counts_every_step_across_chunks():
    row = bench.verlet_bounded(steps=1000, chunk=300)
    assert "1000 steps" in row.benchmark
    assert row.met is True


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_request_without_cuda_fails_in_one_line():
    with pytest.raises(SystemExit) as info:
        bench.main(["--device", "cuda"])
    message = str(info.value)
    assert "\n" not in message and "--device cuda" in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_row_runs_on_a_small_batch():
    row = bench.cuda_speed(batch=64, steps=2)
    assert row.value > 0.0


def test_newton_work_counts_every_solve_and_restores_the_solver():
    from phcontrol.integrators import _base

    plain = _base._NewtonSolver.solve
    row = bench.newton_work(batch=4, steps=5)
    assert _base._NewtonSolver.solve is plain
    # At least the start's residual and one polishing residual a step.
    assert row.value >= 2.0
    assert row.met is None
