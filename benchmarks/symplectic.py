"""Long-horizon energy error of learned flows: SympNet, HNN + RK4, HNN + DG.

For the pendulum (``g = 9.81``) and the planar two-body problem (unit
masses and ``G``), training data are 16 trajectories of 50 samples at
``dt = 0.1`` from random initial states (pendulum: angle in [-1.5, 1.5],
momentum in [-2, 2]; two-body: near-circular orbits of radius 0.8-1.2
about a fixed centre of mass), generated with RK4 at ``dt/10``. Each model
is fitted with :func:`phcontrol.fit_states`, one-step loss, Adam:

* ``SympNet``: the exactly symplectic map, stepped by itself;
* ``HNN + RK4``: an MLP energy (``phc.HNN``) trained through one RK4 step
  and rolled out with RK4;
* ``HNN + DG``: the same trained HNN rolled out with the Gonzalez discrete
  gradient, which keeps its learned energy exactly.

Reported: the one-step error on 8 held-out initial states (RMS over the
first 100 steps against the reference), and the true energy error
``max |H(x_k) - H(x_0)|`` over the first 1% and over the whole rollout.

Run ``python -m benchmarks.symplectic [--quick]``; it prints a markdown
table headed by the command line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

import phcontrol as phc
from phcontrol import plants

DT = 0.1


def pendulum_states(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = 3.0 * torch.rand(n, generator=g, dtype=torch.float64) - 1.5
    p = 4.0 * torch.rand(n, generator=g, dtype=torch.float64) - 2.0
    return torch.stack([q, p], dim=-1)


def two_body_states(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    r = 0.8 + 0.4 * torch.rand(n, generator=g, dtype=torch.float64)
    angle = 2.0 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    speed = (2.0 / r).sqrt() * (0.9 + 0.2 * torch.rand(n, generator=g))
    e = torch.stack([angle.cos(), angle.sin()], -1)
    t = torch.stack([-angle.sin(), angle.cos()], -1)
    q1, p1 = 0.5 * r[:, None] * e, 0.5 * speed[:, None] * t
    return torch.cat([q1, -q1, p1, -p1], dim=-1)


def reference(truth: phc.PortHamiltonian, x0: torch.Tensor, steps: int):
    return phc.simulate(truth, x0, dt=DT, steps=steps, method="rk4", substeps=10).x


def energy_error(truth, x: torch.Tensor, steps: int) -> tuple[float, float]:
    with torch.no_grad():
        E = truth.energy(x.reshape(-1, x.shape[-1])).reshape(x.shape[0], -1)
    err = (E - E[:, :1]).abs()
    return float(err[:, : steps // 100 + 1].max()), float(err.max())


def benchmark(name: str, truth, states, n: int, iterations: int, steps: int):
    x_train = reference(truth, states(16, 0), 49)
    x0 = states(8, 1)
    x_test = reference(truth, x0, 100)
    rows = []

    torch.manual_seed(0)
    net = phc.SympNet(n, DT, layers=4, hidden=(64,)).double()
    start = time.perf_counter()
    phc.fit_states(net, x_train, DT, iterations=iterations, lr=3e-3)
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        roll = net.rollout(x0, steps)
    one = float(((roll[:, :101] - x_test) ** 2).mean().sqrt())
    rows.append((name, "SympNet", fit_s, one, *energy_error(truth, roll, steps)))

    torch.manual_seed(0)
    hnn = phc.HNN(n, hidden=(64, 64)).double()
    start = time.perf_counter()
    phc.fit_states(hnn, x_train, DT, method="rk4", iterations=iterations, lr=3e-3)
    fit_s = time.perf_counter() - start
    hnn.requires_grad_(False)
    for method, label in (("rk4", "HNN + RK4"), ("gonzalez", "HNN + DG")):
        with torch.no_grad():
            roll = phc.simulate(hnn, x0, dt=DT, steps=steps, method=method).x
        one = float(((roll[:, :101] - x_test) ** 2).mean().sqrt())
        rows.append((name, label, fit_s, one, *energy_error(truth, roll, steps)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    iterations = 500 if args.quick else 3000
    steps = 2000 if args.quick else 10_000
    rows = benchmark(
        "pendulum", plants.pendulum().double(), pendulum_states, 2, iterations, steps
    )
    rows += benchmark(
        "two-body", plants.two_body().double(), two_body_states, 8, iterations, steps
    )
    print("`python -m benchmarks.symplectic " + " ".join(sys.argv[1:]) + "`\n")
    print(
        f"| plant | model | fit time (s) | RMS error, first 100 steps | max energy "
        f"error, first 1% | max energy error, all {steps} steps |"
    )
    print("|---|---|---|---|---|---|")
    for plant, model, fit_s, one, early, late in rows:
        cells = f"{fit_s:.0f} | {one:.3e} | {early:.3e} | {late:.3e}"
        print(f"| {plant} | {model} | {cells} |")


if __name__ == "__main__":
    main()
