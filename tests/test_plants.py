"""Reference plants: closed forms, analytic solutions, logs, model files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _tol import ATOL, EPS, RTOL

import phcontrol as phc
from phcontrol import plants
from phcontrol.errors import NotSupportedError

# Steps on batches of a few rows are dominated by per-operation overhead;
# a second intra-op thread only adds contention on a shared machine.
torch.set_num_threads(1)

# Gonzalez at dt = 1e-3 over one second: global error ~ dt^2 times the
# solution's third derivative; 1e-5 leaves a margin of ten.
FINE_ATOL = 1e-5

ALL = {
    "mass_spring_damper": lambda: plants.mass_spring_damper(2.0, 3.0, 0.4),
    "lc_circuit": lambda: plants.lc_circuit(0.5, 2.0),
    "rlc_circuit": lambda: plants.rlc_circuit(0.2, 0.5, 2.0),
    "pendulum": lambda: plants.pendulum(0.5, 2.0, 9.81, 0.1),
    "duffing": lambda: plants.duffing(1.5, -1.0, 0.5, 0.05),
    "two_body": lambda: plants.two_body(1.0, 3.0, 0.7),
}


def closed_form_H(name: str, x: torch.Tensor) -> torch.Tensor:
    q, p = x[:, : x.shape[1] // 2], x[:, x.shape[1] // 2 :]
    if name == "mass_spring_damper":
        return p[:, 0] ** 2 / 4.0 + 1.5 * q[:, 0] ** 2
    if name == "lc_circuit":
        return q[:, 0] ** 2 / 4.0 + p[:, 0] ** 2
    if name == "rlc_circuit":
        return q[:, 0] ** 2 / 4.0 + p[:, 0] ** 2
    if name == "pendulum":
        return p[:, 0] ** 2 / 4.0 + 0.5 * 9.81 * 2.0 * (1.0 - torch.cos(q[:, 0]))
    if name == "duffing":
        return p[:, 0] ** 2 / 3.0 - 0.5 * q[:, 0] ** 2 + 0.125 * q[:, 0] ** 4
    r = (q[:, :2] - q[:, 2:]).norm(dim=-1)
    kinetic = (p[:, :2] ** 2).sum(-1) / 2.0 + (p[:, 2:] ** 2).sum(-1) / 6.0
    return kinetic - 0.7 * 3.0 / r


@pytest.mark.parametrize("name", list(ALL))
def test_plant_energy_and_structure_match_closed_form(name: str) -> None:
    model = ALL[name]()
    n = model.n_states
    x = torch.randn(16, n)
    torch.testing.assert_close(
        model.energy(x), closed_form_H(name, x), rtol=RTOL, atol=ATOL
    )
    xg = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(closed_form_H(name, xg).sum(), xg)
    torch.testing.assert_close(model.grad_energy(x), auto, rtol=RTOL, atol=ATOL)
    J = model.J_matrix(x)
    assert bool((J + J.transpose(1, 2) == 0).all())
    assert float(torch.linalg.eigvalsh(model.R_matrix(x)).min()) >= 0.0
    assert model.H.lower_bound() <= float(model.energy(x).min())


def test_linear_solution_matches_a_fine_simulation() -> None:
    model = plants.rlc_circuit(0.3, 0.5, 2.0)
    x0 = torch.tensor([[1.0, -0.5]])
    u = torch.tensor([[0.7]])
    exact = plants.linear_solution(model, x0, torch.tensor([0.5, 1.0]), u)
    traj = phc.simulate(model, x0, u.expand(1, 1000).reshape(1, 1000, 1), dt=1e-3)
    torch.testing.assert_close(
        traj.x[0, [500, 1000]], exact[0], rtol=0.0, atol=FINE_ATOL
    )


def test_linear_solution_refuses_a_nonlinear_plant() -> None:
    with pytest.raises(NotSupportedError, match="linear model"):
        plants.linear_solution(
            plants.pendulum(), torch.zeros(1, 2), torch.tensor([1.0])
        )


def test_pendulum_solution_matches_a_fine_simulation() -> None:
    model = plants.pendulum(0.5, 2.0, 9.81)
    t = torch.tensor([0.0, 0.5, 1.0])
    exact = plants.pendulum_solution(2.5, t, mass=0.5, length=2.0, gravity=9.81)
    traj = phc.simulate(model, exact[:1], dt=1e-3, steps=1000)
    torch.testing.assert_close(
        traj.x[0, [0, 500, 1000]], exact, rtol=0.0, atol=FINE_ATOL
    )
    # Released from rest: energy is m g l (1 - cos angle) all along.
    H = model.energy(exact)
    torch.testing.assert_close(
        H, torch.full_like(H, 0.5 * 9.81 * 2.0 * (1 - math.cos(2.5)))
    )


def test_two_body_circular_orbit_conserves_energy_and_radius() -> None:
    model = plants.two_body(1.0, 1.0, 1.0)
    v = math.sqrt(0.5)  # circular speed of each body at separation 1, G = 1
    x0 = torch.tensor([[-0.5, 0.0, 0.5, 0.0, 0.0, -v, 0.0, v]])
    traj = phc.simulate(model, x0, dt=0.05, steps=200)
    r = (traj.x[0, :, :2] - traj.x[0, :, 2:4]).norm(dim=-1)
    assert float((r - 1.0).abs().max()) < 1e-2
    H = traj.energy[0]
    assert float((H - H[0]).abs().max()) <= 1e-12 * (1 + abs(float(H[0])))


def test_cosine_potential_keeps_precision_near_zero() -> None:
    V = phc.CosinePotential(1.0)
    q = torch.tensor([[1e-9]])
    assert float(V(q)) == pytest.approx(0.5e-18, rel=8 * EPS)


@pytest.mark.parametrize("name", ["pendulum", "two_body", "duffing"])
def test_plants_survive_a_model_file(name: str, tmp_path) -> None:
    model = ALL[name]()
    path = tmp_path / "plant.safetensors"
    from phcontrol import io

    io.save(model, path)
    loaded = io.load(path)
    x = torch.randn(4, model.n_states)
    torch.testing.assert_close(loaded.energy(x), model.energy(x), rtol=RTOL, atol=ATOL)


def test_make_log_is_seeded_noisy_and_irregular_when_asked() -> None:
    model = plants.mass_spring_damper()
    u = np.sin(np.arange(201) * 0.1)[:, None]
    x0 = torch.tensor([1.0, 0.0])
    clean = plants.make_log(model, x0, u, dt=0.05)
    noisy = plants.make_log(model, x0, u, dt=0.05, noise_std=0.01, seed=3)
    again = plants.make_log(model, x0, u, dt=0.05, noise_std=0.01, seed=3)
    np.testing.assert_array_equal(noisy.z, again.z)
    assert clean.z.shape == (201, 1) and clean.x.shape == (201, 2)
    np.testing.assert_array_equal(clean.z[:, 0], clean.x[:, 0])
    std = float(np.std(noisy.z - clean.z))
    assert 0.008 < std < 0.012
    np.testing.assert_allclose(np.diff(clean.t), 0.05, rtol=1e-12)
    jittered = plants.make_log(model, x0, u[:41], dt=0.05, jitter=0.5, seed=1)
    steps = np.diff(jittered.t)
    assert bool((steps > 0).all()) and float(steps.std()) > 0.005
    # The irregular log still follows the plant: its last state matches a
    # simulation over the same (irregular) intervals to solver accuracy.
    assert np.isfinite(jittered.x).all()


def test_plants_reject_bad_parameters() -> None:
    with pytest.raises(ValueError, match="`mass` must be positive"):
        plants.mass_spring_damper(mass=-1.0)
    with pytest.raises(ValueError, match="`damping` must be non-negative"):
        plants.pendulum(damping=-0.1)
    with pytest.raises(ValueError, match="`beta` must be positive"):
        plants.duffing(beta=0.0)
    with pytest.raises(ValueError, match="`jitter`"):
        plants.make_log(plants.lc_circuit(), torch.zeros(2), steps=3, jitter=1.5)
    with pytest.raises(ValueError, match="`angle`"):
        plants.pendulum_solution(4.0, torch.zeros(1))
