"""The fast exact step for one-degree-of-freedom mechanical models."""

from __future__ import annotations

import pytest
import torch
from _tol import EPS

import phcontrol as phc
from phcontrol import _mechanical
from phcontrol.structure import PolynomialDissipation


def duffing(hidden: int = 0, damping_degree: int = 1) -> phc.PortHamiltonian:
    potential = [
        phc.PolynomialPotential(
            1, degree=4, coefficients=torch.tensor([[0.1, 0.5, 0.05, 0.02]])
        )
    ]
    if hidden:
        potential.append(phc.MLPPotential(1, hidden=(hidden,), out_scale=0.3))
    H = phc.MechanicalHamiltonian(1, potential=potential, mass=torch.tensor([[2.0]]))
    init = torch.full((2, damping_degree + 1), 0.2)
    R = PolynomialDissipation(2, mask=[False, True], degree=damping_degree, init=init)
    G = phc.InputMatrix(
        2, 1, mask=torch.tensor([[0.0], [1.0]]), init=torch.tensor([[0.0], [1.0]])
    )
    return phc.PortHamiltonian(H, phc.CanonicalJ(2), R, G)


def test_step_supports_only_its_structure():
    assert _mechanical.supports(duffing())
    generic = phc.PortHamiltonian(phc.MLPHamiltonian(2), phc.CanonicalJ(2))
    assert not _mechanical.supports(generic)


@pytest.mark.parametrize("hidden", [0, 8])
def test_step_keeps_the_energy_balance(hidden):
    model = duffing(hidden)
    stepper = _mechanical.MechanicalStepper(model, 0.05, 1e-13, 50)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(16, 2, generator=gen)
    worst = 0.0
    with torch.no_grad():
        for _ in range(300):
            u = torch.randn(16, 1, generator=gen)
            x_next, _, ok = stepper.step(x, u)
            assert bool(ok.all())
            supplied, dissipated = stepper.balance_terms(x, x_next, u)
            H, H_next = model.H(x), model.H(x_next)
            res = (H_next - H + dissipated - supplied).abs() / (1.0 + H_next.abs())
            worst = max(worst, float(res.max()))
            x = x_next
    # Tolerance 1e-13 of the scalar solve plus a few roundings of H.
    assert worst <= 1e-12


def test_step_agrees_with_the_general_discrete_gradient():
    # Itoh-Abe and Gonzalez differ by O(dt^3) a step; both are second order.
    model = duffing(hidden=8)
    dt, steps = 0.01, 200
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]])
    u = torch.full((2, steps, 1), 0.4)
    stepper = _mechanical.MechanicalStepper(model, dt, 1e-13, 50)
    x = x0
    with torch.no_grad():
        for k in range(steps):
            x, _, _ = stepper.step(x, u[:, k])
        reference = phc.simulate(model, x0, u, dt=dt).x[:, -1]
    torch.testing.assert_close(x, reference, rtol=0.0, atol=1e-4)


def test_step_gradients_pass_the_gradient_check():
    model = duffing(hidden=4)
    x = torch.tensor([[0.7, -0.4], [0.1, 1.2]], requires_grad=True)
    u = torch.tensor([[0.3], [-0.8]])

    def one_step(x: torch.Tensor) -> torch.Tensor:
        stepper = _mechanical.MechanicalStepper(model, 0.1, 1e-14, 50)
        return stepper.step(x, u)[0]

    assert torch.autograd.gradcheck(one_step, (x,), eps=1e-6, atol=1e-7)
    c = model.R.raw

    def through_damping(raw: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            c.copy_(raw.detach())
        stepper = _mechanical.MechanicalStepper(model, 0.1, 1e-14, 50)
        return stepper.step(x.detach(), u)[0]

    # Finite differences of the parameter against the IFT gradient.
    stepper = _mechanical.MechanicalStepper(model, 0.1, 1e-14, 50)
    out = stepper.step(x.detach(), u)[0].sum()
    (grad,) = torch.autograd.grad(out, c)
    h = 1e-6
    base = c.detach().clone()
    numeric = torch.zeros_like(base)
    for i in range(base.numel()):
        for sign in (1.0, -1.0):
            shifted = base.clone().flatten()
            shifted[i] += sign * h
            numeric.view(-1)[i] += sign * through_damping(shifted.view_as(base)).sum()
    numeric /= 2 * h
    with torch.no_grad():
        c.copy_(base)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e3 * EPS / h)
