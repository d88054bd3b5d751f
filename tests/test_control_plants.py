"""Reference plants added for control: closed forms, structure, equilibria."""

from __future__ import annotations

import math

import pytest
import torch
from _tol import ATOL, RTOL

from phcontrol import plants

torch.set_num_threads(1)


def lagrangian_energy(name: str, x: torch.Tensor) -> torch.Tensor:
    """Energy written from the bodies' velocities, independent of M(q)."""
    q1, q2 = x[:, 0], x[:, 1]
    if name == "cart_pole":
        mc, mp, ell, g = 1.0, 0.1, 0.5, 9.81
        M = torch.stack(
            [
                torch.stack(
                    [torch.full_like(q2, mc + mp), mp * ell * torch.cos(q2)], -1
                ),
                torch.stack(
                    [mp * ell * torch.cos(q2), torch.full_like(q2, mp * ell**2)], -1
                ),
            ],
            -2,
        )
        v = torch.linalg.solve(M, x[:, 2:].unsqueeze(-1)).squeeze(-1)
        sd, td = v[:, 0], v[:, 1]
        # pole tip velocity (sd + l cos q td, l sin q td)
        vx = sd + ell * torch.cos(q2) * td
        vy = ell * torch.sin(q2) * td
        kin = 0.5 * mc * sd**2 + 0.5 * mp * (vx**2 + vy**2)
        return kin + mp * g * ell * (1 - torch.cos(q2))
    # two-link arm with uniform unit rods: potential from the centres of mass
    g = 9.81
    y1 = -0.5 * torch.cos(q1)
    y2 = -torch.cos(q1) - 0.5 * torch.cos(q1 + q2)
    return (
        plants.two_link_arm().H(x)
        - plants.two_link_arm().H.potential(x[:, :2])
        + g * (y1 + 0.5)
        + g * (y2 + 1.5)
    )


@pytest.mark.parametrize(
    "name, build",
    [("cart_pole", plants.cart_pole), ("two_link_arm", plants.two_link_arm)],
)
def test_rigid_energy_matches_the_bodies_and_its_gradient_matches_autograd(
    name, build
) -> None:
    model = build()
    x = torch.randn(16, 4)
    torch.testing.assert_close(
        model.energy(x), lagrangian_energy(name, x), rtol=RTOL, atol=ATOL
    )
    xg = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(model.H(xg).sum(), xg)
    torch.testing.assert_close(model.grad_energy(x), auto, rtol=RTOL, atol=ATOL)


def test_arm_mass_matrix_is_that_of_two_uniform_rods() -> None:
    # Kinetic energy of rod 2 from its centre-of-mass velocity and spin.
    H = plants.two_link_arm().H
    q = torch.tensor([[0.3, -1.1]])
    qd = torch.tensor([[0.7, 0.4]])
    M = H.mass(q)[0]
    q1, q2 = q[0]
    w1, w2 = qd[0]
    v1 = 0.5 * w1
    c2x = torch.cos(q1) * w1 + 0.5 * torch.cos(q1 + q2) * (w1 + w2)
    c2y = torch.sin(q1) * w1 + 0.5 * torch.sin(q1 + q2) * (w1 + w2)
    kin = 0.5 * v1**2 + w1**2 / 24 + 0.5 * (c2x**2 + c2y**2) + (w1 + w2) ** 2 / 24
    torch.testing.assert_close(0.5 * qd[0] @ M @ qd[0], kin, rtol=RTOL, atol=ATOL)


def test_inertia_wheel_pendulum_is_actuated_through_the_wheel_only() -> None:
    model = plants.inertia_wheel_pendulum()
    x = torch.tensor([[math.pi, 0.0, 0.0, 0.0]])
    assert model.vector_field(x).abs().max() < 1e-15
    G = model.G_matrix(x)[0]
    assert G.flatten().tolist() == [0.0, 0.0, 0.0, 1.0]
    assert model.energy(x).item() == pytest.approx(2.0, rel=1e-15)


def test_boost_converter_follows_the_averaged_circuit_equations() -> None:
    L, C, RL = 2e-3, 470e-6, 20.0
    model = plants.boost_converter(L, C, RL)
    x = torch.tensor([[3e-3, 8e-3]])
    u = torch.tensor([[0.4, 12.0]])
    i, v = x[0, 0] / L, x[0, 1] / C
    d, E = u[0]
    expected = torch.stack([E - (1 - d) * v, (1 - d) * i - v / RL])
    torch.testing.assert_close(model.vector_field(x, u)[0], expected)
    # The switch is lossless: its port output is zero.
    assert model.output(x)[0, 0].abs() < 1e-12
    xs, us = plants.boost_equilibrium(model, 24.0, 12.0)
    assert model.vector_field(xs[None], us[None]).abs().max() < 1e-9


def test_boost_equilibrium_refuses_a_voltage_below_the_source() -> None:
    with pytest.raises(ValueError, match="`voltage` must exceed `source`"):
        plants.boost_equilibrium(plants.boost_converter(), 10.0, 12.0)


def test_arm_refuses_a_mass_matrix_that_is_not_positive_definite() -> None:
    from phcontrol._plant_parts import TwoLinkArmEnergy

    with pytest.raises(ValueError, match="positive definite mass matrix"):
        TwoLinkArmEnergy(1.0, 1.0, 0.5, 1.0, 1.0)
