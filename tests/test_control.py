"""Controllers and closed loops: laws, pH forms, audits, regulation, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import phcontrol as phc
from phcontrol import plants
from phcontrol.control import (
    IDAPBC,
    LQR,
    PIPBC,
    CartPolePumping,
    DampingInjection,
    EnergyPumping,
    EnergyShaping,
    SwingUp,
    closed_loop,
    fit_pendulum,
    fit_target_energy,
    record_motion,
    regulation_metrics,
    synthesize_shaping_gains,
    wheel_pendulum_ida_pbc,
)
from phcontrol.errors import NotSupportedError, ShapeError

torch.set_num_threads(1)

# The discrete-gradient audit: per-step residual of the balance, relative
# to 1 + |H| (the numerics contract's figure, with room for Newton's tol).
AUDIT_RTOL = 1e-11


def audit(traj: phc.Trajectory) -> float:
    return float((traj.residual.abs() / (1 + traj.energy[:, :-1].abs())).max())


def test_damping_injection_adds_g_k_gt_and_drains_the_energy() -> None:
    plant = plants.mass_spring_damper(damping=0.0)
    ctrl = DampingInjection(plant, 2.0)
    loop = closed_loop(plant, ctrl)
    assert loop.structured and loop.match_error <= 1e-12
    R = loop.R_matrix(torch.zeros(1, 2))[0]
    assert R.tolist() == [[0.0, 0.0], [0.0, 2.0]]
    traj = phc.simulate(loop, torch.tensor([[1.0, 0.0]]), dt=0.1, steps=60)
    assert audit(traj) < AUDIT_RTOL
    assert bool((traj.energy[0, 1:] <= traj.energy[0, :-1] + 1e-15).all())
    assert bool((traj.dissipated >= 0).all())


def test_damping_injection_refuses_an_indefinite_gain() -> None:
    plant = plants.two_link_arm()
    with pytest.raises(ValueError, match="`gain` must be symmetric positive semidef"):
        DampingInjection(plant, [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="`gain` must be symmetric;"):
        DampingInjection(plant, [[1.0, 0.5], [0.0, 1.0]])


def test_energy_shaping_regulates_the_arm_where_pd_keeps_an_offset() -> None:
    arm = plants.two_link_arm()
    q_star = torch.tensor([0.5, -0.3])
    gains = synthesize_shaping_gains(arm, q_star, decay_rate=2.0)
    shaped = EnergyShaping(arm, q_star, gains.stiffness, gains.damping)
    pd = EnergyShaping(
        arm, q_star, gains.stiffness, gains.damping, gravity_compensation=False
    )
    x0 = torch.zeros(2, 4)
    x0[1, :2] = torch.tensor([-0.4, 0.6])
    runs = {}
    for name, ctrl in (("shaped", shaped), ("pd", pd)):
        loop = closed_loop(arm, ctrl)
        assert loop.structured
        traj = phc.simulate(loop, x0, dt=0.1, steps=50)
        assert audit(traj) < AUDIT_RTOL
        runs[name] = (traj.x[:, -1, :2] - q_star).abs().max().item()
    assert runs["shaped"] < 1e-3
    # Plain PD settles where gravity balances the spring, far from q*.
    assert runs["pd"] > 0.05


def test_pd_closed_loop_energy_has_its_minimum_away_from_the_target() -> None:
    arm = plants.two_link_arm()
    pd = EnergyShaping(arm, [0.5, -0.3], 20.0, 5.0, gravity_compensation=False)
    loop = closed_loop(arm, pd)
    g = loop.H.grad(pd.x_star[None])[0, :2]
    assert g.abs().max() > 1.0  # x* is not a critical point of H_d


def test_energy_shaping_needs_full_actuation() -> None:
    with pytest.raises(NotSupportedError, match="full actuation"):
        EnergyShaping(plants.cart_pole(), [0.0, math.pi], 1.0, 1.0)


def test_a_controller_designed_on_another_model_gives_a_feedback_loop() -> None:
    design = plants.two_link_arm(masses=(1.2, 0.9))
    truth = plants.two_link_arm()
    ctrl = EnergyShaping(design, [0.5, -0.3], 20.0, 5.0)
    loop = closed_loop(truth, ctrl)
    assert not loop.structured
    with pytest.raises(NotSupportedError, match="does not reproduce the plant"):
        closed_loop(truth, ctrl, form="port_hamiltonian")
    # The feedback loop is the true plant under u(x): its field, and the
    # audit of the plant's own energy with the controller's supply.
    x = torch.randn(5, 4)
    torch.testing.assert_close(
        loop.vector_field(x), truth.vector_field(x, ctrl(0.0, x))
    )
    traj = phc.simulate(loop, torch.zeros(1, 4), dt=0.1, steps=20)
    assert audit(traj) < AUDIT_RTOL
    assert traj.supplied.abs().sum() > 0


def test_closed_loop_rejects_mismatched_ports() -> None:
    ctrl = DampingInjection(plants.pendulum(), 1.0)
    with pytest.raises(ShapeError, match="gives 1 inputs but `model` takes 2"):
        closed_loop(plants.two_link_arm(), ctrl)


def test_ida_pbc_law_is_the_least_squares_solution_and_matching_is_exact() -> None:
    plant = plants.inertia_wheel_pendulum()
    ctrl = wheel_pendulum_ida_pbc(plant)
    assert ctrl.H_d.a.item() == pytest.approx(5.0, rel=1e-10)
    assert ctrl.H_d.c.item() == pytest.approx(21.0, rel=1e-10)
    x = ctrl.sample_states(32, 1.0, torch.Generator().manual_seed(3))
    assert ctrl.matching_residual(x).abs().max() < 1e-12
    w, G = ctrl._mismatch(x)
    u_ls = torch.linalg.lstsq(G, w.unsqueeze(-1)).solution.squeeze(-1)
    torch.testing.assert_close(ctrl(0.0, x), u_ls)
    loop = closed_loop(plant, ctrl, form="port_hamiltonian")
    x0 = torch.tensor([[math.pi - 0.3, 0.0, 0.0, 0.0]])
    traj = phc.simulate(loop, x0, dt=0.1, steps=100)
    assert audit(traj) < AUDIT_RTOL
    assert bool((traj.energy[0, 1:] <= traj.energy[0, :-1] + 1e-14).all())
    assert traj.energy[0, -1] < 0.05 * traj.energy[0, 0]


def test_an_unfitted_target_energy_does_not_match() -> None:
    plant = plants.inertia_wheel_pendulum()
    ctrl = wheel_pendulum_ida_pbc(plant, fit=False)
    x = ctrl.sample_states(16, 1.0, torch.Generator().manual_seed(0))
    assert ctrl.matching_residual(x).abs().max() > 1e-3
    assert not closed_loop(plant, ctrl).structured
    fit = fit_target_energy(ctrl, n_samples=64)  # the one start near c = 0
    assert not fit.verified and fit.max_residual > 1e-6


def test_ida_pbc_refuses_a_mismatched_target_size() -> None:
    plant = plants.inertia_wheel_pendulum()
    with pytest.raises(ShapeError, match="`J_d` must have shape"):
        IDAPBC(plant, plant.H, torch.zeros(3, 3), None, [0.0] * 4)


def test_pi_pbc_tracks_a_voltage_reference_with_a_ph_closed_loop() -> None:
    plant = plants.boost_converter()
    x_star, u_star = plants.boost_equilibrium(plant, 24.0, 12.0)
    ctrl = PIPBC(plant, x_star, u_star, proportional=1e-2, integral=10.0)
    x = torch.tensor([[0.0, 470e-6 * 12.0, 0.0]])
    for volts in (24.0, 30.0):
        xs, us = plants.boost_equilibrium(plant, volts, 12.0)
        ctrl = ctrl.retarget(xs, us)
        loop = closed_loop(plant, ctrl, form="port_hamiltonian")
        J = loop.J_matrix(x)
        assert (J + J.transpose(1, 2)).abs().max() == 0
        traj = phc.simulate(loop, x, dt=2e-4, steps=300)
        assert audit(traj) < AUDIT_RTOL
        assert bool((traj.dissipated >= 0).all())
        x = traj.x[:, -1]
        duty = ctrl(0.0, traj.x[0])[:, 0]
        assert 0.0 < float(duty.min()) and float(duty.max()) < 1.0
        assert abs(x[0, 1].item() / 470e-6 - volts) < 0.05


def test_pi_pbc_refuses_a_state_that_is_not_an_equilibrium() -> None:
    plant = plants.boost_converter()
    x_star, u_star = plants.boost_equilibrium(plant, 24.0, 12.0)
    with pytest.raises(ValueError, match="must be an equilibrium"):
        PIPBC(plant, 1.1 * x_star, u_star, 1e-2, 10.0)


def test_energy_pumping_injects_negative_damping_below_the_target() -> None:
    plant = plants.pendulum()
    pump = EnergyPumping(plant, [math.pi, 0.0], gain=1.0, max_input=2.0)
    loop = closed_loop(plant, pump, form="port_hamiltonian")
    x0 = torch.tensor([[0.3, 0.0]])
    traj = phc.simulate(loop, x0, dt=0.05, steps=40)
    assert audit(traj) < AUDIT_RTOL
    assert bool((traj.dissipated <= 1e-15).all())  # energy only flows in
    assert traj.energy[0, -1] > traj.energy[0, 0]
    u = pump(0.0, traj.x[0])
    assert float(u.abs().max()) <= 2.0 + 1e-12


def test_pumping_is_blind_at_rest_and_the_swing_up_kicks() -> None:
    plant = plants.pendulum()
    pump = EnergyPumping(plant, [math.pi, 0.0], gain=1.0, max_input=3.0)
    local = EnergyShaping(plant, [math.pi], 30.0, 8.0, periodic=True)
    swing = SwingUp(pump, local, angle=0)
    rest = torch.zeros(1, 2)
    assert pump(0.0, rest).item() == 0.0
    assert swing(0.0, rest).item() == 3.0
    # Away from rest the kick fades out continuously.
    moving = torch.tensor([[0.0, 5.0]])
    assert swing.kick_input(moving).item() == 0.0


def test_pendulum_swings_up_from_rest_and_is_caught_upright() -> None:
    plant = plants.pendulum(damping=0.05)
    pump = EnergyPumping(plant, [math.pi, 0.0], gain=2.0, max_input=3.0)
    local = EnergyShaping(plant, [math.pi], 30.0, 8.0, periodic=True)
    swing = SwingUp(pump, local, angle=0)
    loop = closed_loop(plant, swing)
    assert not loop.structured
    x0 = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    traj = phc.simulate(loop, x0, dt=0.05, steps=200)
    assert audit(traj) < 1e-9
    m = regulation_metrics(
        traj.t, traj.x, swing.x_star, swing, tolerance=1e-2, angles=[0]
    )
    assert m.success.all(), m


def test_cart_pole_pumping_commands_the_cart_acceleration_exactly() -> None:
    plant = plants.cart_pole(damping=0.3)
    pump = CartPolePumping(plant, 5.0, 5.0, position_gain=1.0, velocity_gain=1.5)
    x = torch.randn(6, 4)
    xdot = plant.vector_field(x, pump(0.0, x))

    def velocity(z: torch.Tensor) -> torch.Tensor:
        return plant.H.velocity(z[:, :2], z[:, 2:])

    _, acc = torch.autograd.functional.jvp(velocity, x, xdot)
    torch.testing.assert_close(acc[:, 0], pump.acceleration(x))


def test_cart_pole_swings_up_and_lqr_catches_it() -> None:
    plant = plants.cart_pole()
    up = [0.0, math.pi, 0.0, 0.0]
    lqr = LQR(plant, up, [1.0, 10.0, 1.0, 1.0], 1.0, angles=[1])
    pump = CartPolePumping(plant, 10.0, 8.0, position_gain=1.0, velocity_gain=2.0)
    swing = SwingUp(pump, lqr, angle=1, switch_angle=0.4, kick=2.0)
    traj = phc.simulate(
        closed_loop(plant, swing), torch.zeros(1, 4), dt=0.04, steps=250
    )
    err = lqr.error(traj.x[0, -1:]).abs().max().item()
    assert err < 1e-2


def test_identified_pendulum_recovers_the_parameters_from_noisy_logs() -> None:
    plant = plants.pendulum(0.5, 2.0, 9.81, 0.1)
    u = 1.5 * np.sin(0.03 * np.arange(801))[:, None]
    log = record_motion(plant, [0.3, 0.0], u, 0.01, noise_std=1e-3, seed=1)
    fit = fit_pendulum(log)
    assert fit.parameters["inertia"] == pytest.approx(2.0, rel=1e-2)
    assert fit.parameters["gravity_torque"] == pytest.approx(9.81, rel=1e-2)
    assert fit.model.energy(torch.tensor([[math.pi, 0.0]])).item() == pytest.approx(
        2 * 9.81, rel=1e-2
    )
