"""The cascaded-tanks pH model: structure for any parameters, its exact step,
the return of the unforced model to the empty tanks, and its model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tol import EPS

import phcontrol as phc
from phcontrol import _tanks
from phcontrol.data import Log


def random_tanks(seed: int) -> phc.PortHamiltonian:
    """A tank model with parameters drawn at random, overflows included."""
    gen = np.random.default_rng(seed)
    R = _tanks.TankDissipation(
        outflow=tuple(gen.uniform(0.05, 2.0, 2)),
        overflow_level=tuple(gen.uniform(0.5, 8.0, 2)),
        overflow_rate=tuple(gen.uniform(0.01, 3.0, 2)),
        overflow_share=float(gen.uniform(0.05, 0.95)),
    )
    G = phc.InputMatrix(2, 1, mask=torch.tensor([[1.0], [0.0]]))
    return phc.PortHamiltonian(
        _tanks.TankHamiltonian(), _tanks.ZeroInterconnection(2), R, G
    )


def states(n: int = 512) -> torch.Tensor:
    """Levels from well below empty to above any overflow, and exact zeros."""
    x = torch.rand(n, 2) * 24.0 - 4.0
    x[:8] = 0.0
    x[8:16, 0] = 0.0
    return x


@pytest.mark.parametrize("seed", range(6))
def test_dissipation_is_symmetric_psd_for_any_parameters(seed):
    R = random_tanks(seed).R_matrix(states()).detach()
    assert torch.equal(R, R.transpose(1, 2))
    assert bool(torch.isfinite(R).all())
    assert float(torch.linalg.eigvalsh(R).min()) >= -64 * EPS * float(R.abs().max())


def test_energy_is_strictly_convex_with_its_minimum_at_the_empty_tanks():
    H = _tanks.TankHamiltonian()
    x = states(64)
    x.requires_grad_(True)
    p = H.grad(x)
    rows = [torch.autograd.grad(p[:, i].sum(), x, retain_graph=True)[0] for i in (0, 1)]
    hess = torch.stack(rows, dim=1).detach()  # separable: diagonal
    assert float(torch.linalg.eigvalsh(hess).min()) >= 1.0 - 1e-12
    x = x.detach()
    assert float(H(torch.zeros(1, 2))) == 0.0
    assert bool((H(x[16:]) > 0).all())
    torch.testing.assert_close(H.grad(torch.zeros(1, 2)), torch.zeros(1, 2))


def test_discrete_gradient_is_exact_and_consistent():
    H = _tanks.TankHamiltonian()
    x, xn = states(), states()
    dg = H.discrete_gradient(x, xn)
    lhs, rhs = H(xn) - H(x), (dg * (xn - x)).sum(-1)
    torch.testing.assert_close(lhs, rhs, rtol=0.0, atol=1e-12 * (1 + float(H(x).max())))
    torch.testing.assert_close(H.discrete_gradient(x, x), H.grad(x))


@torch.no_grad()
def test_flows_follow_torricelli_and_vanish_at_empty_tanks():
    R = random_tanks(0).R
    f12, lost, f2 = R.flows(torch.tensor([[0.0, 0.0], [-1.0, -2.0]]))
    assert float(torch.cat([f12, lost, f2]).abs().max()) == 0.0
    R = _tanks.TankDissipation(outflow=(0.3, 0.7), overflow_level=(50.0, 50.0))
    f12, _, f2 = R.flows(torch.tensor([[4.0, 9.0]]))
    torch.testing.assert_close(f12, torch.tensor([0.3 * 4.0 / np.sqrt(4.05)]))
    torch.testing.assert_close(f2, torch.tensor([0.7 * 9.0 / np.sqrt(9.05)]))


def test_step_keeps_the_energy_balance_to_the_solver_tolerance():
    model = random_tanks(3)
    x0 = torch.rand(16, 2) * 10.0
    u = torch.rand(16, 60, 1) * 3.0
    audit = _tanks.audit(model, x0, u, substeps=2)
    assert audit["steps"] == 16 * 60
    assert audit["max_relative_residual"] <= 1e-11
    assert audit["dissipated"] > 0.0


def test_step_is_second_order():
    model = random_tanks(1)
    with torch.no_grad():  # smooth flows, levels well above empty
        model.R.overflow_level.fill_(50.0)
        model.G.weight.fill_(2.0)
    x0, u = torch.tensor([[6.0, 2.0]]), torch.full((1, 1), 1.5)

    def end(substeps: int) -> torch.Tensor:
        # Four time units, ``substeps`` steps each.
        xs, _ = _tanks.rollout(model, x0, u.expand(1, 4 * substeps, 1), substeps)
        return xs[0, -1]

    with torch.no_grad():
        ref = end(64)
        e1, e2 = (end(4) - ref).norm(), (end(8) - ref).norm()
    assert abs(float(torch.log2(e1 / e2)) - 2.0) <= 0.25


def test_unforced_model_returns_to_the_empty_tanks():
    model = random_tanks(2)
    x0 = torch.tensor([[6.0, 3.0], [0.5, 9.0], [12.0, 0.0]])
    with torch.no_grad():
        xs, ok = _tanks.rollout(model, x0, torch.zeros(3, 300, 1), substeps=1)
        H = model.energy(xs.flatten(0, 1)).reshape(3, -1)
    assert bool(ok.all())
    assert float(xs[:, -1].abs().max()) <= 1e-2
    assert bool((H[:, 1:] <= H[:, :-1] + 1e-12).all())


def test_step_gradients_match_finite_differences():
    model = random_tanks(4)
    stepper = _tanks.TankStepper(model, 0.5, 1e-13, 50)
    x = torch.tensor([[5.0, 2.0], [1.0, 7.0]], requires_grad=True)
    u = torch.tensor([[1.2], [0.3]])
    assert torch.autograd.gradcheck(
        lambda v: stepper.step(v, u)[0], (x,), eps=1e-6, atol=1e-6
    )


def test_output_map_clips_only_the_reading():
    out = _tanks.TankOutput(gain=0.5, offset=-1.0, saturation=2.0)
    z = out(torch.tensor([[0.0, 4.0], [0.0, 10.0]])).detach()
    assert z.squeeze(-1).tolist() == [1.0, 2.0]
    torch.testing.assert_close(out.inverse(torch.tensor([1.0])), torch.tensor([4.0]))


def short_log() -> Log:
    """The first 300 samples of the benchmark's training record."""
    return phc.datasets.load("cascaded_tanks").splits["train"].slice(0, 300)


