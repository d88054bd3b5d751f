"""Verlet's energy error on the pendulum: bounded, with an amplitude ~ dt².

Three uncoupled pendula (``H = p²/2 + ω²(1 - cos q)``, ``ω = 1, 2, 4``,
released from rest at 1 rad) share one Störmer-Verlet run with step 0.1,
so they are stepped at ``ω dt = 0.1, 0.2, 0.4``. The relative energy error
``|H - H₀| / H₀`` of each is tracked over all steps; a conserved shadow
Hamiltonian ``H + O(dt²)`` keeps it bounded, with an amplitude that scales
as ``(ω dt)²``.

Run ``python -m benchmarks.shadow [--quick] [--figure PATH]``: 1e6 steps
(1e5 with ``--quick``); prints a markdown table headed by the command
line and, with ``--figure``, saves the error against time as a PNG.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import phcontrol as phc

OMEGA = (1.0, 2.0, 4.0)
DT = 0.1


def run(steps: int) -> tuple[np.ndarray, float]:
    omega = torch.tensor(OMEGA, dtype=torch.float64)
    H = phc.MechanicalHamiltonian(
        3, potential=phc.CosinePotential((omega**2).tolist()), learn_mass=False
    )
    model = phc.PortHamiltonian(H, phc.CanonicalJ(6)).double()
    x0 = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    start = time.perf_counter()
    traj = phc.simulate(model, x0, dt=DT, steps=steps, method="verlet")
    seconds = time.perf_counter() - start
    q, p = traj.x[0, :, :3], traj.x[0, :, 3:]
    E = 0.5 * p**2 + omega**2 * (1.0 - torch.cos(q))
    return ((E - E[:1]).abs() / E[:1]).numpy(), seconds


def figure(rel: np.ndarray, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = rel.shape[0] - 1
    stride = max(1, steps // 20_000)
    # Envelope per block, so the plot shows the amplitude over the whole run.
    blocks = rel[1 : 1 + (steps // stride) * stride].reshape(-1, stride, 3).max(1)
    t = DT * stride * (np.arange(blocks.shape[0]) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, w in enumerate(OMEGA):
        ax.loglog(t, blocks[:, i], label=f"ω dt = {w * DT:g}")
    ax.set_xlabel("t")
    ax.set_ylabel("|H - H₀| / H₀ (block maximum)")
    ax.set_title(f"Störmer-Verlet, pendulum, {steps:.0e} steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--figure", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = 100_000 if args.quick else 1_000_000
    rel, seconds = run(steps)
    early = rel[: steps // 100 + 1].max(0)
    late = rel[steps // 2 :].max(0)
    amp = rel.max(0)
    slope = np.polyfit(np.log(DT * np.array(OMEGA)), np.log(amp), 1)[0]
    print("`python -m benchmarks.shadow " + " ".join(sys.argv[1:]) + "`\n")
    print(
        "| ω dt | max rel. energy error, first 1% | max, second half | max, all "
        f"{steps:.0e} steps | ratio to previous row |"
    )
    print("|---|---|---|---|---|")
    for i, w in enumerate(OMEGA):
        ratio = "-" if i == 0 else f"{amp[i] / amp[i - 1]:.2f}"
        print(
            f"| {w * DT:g} | {early[i]:.4e} | {late[i]:.4e} | {amp[i]:.4e} | {ratio} |"
        )
    print(f"\nlog-log slope of the amplitude against dt: {slope:.3f} (theory 2); ")
    print(f"simulation time {seconds:.0f} s.")
    if args.figure:
        figure(rel, args.figure)


if __name__ == "__main__":
    main()
