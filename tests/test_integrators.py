"""Integrators: exact energy balance, discrete-gradient axioms, orders, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _tol import EPS
from torch import nn

import phcontrol as phc
from phcontrol import plants
from phcontrol.errors import ConvergenceError, NotSupportedError, NumericsWarning
from phcontrol.integrators import (
    METHODS,
    avf_gradient,
    gonzalez_gradient,
    itoh_abe_gradient,
    simulate,
)

# Steps on batches of a few rows are dominated by per-operation overhead;
# a second intra-op thread only adds contention on a shared machine.
torch.set_num_threads(1)

# The contract of DESIGN.md: per-step balance residual <= 1e-12 (1 + |H|)
# in float64 with the default tolerance.
BALANCE_TOL = 1e-12
# One discrete-gradient evaluation: a few hundred roundings of terms of the
# size of H (MLP widths <= 16, n <= 4).
AXIOM_RTOL = 256 * EPS
# Accuracy of a discrete gradient as x' -> x: relative to
# 1 + |grad H(x̄)|.
NEAR_TOL = 1e-7
# Log-log slope window of the convergence-order tests.
ORDER_WINDOW = 0.25
IMPLICIT = ("gonzalez", "itoh_abe", "avf", "implicit_midpoint")
EXACT = ("gonzalez", "itoh_abe")


def randomise(module: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Overwrite every floating parameter with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def random_model(
    seed: int, n: int = 4, m: int = 2, hidden=(16, 16)
) -> phc.PortHamiltonian:
    """A random MLP energy, skew J, R = LLᵀ ⪰ 0 and G."""
    torch.manual_seed(seed)
    H = randomise(phc.MLPHamiltonian(n, hidden=hidden), seed, 0.5)
    return phc.PortHamiltonian(
        H,
        randomise(phc.SkewSymmetric(n), seed + 1, 0.5),
        randomise(phc.CholeskyDissipation(n), seed + 2, 0.3),
        randomise(phc.InputMatrix(n, m), seed + 3, 0.5),
    ).requires_grad_(False)  # simulations here need no graph


def relative_residual(traj: phc.Trajectory) -> torch.Tensor:
    assert traj.residual is not None and traj.energy is not None
    scale = 1.0 + torch.maximum(traj.energy[:, 1:].abs(), traj.energy[:, :-1].abs())
    return traj.residual.abs() / scale


# --- the discrete power balance -----------------------------------------------


@pytest.mark.parametrize("method", EXACT)
def test_power_balance_holds_per_step_over_1000_steps(method: str) -> None:
    model = random_model(0, hidden=(8,))
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 4, generator=gen)
    u = torch.randn(3, 1000, 2, generator=gen)
    traj = simulate(model, x0, u, dt=0.05, method=method)
    assert bool(traj.converged.all())
    assert float(relative_residual(traj).max()) <= BALANCE_TOL
    # The audit is not vacuous: energy moved through both terms.
    assert float(traj.supplied.abs().sum()) > 1e-2
    assert float(traj.dissipated.sum()) > 1e-2


def test_explicit_euler_fails_the_power_balance_audit() -> None:
    model = random_model(0, hidden=(8,))
    gen = torch.Generator().manual_seed(1)
    traj = simulate(
        model, torch.randn(3, 4, generator=gen), torch.randn(3, 100, 2, generator=gen),
        dt=0.05, method="euler",
    )  # fmt: skip
    assert float(relative_residual(traj).max()) > 1e3 * BALANCE_TOL


def test_closed_loop_balance_is_exact_with_feedback() -> None:
    model = random_model(3, hidden=(8,))

    def damping_injection(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -model.output(x)

    traj = simulate(model, torch.randn(2, 4), damping_injection, dt=0.1, steps=50)
    assert float(relative_residual(traj).max()) <= BALANCE_TOL
    assert bool((traj.supplied <= 1e-12).all())  # u = -y only removes energy


# --- discrete-gradient axioms ----------------------------------------------


def _gradients(model: phc.PortHamiltonian, x, xn):
    H, dH = model.H, model.H.grad
    return {
        "gonzalez": gonzalez_gradient(H, dH, x, xn),
        "itoh_abe": itoh_abe_gradient(H, dH, x, xn),
        "avf": avf_gradient(dH, x, xn, nodes=3),
    }


@pytest.mark.parametrize("seed", range(4))
def test_exact_discrete_gradients_satisfy_the_axioms(seed: int) -> None:
    model = random_model(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=gen)
    xn = x + torch.randn(16, 4, generator=gen) * 10.0 ** torch.randint(
        -6, 1, (16, 1), generator=gen
    )
    H, dH = model.H, model.H.grad
    dE = H(xn) - H(x)
    scale = 1.0 + torch.maximum(H(x).abs(), H(xn).abs())
    for name in EXACT:
        g = _gradients(model, x, xn)[name]
        err = (dE - (g * (xn - x)).sum(-1)).abs() / scale
        assert float(err.max()) <= AXIOM_RTOL, name
        same = _gradients(model, x, x.clone())[name]
        torch.testing.assert_close(same, dH(x), rtol=AXIOM_RTOL, atol=AXIOM_RTOL)


@pytest.mark.parametrize("exponent", [-12, -10, -8, -6, -4])
def test_discrete_gradients_tend_to_the_midpoint_gradient(exponent: int) -> None:
    model = random_model(5)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(32, 4, generator=gen)
    d = torch.randn(32, 4, generator=gen)
    xn = x + 10.0**exponent * d / d.norm(dim=-1, keepdim=True)
    g_mid = model.H.grad(0.5 * (x + xn))
    bound = NEAR_TOL * (1.0 + g_mid.norm(dim=-1))
    names = ["gonzalez", "avf"] + (["itoh_abe"] if exponent <= -8 else [])
    for name in names:
        g = _gradients(model, x, xn)[name]
        assert bool(((g - g_mid).norm(dim=-1) <= bound).all()), name


def test_offsets_and_linear_terms_do_not_change_the_gradient() -> None:
    model = random_model(6)
    b = torch.tensor([0.3, -2.0, 1.0, 0.5])

    def H2(x):
        return model.H(x) + x @ b + 1.0

    def dH2(x):
        return model.H.grad(x) + b

    x = torch.randn(8, 4)
    for step in (1e-1, 1e-5, 1e-9):
        xn = x + step * torch.randn(8, 4)
        g1 = gonzalez_gradient(model.H, model.H.grad, x, xn)
        g2 = gonzalez_gradient(H2, dH2, x, xn)
        bound = NEAR_TOL * (1.0 + g1.norm(dim=-1))
        assert bool(((g2 - b - g1).norm(dim=-1) <= bound).all())


def test_discrete_gradients_are_exact_for_quadratic_energy() -> None:
    Q = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    H = phc.QuadraticHamiltonian(2, Q=Q, eps=0.0)
    x, xn = torch.randn(8, 2), torch.randn(8, 2)
    mid = H.grad(0.5 * (x + xn))
    for g in (
        gonzalez_gradient(H, H.grad, x, xn),
        avf_gradient(H.grad, x, xn, nodes=1),
    ):
        torch.testing.assert_close(g, mid, rtol=AXIOM_RTOL, atol=AXIOM_RTOL)


def test_avf_is_exact_up_to_degree_2k_and_not_beyond() -> None:
    model = plants.duffing(alpha=-1.0, beta=2.0)  # quartic H
    H, dH = model.H, model.H.grad
    x, xn = torch.randn(8, 2), torch.randn(8, 2)
    dE = H(xn) - H(x)
    err = {
        k: (dE - (avf_gradient(dH, x, xn, k) * (xn - x)).sum(-1)).abs().max()
        for k in (1, 2)
    }
    assert float(err[2]) <= AXIOM_RTOL * float(1.0 + dE.abs().max())
    assert float(err[1]) > 1e-6


def test_avf_keeps_total_momentum_of_two_bodies() -> None:
    model = plants.two_body()
    x0 = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, -0.3, 0.1, 0.8]])
    traj = simulate(model, x0, dt=0.05, steps=100, method="avf")
    momentum = traj.x[0, :, 4:6] + traj.x[0, :, 6:8]
    assert float((momentum - momentum[0]).abs().max()) <= 64 * EPS


# --- conservation and drift on the pendulum --------------------------------


def test_pendulum_rk4_drifts_gonzalez_holds_to_round_off() -> None:
    model = plants.pendulum()
    x0 = torch.tensor([[1.0, 0.0]])
    table = phc.compare_integrators(
        model, x0, dt=0.1, steps=1000, methods=["gonzalez", "rk4"]
    )
    H0 = float(model.energy(x0))
    assert table.row("gonzalez").max_energy_error <= BALANCE_TOL * (1.0 + H0)
    rk4 = table.row("rk4").energy_error
    assert float(rk4[-1]) > 1e-3 and float(rk4[-1]) > 5.0 * float(rk4[100])


def test_verlet_energy_error_is_bounded_over_1e5_steps_and_scales_as_dt2() -> None:
    # Three uncoupled pendula with frequencies 1, 2 and 4 in one model: one
    # run steps each at omega * dt = 0.1, 0.2 and 0.4, so the shadow
    # Hamiltonian's dt**2 law is measured in a single vectorised simulation.
    omega = torch.tensor([1.0, 2.0, 4.0])
    H = phc.MechanicalHamiltonian(
        3, potential=phc.CosinePotential((omega**2).tolist()), learn_mass=False
    )
    model = phc.PortHamiltonian(H, phc.CanonicalJ(6))
    x0 = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    traj = simulate(model, x0, dt=0.1, steps=100_000, method="verlet")
    q, p = traj.x[0, :, :3], traj.x[0, :, 3:]
    E = 0.5 * p**2 + omega**2 * (1.0 - torch.cos(q))
    rel = (E - E[:1]).abs() / E[:1]
    early = rel[:1000].amax(0)  # the first 1% of the run
    assert bool((early > 1e-4).all())
    # Bounded: no growth beyond the oscillation seen in the first 1%.
    assert bool((rel.amax(0) <= 1.05 * early).all())
    slope = np.polyfit(np.log(0.1 * omega.numpy()), np.log(rel.amax(0).numpy()), 1)[0]
    assert abs(slope - 2.0) <= ORDER_WINDOW, slope


# --- orders of accuracy -----------------------------------------------------

THEORY = {
    "euler": 1,
    "itoh_abe": 1,
    "gonzalez": 2,
    "avf": 2,
    "implicit_midpoint": 2,
    "verlet": 2,
    "rk4": 4,
}


def _coupled_linear_plant() -> phc.PortHamiltonian:
    """A linear plant with a non-separable Q (Itoh-Abe is then first order)."""
    Q = torch.tensor([[2.0, 0.6], [0.6, 1.0]])
    R = phc.CholeskyDissipation(2, mask=[False, True], init_scale=0.3)
    H = phc.QuadraticHamiltonian(2, Q=Q, eps=0.0)
    return phc.PortHamiltonian(H, phc.CanonicalJ(2), R).requires_grad_(False)


@pytest.mark.parametrize("method", list(THEORY))
def test_convergence_order_matches_theory(method: str) -> None:
    model = (
        plants.mass_spring_damper(1.0, 2.0, 0.3)
        if method == "verlet"
        else _coupled_linear_plant()
    )
    x0 = torch.tensor([[1.0, 0.5]])
    T = 2.0
    exact = plants.linear_solution(model, x0, torch.tensor([T]))[0, -1]
    dts = [0.1, 0.05, 0.025] if method != "rk4" else [0.2, 0.1, 0.05]
    errs = []
    for dt in dts:
        steps = round(T / dt)
        traj = simulate(model, x0, dt=dt, steps=steps, method=method)
        errs.append(float((traj.x[0, -1] - exact).norm()))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - THEORY[method]) <= ORDER_WINDOW, (slope, errs)


# --- gradients through implicit solves ---------------------------------------


class _Rollout(nn.Module):
    def __init__(self, model, method, gradient):
        super().__init__()
        self.model, self.method, self.gradient = model, method, gradient

    def forward(self, x0, u):
        return simulate(
            self.model, x0, u, dt=0.1, method=self.method, gradient=self.gradient
        ).x


@pytest.mark.parametrize("method", IMPLICIT)
@pytest.mark.parametrize("gradient", ["ift", "unroll"])
def test_gradcheck_through_the_implicit_solve(method: str, gradient: str) -> None:
    model = random_model(7, n=2, m=1, hidden=(4,)).requires_grad_(True)
    roll = _Rollout(model, method, gradient)
    x0 = torch.randn(2, 2, requires_grad=True)
    u = torch.randn(2, 3, 1)
    assert torch.autograd.gradcheck(lambda x: roll(x, u), (x0,))
    weight = model.G.weight.detach().clone().requires_grad_(True)

    def of_weight(w):
        return torch.func.functional_call(roll, {"model.G.weight": w}, (x0.detach(), u))

    assert torch.autograd.gradcheck(of_weight, (weight,))


# --- contract: dtypes, devices, convergence policy, refusals ----------------


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_in_float32_and_float64(method: str) -> None:
    model = plants.mass_spring_damper()
    for dtype in (torch.float32, torch.float64):
        x0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
        u = torch.ones(2, 20, 1, dtype=dtype)
        traj = simulate(model, x0, u, dt=0.05, method=method)
        assert traj.x.dtype == dtype and traj.x.shape == (2, 21, 2)
        assert traj.y.shape == (2, 20, 1) and traj.residual.shape == (2, 20)
        assert bool(traj.converged.all())


def test_float32_gonzalez_keeps_energy_to_its_tolerance() -> None:
    model = plants.pendulum()
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float32)
    traj = simulate(model, x0, dt=0.1, steps=200)
    rel = (traj.energy - traj.energy[:, :1]).abs().max() / traj.energy[0, 0]
    assert float(rel) <= 100 * torch.finfo(torch.float32).eps * 200


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_cuda(method: str) -> None:
    model = plants.mass_spring_damper().cuda()
    x0 = torch.tensor([[1.0, 0.0]], device="cuda")
    traj = simulate(
        model, x0, torch.ones(1, 5, 1, device="cuda"), dt=0.1, method=method
    )
    assert traj.x.device.type == "cuda"


def test_non_convergence_warns_masks_or_raises() -> None:
    model = random_model(8, hidden=(8,))
    x0 = torch.randn(4, 4)
    with pytest.warns(NumericsWarning, match="missed tol"):
        traj = simulate(model, x0, dt=0.5, steps=3, max_iter=1, tol=1e-15)
    assert not bool(traj.converged.all())
    with pytest.raises(ConvergenceError, match="max_iter=1"):
        simulate(model, x0, dt=0.5, steps=3, max_iter=1, tol=1e-15, strict=True)


def test_converged_rows_do_not_warn() -> None:
    model = random_model(8, hidden=(8,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj = simulate(model, torch.randn(4, 4), dt=0.05, steps=5)
    assert bool(traj.converged.all())


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (phc.HNN(2, hidden=(4,)), "separable"),
        (phc.PortHamiltonian(plants.pendulum().H, phc.SkewSymmetric(2)), "canonical J"),
        (
            phc.PortHamiltonian(
                plants.pendulum().H, phc.CanonicalJ(2), phc.CholeskyDissipation(2)
            ),
            "momenta only",
        ),
        (phc.NeuralODE(2, hidden=(4,)), "rk4"),
    ],
)
def test_verlet_refuses_what_it_cannot_step(model, match: str) -> None:
    with pytest.raises(NotSupportedError, match=match):
        simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, method="verlet")


@pytest.mark.parametrize("method", IMPLICIT)
def test_implicit_methods_refuse_a_neural_ode(method: str) -> None:
    with pytest.raises(NotSupportedError, match="Use method='rk4'"):
        simulate(
            phc.NeuralODE(2, hidden=(4,)),
            torch.zeros(1, 2),
            dt=0.1,
            steps=2,
            method=method,
        )


def test_explicit_methods_run_a_neural_ode() -> None:
    traj = simulate(
        phc.NeuralODE(2, hidden=(4,)), torch.zeros(3, 2), dt=0.1, steps=4, method="rk4"
    )
    assert traj.x.shape == (3, 5, 2) and traj.energy is None


def test_unknown_method_and_bad_options_are_rejected() -> None:
    model = plants.pendulum()
    with pytest.raises(ValueError, match="`method` must be one of"):
        simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, method="leapfrog")
    with pytest.raises(ValueError, match="avf_nodes"):
        simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, method="avf", avf_nodes=0)
    with pytest.raises(TypeError):
        simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, nodes=3)


def test_linear_hold_and_substeps_agree_across_methods() -> None:
    model = plants.mass_spring_damper()
    u = torch.linspace(0.0, 1.0, 11).reshape(1, 11, 1)
    ref = simulate(
        model,
        torch.zeros(1, 2),
        u,
        dt=0.1,
        input_hold="linear",
        substeps=8,
        method="rk4",
    )
    for method in ("gonzalez", "verlet", "avf"):
        traj = simulate(
            model,
            torch.zeros(1, 2),
            u,
            dt=0.1,
            input_hold="linear",
            substeps=4,
            method=method,
        )
        assert float((traj.x - ref.x).abs().max()) < 1e-4, method


def test_compare_integrators_table_and_figure() -> None:
    pytest.importorskip("matplotlib")
    model = plants.pendulum()
    table = phc.compare_integrators(
        model, torch.tensor([[0.5, 0.0]]), dt=0.1, steps=20,
        methods=["gonzalez", "verlet", "euler"], plot=True,
    )  # fmt: skip
    assert [r.method for r in table.rows] == ["gonzalez", "verlet", "euler"]
    assert table.row("euler").max_energy_error > table.row("verlet").max_energy_error
    assert "| gonzalez |" in table.to_markdown()
    assert len(table.figure.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(table.figure)
    with pytest.raises(ValueError, match="methods"):
        phc.compare_integrators(
            model, torch.zeros(1, 2), dt=0.1, steps=2, methods=["x"]
        )
    with pytest.raises(NotSupportedError, match="energy"):
        phc.compare_integrators(phc.NeuralODE(2), torch.zeros(1, 2), dt=0.1, steps=2)
