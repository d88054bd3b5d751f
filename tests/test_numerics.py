"""Numerical faults are reported: a warning by default, the error with strict=True.

Covers implicit steps that do not converge, convex-solver statuses that are
not clean and ill-conditioned storages. Each warning must point at the
caller's line, not at phcontrol's internals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import phcontrol as phc
from phcontrol.errors import (
    ConvergenceError,
    NumericsError,
    NumericsWarning,
    SolverError,
)
from phcontrol.passivity import _kyp


def lossy_model() -> phc.PortHamiltonian:
    return phc.PortHamiltonian(
        phc.MLPHamiltonian(2, hidden=(8,)),
        phc.CanonicalJ(2),
        phc.CholeskyDissipation(2),
        phc.InputMatrix(2, 1),
    )


def test_unconverged_implicit_step_warns_at_the_callers_line() -> None:
    model = lossy_model()
    x0 = torch.ones(2, 2)
    with pytest.warns(NumericsWarning, match="missed tol") as record:
        traj = phc.simulate(model, x0, None, 0.5, steps=3, max_iter=1, tol=1e-15)
    assert not bool(traj.converged.all())
    assert record[0].filename == __file__


def test_unconverged_implicit_step_is_an_error_with_strict() -> None:
    with pytest.raises(ConvergenceError, match="missed tol"):
        phc.simulate(
            lossy_model(), torch.ones(2, 2), None, 0.5, steps=3, max_iter=1,
            tol=1e-15, strict=True,
        )  # fmt: skip


PASSIVE = (
    np.array([[-1.0, 2.0], [-2.0, -1.0]]),
    np.array([[1.0], [0.5]]),
    np.array([[1.0, 0.5]]),
    np.array([[0.0]]),
)


def inaccurate(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """Make every convex solve report ``status`` after solving."""
    original = _kyp._solve_once

    def solve(problem, solver, max_seconds):  # noqa: ANN001
        original(problem, solver, max_seconds)
        return status

    monkeypatch.setattr(_kyp, "_solve_once", solve)


def test_clean_solver_status_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = phc.check_passivity(PASSIVE, method="lmi")
    assert res.verdict == "passive" and res.solver_status == "optimal"


def test_inaccurate_solver_status_warns_and_the_verdict_stays_honest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "optimal_inaccurate")
    with pytest.warns(NumericsWarning, match="status 'optimal_inaccurate'") as record:
        res = phc.check_passivity(PASSIVE, method="lmi")
    assert record[0].filename == __file__
    # An inaccurate solve is never taken as a certificate.
    assert res.verdict != "passive"


def test_inaccurate_solver_status_is_an_error_with_strict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "user_limit")
    with pytest.raises(SolverError, match="status 'user_limit'.*max_seconds"):
        phc.check_passivity(PASSIVE, method="lmi", strict=True)


def test_solver_hint_names_only_the_solvers_not_tried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "optimal_inaccurate")
    with pytest.raises(SolverError) as caught:
        phc.check_passivity(PASSIVE, method="lmi", solver="CLARABEL", strict=True)
    assert "solver='SCS'" in str(caught.value)
    assert "solver='CLARABEL'" not in str(caught.value)


def test_failing_solver_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(problem, solver, max_seconds):  # noqa: ANN001
        raise SolverError("the convex solver failed")

    monkeypatch.setattr(_kyp, "_solve_once", broken)
    with pytest.warns(NumericsWarning, match="status 'solver_error"):
        res = phc.check_passivity(PASSIVE, method="lmi")
    assert res.verdict == "undecided"


def ill_conditioned(c2: float) -> tuple[np.ndarray, ...]:
    """A passive system whose only storage is P = diag(1, c2)."""
    return (-np.eye(2), np.eye(2), np.diag([1.0, c2]), np.zeros((2, 2)))


def test_ill_conditioned_storage_warns() -> None:
    with pytest.warns(NumericsWarning, match=r"condition number 1e\+07") as record:
        lph = phc.from_state_space(ill_conditioned(1e-7))
    assert record[0].filename == __file__
    np.testing.assert_allclose(lph.Q, np.diag([1.0, 1e-7]), rtol=1e-6, atol=1e-14)


def test_ill_conditioned_storage_is_an_error_with_strict() -> None:
    with pytest.raises(NumericsError, match="loses about 7 digits"):
        phc.from_state_space(ill_conditioned(1e-7), strict=True)


def test_well_conditioned_storage_is_quiet_on_both_sides_of_the_threshold() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        phc.from_state_space(ill_conditioned(2e-6), strict=True)  # cond 5e5


def test_irregular_sampling_warning_points_at_the_caller(tmp_path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("t,y\n0,1\n0.1,2\n0.5,3\n0.6,4\n")
    with pytest.warns(phc.DataWarning) as record:
        phc.load_log(path, time="t", outputs=["y"])
    assert record[0].filename == __file__


# ---------------------------------------------------------------- every solve


def test_indices_with_an_inaccurate_solve_warn_and_are_not_certified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "optimal_inaccurate")
    with pytest.warns(
        NumericsWarning, match="indices: .*'optimal_inaccurate' \\(input\\)"
    ) as record:
        idx = phc.passivity_indices(PASSIVE)
    assert record[0].filename == __file__
    assert np.isnan(idx.input.value) and not idx.input.certified


def test_indices_with_an_inaccurate_solve_are_an_error_with_strict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "user_limit")
    with pytest.raises(SolverError, match="status 'user_limit' \\(input\\)"):
        phc.passivity_indices(PASSIVE, strict=True)


def test_indices_report_a_failing_solver_instead_of_raising_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(problem, solver, max_seconds):  # noqa: ANN001
        raise SolverError("the convex solver failed")

    monkeypatch.setattr(_kyp, "_solve_once", broken)
    with pytest.warns(NumericsWarning, match="status 'solver_error"):
        idx = phc.passivity_indices(PASSIVE)
    assert not (idx.input.certified or idx.output.certified or idx.relative.certified)


def test_clean_indices_give_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        idx = phc.passivity_indices(PASSIVE, strict=True)
    assert idx.input.certified and idx.input.solver_status == "optimal"


NOT_PASSIVE = ([[-1.0]], [[1.0]], [[1.0]], [[-0.2]])  # 1/(s + 1) - 0.2


def test_enforcement_from_an_inaccurate_solve_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "optimal_inaccurate")
    with pytest.warns(NumericsWarning, match="enforce_passivity: .*kept because"):
        res = phc.enforce_passivity(NOT_PASSIVE)
    # Kept only because the independent check found it passive.
    assert res.check.verdict == "passive"


def test_enforcement_from_an_inaccurate_solve_is_an_error_with_strict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inaccurate(monkeypatch, "optimal_inaccurate")
    with pytest.raises(SolverError, match="optimal_inaccurate"):
        phc.enforce_passivity(NOT_PASSIVE, strict=True)


def badly_scaled(spread: float) -> tuple[np.ndarray, ...]:
    """2/(s + 1) split over two states whose units differ by ``spread``."""
    return (-np.eye(2), np.array([[1.0], [1 / spread]]), np.array([[1.0, spread]]),
            np.zeros((1, 1)))  # fmt: skip


def test_ill_conditioned_balancing_warns() -> None:
    with pytest.warns(NumericsWarning, match="state scaling .*condition number") as w:
        res = phc.check_passivity(badly_scaled(1e8))
    assert w[0].filename == __file__
    assert res.verdict == "passive"  # the verdict itself is sound
    with pytest.warns(NumericsWarning, match="state scaling"):
        phc.passivity_indices(badly_scaled(1e8))


def test_ill_conditioned_balancing_is_an_error_with_strict() -> None:
    with pytest.raises(NumericsError, match="loses about 16 digits.*Rescale"):
        phc.check_passivity(badly_scaled(1e8), strict=True)
    with pytest.raises(NumericsError, match="state scaling"):
        phc.passivity_indices(badly_scaled(1e8), strict=True)


def test_moderate_scaling_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert phc.check_passivity(badly_scaled(1e5), strict=True).passive


def inaccurate_cvxpy(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """Make every CVXPY problem report ``status`` (values are kept)."""
    import cvxpy as cp

    monkeypatch.setattr(cp.Problem, "status", property(lambda self: status))


def test_lyapunov_lmi_reports_an_inaccurate_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from phcontrol.control import lyapunov_lmi

    inaccurate_cvxpy(monkeypatch, "optimal_inaccurate")
    with pytest.warns(NumericsWarning, match="Lyapunov LMI") as record:
        P, status = lyapunov_lmi(np.array([[-2.0]]), 1.0)
    assert record[0].filename == __file__ and status == "optimal_inaccurate"
    with pytest.raises(SolverError, match="optimal_inaccurate"):
        lyapunov_lmi(np.array([[-2.0]]), 1.0, strict=True)


def test_closed_loop_check_from_an_inaccurate_solve_is_undecided() -> None:
    from phcontrol.control.certificates import _lmi_check as lmi_check

    check = lmi_check(np.array([[-2.0]]), np.array([[1.0]]), 1.0, "optimal_inaccurate")
    assert check.status == "undecided" and "not taken as a certificate" in check.message
    assert lmi_check(np.array([[-2.0]]), np.array([[1.0]]), 0.5, "optimal").status == (
        "pass"
    )


def test_gain_synthesis_reports_inaccurate_solves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from phcontrol.control import synthesize_shaping_gains

    arm = phc.plants.two_link_arm().double()
    inaccurate_cvxpy(monkeypatch, "optimal_inaccurate")
    with pytest.warns(NumericsWarning, match="'optimal_inaccurate' \\(epsilon 1.5\\)"):
        with pytest.raises(SolverError, match="no gains meet"):
            synthesize_shaping_gains(arm, [0.5, -0.3], 1.0, epsilons=[1.5])
    with pytest.raises(
        SolverError, match="status 'optimal_inaccurate' \\(epsilon 1.5\\)"
    ):
        synthesize_shaping_gains(arm, [0.5, -0.3], 1.0, epsilons=[1.5], strict=True)


def test_lyapunov_lmi_called_infeasible_for_a_stable_matrix_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from phcontrol.control import lyapunov_lmi

    inaccurate_cvxpy(monkeypatch, "infeasible")
    with pytest.warns(NumericsWarning, match="says 'infeasible'.*storage exists"):
        lyapunov_lmi(np.array([[-2.0]]), 1.0)
    with pytest.raises(SolverError, match="says 'infeasible'"):
        lyapunov_lmi(np.array([[-2.0]]), 1.0, strict=True)
    with warnings.catch_warnings():  # truly infeasible: decay rate 3 > 2
        warnings.simplefilter("error")
        lyapunov_lmi(np.array([[-2.0]]), 3.0)
