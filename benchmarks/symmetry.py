"""Data efficiency of a symmetric pair energy against a plain MLP energy.

The plant: three identical unit-mass particles in the plane bound by a
Morse pair potential ``D (1 - exp(-a (r - r₀)))² - D`` with ``D = 1``,
``a = 2``, ``r₀ = 1``, canonical ``J``. Each trajectory starts from a
jittered equilateral triangle of side 1, randomly rotated and translated
(centre in [-2, 2]²), with random momenta (standard deviation 0.3, so
the cluster drifts), and holds 20 states at ``dt = 0.1``.

Two energies, both with canonical ``J`` and fitted to the exact
derivatives of those states (``loss="derivative"``) by Adam:

* ``PairwiseHamiltonian``: ``Σ|p_i|²/2m + Σ φ(|q_i - q_j|²)``, ``φ`` an MLP
  (32, 32) plus a spring (invariant by construction);
* ``HNN``: an MLP (64, 64) of the whole 12-dimensional state.

The test error is the relative mean squared error of the vector field on
32 held-out trajectories. Run ``python -m benchmarks.symmetry [--quick]``;
it prints a markdown table headed by the command line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from torch import Tensor

import phcontrol as phc
from phcontrol.particles import AbstractPairPotential

DT = 0.1
SAMPLES = 20


class _Morse(AbstractPairPotential):
    """The Morse potential as a function of the squared distance."""

    def __init__(self, depth: float = 1.0, width: float = 2.0, rest: float = 1.0):
        super().__init__()
        self.depth, self.width, self.rest = depth, width, rest

    def forward(self, rho: Tensor) -> Tensor:
        e = torch.exp(-self.width * (rho.sqrt() - self.rest))
        return self.depth * (1.0 - e) ** 2 - self.depth

    def derivative(self, rho: Tensor) -> Tensor:
        r = rho.sqrt()
        e = torch.exp(-self.width * (r - self.rest))
        return self.depth * self.width * e * (1.0 - e) / r


def truth() -> phc.PortHamiltonian:
    H = phc.PairwiseHamiltonian(3, pair_potentials=[_Morse()])
    return phc.PortHamiltonian(H, phc.CanonicalJ(12)).double()


def initial_states(n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    angles = torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64) * math.pi / 3.0
    base = torch.stack([angles.cos(), angles.sin()], -1) / math.sqrt(3.0)
    q = base + 0.1 * torch.randn(n, 3, 2, generator=g, dtype=torch.float64)
    turn = 2.0 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    c, s = turn.cos(), turn.sin()
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    q = q @ rot.transpose(1, 2)
    q = q + (4.0 * torch.rand(n, 1, 2, generator=g, dtype=torch.float64) - 2.0)
    p = 0.3 * torch.randn(n, 3, 2, generator=g, dtype=torch.float64)
    return torch.cat([q.reshape(n, 6), p.reshape(n, 6)], dim=1)


def trajectories(plant, n: int, seed: int) -> tuple[Tensor, Tensor]:
    x = phc.simulate(
        plant, initial_states(n, seed), dt=DT, steps=SAMPLES - 1, method="invariant"
    ).x
    with torch.no_grad():
        x_dot = plant.vector_field(x.reshape(-1, 12)).reshape(x.shape)
    return x, x_dot


def test_error(model, x: Tensor, x_dot: Tensor) -> float:
    with torch.no_grad():
        f = model.vector_field(x.reshape(-1, 12))
    target = x_dot.reshape(-1, 12)
    return float(((f - target) ** 2).sum() / (target**2).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    counts = (1, 4, 16) if args.quick else (1, 2, 4, 8, 16, 32)
    iterations = 1000 if args.quick else 3000
    plant = truth()
    x_test, xd_test = trajectories(plant, 32, seed=1000)
    x_all, xd_all = trajectories(plant, max(counts), seed=0)
    rows = []
    for k in counts:
        x, xd = x_all[:k], xd_all[:k]
        cells = []
        for name in ("pairwise", "hnn"):
            torch.manual_seed(0)
            if name == "pairwise":
                H = phc.PairwiseHamiltonian(3, hidden=(32, 32))
                model = phc.PortHamiltonian(H, phc.CanonicalJ(12)).double()
            else:
                model = phc.HNN(12, hidden=(64, 64)).double()
            start = time.perf_counter()
            phc.fit_states(
                model, x, DT, loss="derivative", x_dot=xd, iterations=iterations,
                lr=3e-3,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            cells.append(f"{test_error(model, x_test, xd_test):.3e} | {seconds:.0f}")
        rows.append(f"| {k} | {k * SAMPLES} | " + " | ".join(cells) + " |")
    print("`python -m benchmarks.symmetry " + " ".join(sys.argv[1:]) + "`\n")
    print(
        "| training trajectories | states | PairwiseHamiltonian rel. MSE | fit (s) "
        "| HNN rel. MSE | fit (s) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