@pytest.fixture(scope="module")
def tiny_fit():
    return phc.identify(
        short_log(),
        model="tanks",
        input_hold="zoh",
        substeps=1,
        window=20,
        batch_size=4,
        lbfgs_steps=1,
        iterations=2,
        n_past=5,
    )


def test_tiny_tank_fit_keeps_its_energy_balance_and_the_sensor_range(tiny_fit):
    report = tiny_fit.report
    assert np.isfinite(report.metrics["val"]["rmse"])
    assert report.audit["max_relative_residual"] <= 1e-10
    assert "tank_flows" in report.parameters
    _, z_sim = tiny_fit.predictions["val"]
    assert float(z_sim.max()) <= 10.0  # the sensor's saturation


def test_tank_model_file_round_trip_predicts_the_same(tiny_fit, tmp_path):
    log = short_log()
    path = tmp_path / "tanks.safetensors"
    phc.io.save(tiny_fit.model, path)
    loaded = phc.io.load(path)
    assert isinstance(loaded.output_map, _tanks.TankOutput)
    a, _ = tiny_fit.model.predict(log.u, log.z, n_init=5)
    b, _ = loaded.predict(log.u, log.z, n_init=5)
    np.testing.assert_array_equal(a, b)


def test_tank_model_refuses_a_log_with_two_outputs():
    t = np.arange(300.0)
    log = Log(t=t, u=np.ones((300, 1)), z=np.ones((300, 2)), source="two")
    with pytest.raises(phc.NotSupportedError, match="model='linear'"):
        phc.identify(log, model="tanks", window=20)
