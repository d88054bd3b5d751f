"""Symmetric pair energies: invariance, the invariant discrete gradient, Noether."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _tol import EPS

import phcontrol as phc
from phcontrol import plants
from phcontrol.errors import NotSupportedError, ShapeError
from phcontrol.particles import (
    MLPPairPotential,
    PairwiseHamiltonian,
    angular_momentum,
    total_momentum,
)

# H of order 10 summed over a few pairs and MLP widths <= 16: a few hundred
# roundings of terms of the size of H.
INVARIANCE_RTOL = 256 * EPS
# Conserved quantities over 80 steps: each step changes them by the
# solve's polished residual (near round-off), summed over the steps.
NOETHER_ATOL = 1e-12
# What a method that does not keep a quantity changes it by, at least.
BROKEN = 1e-8


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.5):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def pair_energy(seed: int = 0, n: int = 3, dim: int = 2, **kw) -> PairwiseHamiltonian:
    torch.manual_seed(seed)
    H = PairwiseHamiltonian(n, dim, hidden=(16,), **kw)
    for phi in H.pair_potentials:
        assert isinstance(phi, MLPPairPotential)
        with torch.no_grad():
            phi.root_stiffness.fill_(1.0)
    return randomise(H, seed).requires_grad_(False)


def rotation(dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
    return Q


def transform(x: torch.Tensor, n: int, dim: int, rot, shift, perm) -> torch.Tensor:
    b = x.shape[0]
    q = x[:, : n * dim].reshape(b, n, dim)
    p = x[:, n * dim :].reshape(b, n, dim)
    q = q[:, perm] @ rot.T + shift
    p = p[:, perm] @ rot.T
    return torch.cat([q.reshape(b, -1), p.reshape(b, -1)], dim=1)


# --- invariance of the energy ---------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_energy_is_invariant_to_rotation_translation_permutation(dim, seed) -> None:
    n = 4
    H = pair_energy(seed, n, dim)
    x = torch.randn(16, 2 * n * dim)
    rot = rotation(dim, seed)
    shift = torch.randn(dim)
    perm = torch.randperm(n)
    E, E2 = H(x), H(transform(x, n, dim, rot, shift, perm))
    assert torch.allclose(E2, E, rtol=INVARIANCE_RTOL, atol=INVARIANCE_RTOL)


def test_permuting_particles_of_different_species_changes_the_energy() -> None:
    H = pair_energy(0, 3, 2, species=[0, 0, 1], masses=[1.0, 3.0])
    x = torch.randn(8, 12)
    eye = torch.eye(2)
    same = transform(x, 3, 2, eye, torch.zeros(2), torch.tensor([1, 0, 2]))
    other = transform(x, 3, 2, eye, torch.zeros(2), torch.tensor([2, 1, 0]))
    assert torch.allclose(H(same), H(x), rtol=INVARIANCE_RTOL, atol=INVARIANCE_RTOL)
    assert float((H(other) - H(x)).abs().min()) > 1e-6


def test_hand_gradient_matches_autograd_and_energy_is_bounded() -> None:
    H = pair_energy(2, 3, 2, species=[0, 1, 1], learn_masses=True)
    x = torch.randn(10, 12)
    auto = torch.autograd.functional.jacobian(lambda z: H(z).sum(), x)
    assert torch.allclose(H.grad(x), auto, rtol=INVARIANCE_RTOL, atol=INVARIANCE_RTOL)
    assert bool((H(10.0 * x) >= H.lower_bound()).all())


# --- the invariant discrete gradient ----------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariant_gradient_satisfies_the_discrete_gradient_axioms(seed) -> None:
    H = pair_energy(seed, 3, 2, species=[0, 1, 0])
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 12, generator=gen)
    step = torch.logspace(-9, 0, 32).unsqueeze(-1)
    xn = x + step * torch.randn(32, 12, generator=gen)
    g = H.invariant_gradient(x, xn)
    dE = H(xn) - H(x)
    scale = 1.0 + torch.maximum(H(x).abs(), H(xn).abs())
    assert bool(((dE - (g * (xn - x)).sum(-1)).abs() <= INVARIANCE_RTOL * scale).all())
    near = H.invariant_gradient(x, x)
    assert torch.allclose(near, H.grad(x), rtol=INVARIANCE_RTOL, atol=INVARIANCE_RTOL)


def test_mechanical_invariant_gradient_is_exact_for_plant_potentials() -> None:
    for model in (plants.pendulum(), plants.duffing(), plants.two_body()):
        H = model.H
        n = model.n_states
        x = 0.5 * torch.randn(16, n)
        if n == 8:
            x[:, 2] += 2.0  # keep the bodies apart
        xn = x + torch.logspace(-8, -1, 16).unsqueeze(-1) * torch.randn(16, n)
        g = H.invariant_gradient(x, xn)
        dE = H(xn) - H(x)
        scale = 1.0 + H(x).abs()
        assert bool(((dE - (g * (xn - x)).sum(-1)).abs() <= 64 * EPS * scale).all())


def test_invariant_method_is_second_order() -> None:
    model = plants.pendulum()
    x0 = torch.tensor([[1.0, 0.0]])
    T = 2.0
    exact = plants.pendulum_solution(1.0, torch.tensor([T]))[-1]
    dts = [0.1, 0.05, 0.025]
    errs = []
    for dt in dts:
        traj = phc.simulate(model, x0, dt=dt, steps=round(T / dt), method="invariant")
        errs.append(float((traj.x[0, -1] - exact).norm()))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - 2.0) <= 0.25, (slope, errs)


def test_invariant_method_refuses_an_energy_without_invariants() -> None:
    model = phc.HNN(2, hidden=(8,))
    with pytest.raises(NotSupportedError, match="invariant.*MLPHamiltonian.*gonzalez"):
        phc.simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, method="invariant")
    H = phc.MechanicalHamiltonian(1, potential=phc.MLPPotential(1))
    model = phc.PortHamiltonian(H, phc.CanonicalJ(2))
    with pytest.raises(NotSupportedError, match="MLPPotential"):
        phc.simulate(model, torch.zeros(1, 2), dt=0.1, steps=2, method="invariant")


# --- Noether: conservation along trajectories --------------------------------


@pytest.fixture(scope="module")
def three_body_runs() -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    torch.set_default_dtype(torch.float64)
    H = pair_energy(3, 3, 2, species=[0, 0, 1], masses=[1.0, 2.5])
    model = phc.PortHamiltonian(H, phc.CanonicalJ(12)).requires_grad_(False)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 12, generator=gen)
    out = {}
    for method in ("invariant", "avf", "gonzalez"):
        traj = phc.simulate(model, x0, dt=0.05, steps=80, method=method)
        P, L = total_momentum(traj.x, 3), angular_momentum(traj.x, 3)
        out[method] = (
            (P - P[:, :1]).abs().max(),
            (L - L[:, :1]).abs().max(),
            (traj.energy - traj.energy[:, :1]).abs().max(),
        )
    return out


def test_invariant_method_keeps_energy_momentum_and_angular_momentum(
    three_body_runs,
) -> None:
    dP, dL, dE = three_body_runs["invariant"]
    assert float(dP) <= NOETHER_ATOL and float(dL) <= NOETHER_ATOL
    assert float(dE) <= NOETHER_ATOL


def test_avf_keeps_momentum_but_not_angular_momentum(three_body_runs) -> None:
    dP, dL, _ = three_body_runs["avf"]
    assert float(dP) <= NOETHER_ATOL
    assert float(dL) > BROKEN


def test_gonzalez_keeps_energy_but_neither_momentum(three_body_runs) -> None:
    dP, dL, dE = three_body_runs["gonzalez"]
    assert float(dE) <= NOETHER_ATOL
    assert float(dP) > BROKEN and float(dL) > BROKEN


def test_invariant_method_keeps_the_two_body_angular_momentum() -> None:
    model = plants.two_body(mass_1=1.0, mass_2=0.3)
    x0 = torch.tensor([[1.0, 0.0, -1.0, 0.2, 0.1, 0.5, 0.0, -0.2]])
    out = {}
    for method in ("invariant", "gonzalez"):
        traj = phc.simulate(model, x0, dt=0.1, steps=60, method=method)
        L = angular_momentum(traj.x, 2)
        out[method] = float((L - L[:, :1]).abs().max())
    assert out["invariant"] <= NOETHER_ATOL
    assert out["gonzalez"] > BROKEN


# --- helpers, errors and files ---------------------------------------------


def test_momenta_use_the_two_body_layout() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]])
    assert total_momentum(x, 2).tolist() == [[12.0, 14.0]]
    assert angular_momentum(x, 2).tolist() == [1 * 6 - 2 * 5 + 3 * 8 - 4 * 7]
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    assert angular_momentum(q, 1, dim=3).tolist() == [[0.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    ("kwargs", "kind", "match"),
    [
        ({"n_particles": 1}, ValueError, "n_particles"),
        ({"n_particles": 3, "species": [0, 1]}, ShapeError, "one label per particle"),
        ({"n_particles": 3, "species": [0, 2, 2]}, ValueError, "every label"),
        ({"n_particles": 2, "masses": [1.0, 2.0]}, ValueError, "one per species"),
        ({"n_particles": 2, "masses": [-1.0]}, ValueError, "positive"),
        (
            {"n_particles": 3, "species": [0, 1, 1], "pair_potentials": []},
            ShapeError,
            "one potential per species pair",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, kind, match) -> None:
    with pytest.raises(kind, match=match):
        PairwiseHamiltonian(**kwargs)


def test_momentum_helpers_reject_wrong_sizes() -> None:
    with pytest.raises(ShapeError, match="2 \\* n_particles \\* dim"):
        total_momentum(torch.zeros(1, 7), 2)
    with pytest.raises(ShapeError, match="`dim` must be 2 or 3"):
        angular_momentum(torch.zeros(1, 8), 1, dim=4)


def test_pairwise_model_survives_a_model_file(tmp_path) -> None:
    H = pair_energy(4, 3, 2, species=[0, 1, 1], learn_masses=True)
    model = phc.PortHamiltonian(H, phc.CanonicalJ(12))
    path = tmp_path / "pairs.safetensors"
    phc.save(model, path)
    back = phc.load(path)
    x = torch.randn(5, 12)
    assert torch.equal(back.energy(x), model.energy(x))


def test_energy_sees_distances_not_positions() -> None:
    # A rotation by a multiple of 90 degrees swaps coordinates exactly.
    H = pair_energy(5, 2, 2)
    x = torch.tensor([[0.3, -0.1, 1.2, 0.4, 0.0, 0.0, 0.0, 0.0]])
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    turned = transform(x, 2, 2, rot, torch.zeros(2), torch.tensor([0, 1]))
    assert torch.equal(H(turned), H(x)) or math.isclose(
        float(H(turned)), float(H(x)), rel_tol=4 * EPS
    )
