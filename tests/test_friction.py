"""A mass with viscous and Coulomb friction: its dissipation, step and fit."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from _records import stepped_positions
from _tol import EIG_ATOL

import phcontrol as phc
from phcontrol import _mechanical
from phcontrol._friction import build_friction, friction_parameters
from phcontrol.data import Log
from phcontrol.identify import identify

DT = 0.05


def friction_plant(
    m: float = 1.0, c: float = 0.3, F: float = 0.5, width: float = 0.05
) -> phc.PortHamiltonian:
    """m q'' = u - c q' - F tanh(q' / width) - 0.2 - 0.1 q, as a pH model."""
    H = phc.MechanicalHamiltonian(
        1,
        potential=[
            phc.PolynomialPotential(
                1, degree=2, coefficients=torch.tensor([[0.2, 0.05]])
            )
        ],
        mass=torch.tensor([[m]]),
    )
    R = phc.CoulombViscousDissipation(
        2,
        mask=[False, True],
        viscous=torch.tensor([c, c]),
        coulomb=torch.tensor([m * F, m * F]),
        width=m * width,
    )
    G = phc.InputMatrix(
        2, 1, mask=torch.tensor([[0.0], [1.0]]), init=torch.tensor([[0.0], [1.0]])
    )
    return phc.PortHamiltonian(H, phc.CanonicalJ(2), R, G).to(torch.float64)


@functools.lru_cache(maxsize=2)
def friction_log(samples: int = 400, seed: int = 0) -> Log:
    """A record of the plant driven by a smooth random force."""
    plant = friction_plant()
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal(samples + 20)
    u = np.convolve(raw, np.ones(10) / 10, mode="same")[:samples] * 3.0
    z = stepped_positions(plant, u, DT)
    return Log(t=DT * np.arange(samples), u=u[:, None], z=z[:, None], source="dry")


def test_dissipation_is_psd_and_finite_at_rest():
    torch.manual_seed(0)
    R = phc.CoulombViscousDissipation(3, width=torch.tensor([1e-3, 0.1, 2.0]))
    with torch.no_grad():
        R.viscous_raw.normal_()
        R.coulomb_raw.normal_()
    x = torch.cat(
        [torch.randn(64, 3) * 5.0, torch.zeros(1, 3), 1e-9 * torch.ones(1, 3)]
    )
    x = x.to(torch.float64)
    Rx = R.to(torch.float64)(x)
    assert bool(torch.isfinite(Rx).all())
    assert bool((torch.linalg.eigvalsh(Rx) >= -EIG_ATOL * Rx.abs().amax()).all())
    c, F = R.coefficients()
    w = R.width
    at_rest = Rx[64].diagonal()
    torch.testing.assert_close(at_rest, c + F / w)


def test_friction_force_is_viscous_plus_coulomb():
    R = phc.CoulombViscousDissipation(
        1, viscous=torch.tensor([0.4]), coulomb=torch.tensor([1.5]), width=0.2
    ).to(torch.float64)
    s = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)[:, None]
    force = R.diagonal(s) * s
    torch.testing.assert_close(force, 0.4 * s + 1.5 * torch.tanh(s / 0.2))
    # The law's two outputs: r and s r'(s), whose sum is the force's slope.
    s_small = torch.tensor([-2e-4, -1e-9, 0.0, 3e-4, 0.5], dtype=torch.float64)
    r, s_dr = R.law(s_small, 0)
    slope = 0.4 + 1.5 / 0.2 / torch.cosh(s_small / 0.2) ** 2
    torch.testing.assert_close(r + s_dr, slope)


def test_bad_width_is_refused_with_its_name():
    with pytest.raises(ValueError, match="`width` must be a positive"):
        phc.CoulombViscousDissipation(2, width=-1.0)
    with pytest.raises(phc.ShapeError, match="`coulomb` must have shape"):
        phc.CoulombViscousDissipation(2, coulomb=torch.ones(3))


def test_fast_step_keeps_the_energy_balance_exact():
    plant = friction_plant()
    assert _mechanical.supports(plant)
    stepper = _mechanical.MechanicalStepper(plant, 0.1, 1e-12, 50)
    torch.manual_seed(1)
    x = torch.randn(32, 2, dtype=torch.float64)
    x[:4, 1] = 0.0  # at rest, where the Coulomb law is steepest
    with torch.no_grad():
        for _ in range(50):
            u = torch.randn(32, 1, dtype=torch.float64)
            xn, _, ok = stepper.step(x, u)
            supplied, dissipated = stepper.balance_terms(x, xn, u)
            H0, H1 = plant.H(x), plant.H(xn)
            residual = (H1 - H0 + dissipated - supplied).abs()
            assert bool(ok.all())
            assert bool((residual <= 1e-12 * (1.0 + H1.abs())).all())
            assert bool((dissipated >= 0).all())
            x = xn


def test_generic_discrete_gradient_agrees_with_the_fast_step():
    plant = friction_plant()
    x0 = torch.tensor([[0.5, 0.3]], dtype=torch.float64)
    u = torch.full((1, 40, 1), 0.4, dtype=torch.float64)
    stepper = _mechanical.MechanicalStepper(plant, 0.02, 1e-12, 50)
    x = x0
    with torch.no_grad():
        traj = phc.simulate(plant, x0, u, dt=0.02, method="itoh_abe")
        for i in range(40):
            x, _, _ = stepper.step(x, u[:, i])
    assert traj.residual is not None
    assert float(traj.residual.abs().max()) <= 1e-10
    # Both are second-order schemes of the same model; they agree to O(dt^2).
    torch.testing.assert_close(x, traj.x[:, -1], rtol=0.0, atol=1e-3)


def test_unforced_model_returns_to_its_equilibrium():
    plant = friction_plant(width=0.5)
    stepper = _mechanical.MechanicalStepper(plant, 0.5, 1e-12, 50)
    q_star = friction_parameters(plant)["equilibrium"]
    x = torch.tensor([[q_star + 3.0, 2.0], [q_star - 2.0, -1.0]], dtype=torch.float64)
    u = torch.zeros(2, 1, dtype=torch.float64)
    energy = [plant.H(x)]
    with torch.no_grad():
        for _ in range(300):
            x, _, ok = stepper.step(x, u)
            assert bool(ok.all())
            energy.append(plant.H(x))
    H = torch.stack(energy)
    assert bool((H[1:] <= H[:-1] + 1e-12).all())  # never gains energy
    torch.testing.assert_close(
        x, torch.tensor([[q_star, 0.0]] * 2, dtype=torch.float64), atol=1e-3, rtol=0
    )


def test_warm_start_recovers_the_plant_by_equation_error():
    log = friction_log()
    u = (log.u - log.u.mean(0)) / log.u.std(0)
    z = (log.z - log.z.mean(0)) / log.z.std(0)
    system, states = build_friction(1, u, z)
    values = friction_parameters(system.to(torch.float64))
    assert states.shape == (len(log), 2)
    assert values["mass"] > 0 and values["coulomb_force"] > 0
    assert values["spring"] >= 1e-4 and values["viscous"] > 0


@pytest.fixture(scope="module")
def tiny_fit():
    return identify(
        friction_log(),
        model="friction",
        substeps=2,
        input_hold="zoh",
        window=30,
        batch_size=8,
        lbfgs_steps=2,
        iterations=2,
        val_every=2,
    )


def test_tiny_fit_is_accurate_passive_and_audited(tiny_fit):
    z = friction_log().z
    assert tiny_fit.report.metrics["val"]["rmse"] < 0.25 * float(np.std(z))
    assert tiny_fit.report.audit["max_relative_residual"] <= 1e-10
    system = tiny_fit.model.system
    assert isinstance(system.R, phc.CoulombViscousDissipation)
    x = torch.randn(64, 2, dtype=torch.float64) * 3.0
    assert bool((torch.linalg.eigvalsh(system.R_matrix(x)) >= 0).all())


def test_friction_model_file_round_trip_predicts_the_same(tiny_fit, tmp_path):
    log = friction_log()
    path = tmp_path / "friction.safetensors"
    phc.io.save(tiny_fit.model, path)
    loaded = phc.io.load(path)
    assert isinstance(loaded.system.R, phc.CoulombViscousDissipation)
    a, _ = tiny_fit.model.predict(log.u, log.z, n_init=20)
    b, _ = loaded.predict(log.u, log.z, n_init=20)
    np.testing.assert_array_equal(a, b)
    assert friction_parameters(loaded.system) == friction_parameters(
        tiny_fit.model.system
    )
