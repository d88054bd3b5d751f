"""Benchmark the integrator family: exactness, cost, speed against scipy.

Run ``python -m benchmarks.integrators [--device cuda] [--quick]``; it prints
a markdown table headed by the command line.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import phcontrol as phc
from phcontrol import plants


def _random_model(n: int, m: int, hidden: tuple[int, ...], seed: int = 0):
    torch.manual_seed(seed)
    model = phc.PortHamiltonian(
        phc.MLPHamiltonian(n, hidden=hidden),
        phc.SkewSymmetric(n),
        phc.CholeskyDissipation(n, init_scale=0.3),
        phc.InputMatrix(n, m),
    )
    return model.double().requires_grad_(False)


def power_balance(batch: int, steps: int, device: str) -> str:
    model = _random_model(4, 2, (64, 64)).to(device)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(batch, 4, generator=gen).double().to(device)
    u = torch.randn(batch, steps, 2, generator=gen).double().to(device)
    traj = phc.simulate(model, x0, u, dt=0.05)
    scale = 1.0 + traj.energy[:, 1:].abs()
    rel = float((traj.residual.abs() / scale).max())
    return (
        f"| power balance, {batch} traj x {steps} steps | max relative residual "
        f"| {rel:.2e} | <= 1e-12 |"
    )


def cost_of_exactness(batch: int, steps: int) -> str:
    model = _random_model(4, 0, (64, 64))
    x0 = torch.randn(batch, 4, dtype=torch.float64)
    times = {}
    for method in ("rk4", "gonzalez"):
        phc.simulate(model, x0, dt=0.05, steps=2, method=method)  # warm up
        start = time.perf_counter()
        phc.simulate(model, x0, dt=0.05, steps=steps, method=method)
        times[method] = (time.perf_counter() - start) / steps
    ratio = times["gonzalez"] / times["rk4"]
    return (
        f"| cost of exactness, {batch} states, n=4, MLP 2x64, CPU | gonzalez/rk4 time "
        f"per step | {ratio:.2f}x ({times['gonzalez'] * 1e3:.1f} ms vs "
        f"{times['rk4'] * 1e3:.1f} ms) | <= 2x |"
    )


def against_scipy(batch: int, steps: int, subset: int) -> str:
    from scipy.integrate import solve_ivp

    model = plants.pendulum()
    model = model.double()
    gen = torch.Generator().manual_seed(2)
    x0 = torch.rand(batch, 2, generator=gen, dtype=torch.float64) * 2.0 - 1.0
    dt = 0.05
    start = time.perf_counter()
    traj = phc.simulate(model, x0, dt=dt, steps=steps)
    t_ours = time.perf_counter() - start
    err_ours = float((traj.energy - traj.energy[:, :1]).abs().max())

    def f(t, x):
        xt = torch.as_tensor(x).reshape(1, 2)
        return model.vector_field(xt)[0].numpy()

    start = time.perf_counter()
    err_scipy = 0.0
    for i in range(subset):
        sol = solve_ivp(
            f, (0.0, dt * steps), x0[i].numpy(), method="DOP853", rtol=1e-12,
            atol=1e-12, t_eval=dt * np.arange(steps + 1),
        )  # fmt: skip
        H = model.energy(torch.as_tensor(sol.y.T))
        err_scipy = max(err_scipy, float((H - H[0]).abs().max()))
    t_scipy = (time.perf_counter() - start) * batch / subset
    return (
        f"| batched gonzalez vs solve_ivp (DOP853, rtol=atol=1e-12) loop, pendulum, "
        f"{batch} traj x {steps} steps (scipy timed on {subset}, extrapolated) | "
        f"speed-up; energy error ours / scipy | {t_scipy / t_ours:.0f}x; "
        f"{err_ours:.1e} / {err_scipy:.1e} | >= 100x at <= error |"
    )


def verlet_bounded(steps: int) -> str:
    model = plants.pendulum().double()
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    traj = phc.simulate(model, x0, dt=0.1, steps=steps, method="verlet")
    err = (traj.energy[0] - traj.energy[0, 0]).abs()
    early, late = float(err[: steps // 100].max()), float(err.max())
    return (
        f"| verlet, pendulum, dt=0.1, {steps} steps | max energy error first 1% / "
        f"all | {early:.3e} / {late:.3e} | bounded |"
    )


def cuda_speed(batch: int, steps: int) -> str:
    model = _random_model(4, 0, (64, 64)).to("cuda")
    x0 = torch.randn(batch, 4, dtype=torch.float64, device="cuda")
    phc.simulate(model, x0, dt=0.05, steps=2)
    torch.cuda.synchronize()
    start = time.perf_counter()
    phc.simulate(model, x0, dt=0.05, steps=steps)
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    return f"| gonzalez on CUDA, batch {batch} | trajectory-steps/s | {rate:.3g} | - |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1 if args.quick else torch.get_num_threads())
    q = args.quick
    rows = [
        power_balance(32 if q else 256, 1000 if q else 10_000, "cpu"),
        cost_of_exactness(4096, 5 if q else 50),
        against_scipy(256, 200 if q else 2000, 4 if q else 16),
        verlet_bounded(100_000 if q else 1_000_000),
    ]
    if args.device == "cuda":
        rows.append(cuda_speed(100_000, 20))
    print("`python -m benchmarks.integrators " + " ".join(sys.argv[1:]) + "`\n")
    print("| benchmark | measure | result | target |")
    print("|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
