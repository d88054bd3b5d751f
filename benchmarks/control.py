"""Control benchmarks: energy balance, designs on identified models, certificates.

1. Closed-loop energy balance of a pH closed loop (pendulum held upright by
   energy shaping) over many Gonzalez steps: the largest per-step residual.
2. Controllers designed on models identified from noisy logs, run on the
   true plant, against the same controllers designed on the true model,
   over 20 seeded initial conditions: pendulum swing-up and stabilisation,
   two-link arm regulation.
3. Time to certify damping-injection loops of random linear pH plants of
   growing size.
4. Damping gains synthesised for a decay rate: the gain, the rounds of the
   alternation, the re-checked slowest mode and the time.

    python -m benchmarks.control [--quick]

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import phcontrol as phc
from phcontrol import plants
from phcontrol.control import (
    DampingInjection,
    EnergyPumping,
    EnergyShaping,
    SwingUp,
    certify_closed_loop,
    closed_loop,
    fit_pendulum,
    fit_two_link_arm,
    record_motion,
    regulation_metrics,
    synthesize_damping_gain,
    wheel_pendulum_ida_pbc,
)

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def energy_balance(steps: int) -> None:
    plant = plants.pendulum(damping=0.05)
    ctrl = EnergyShaping(plant, [math.pi], 30.0, 8.0, periodic=True)
    loop = closed_loop(plant, ctrl)
    x0 = torch.tensor([[math.pi - 1.0, 2.0]])
    started = time.perf_counter()
    traj = phc.simulate(loop, x0, dt=0.01, steps=steps)
    seconds = time.perf_counter() - started
    rel = traj.residual.abs() / (1.0 + traj.energy[:, :-1].abs())
    print("\n### Closed-loop energy balance\n")
    print("| loop | steps | max abs residual | max residual / (1 + abs H_d) | time |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| pendulum, energy shaping to upright, Gonzalez dt = 0.01 | {steps} | "
        f"{traj.residual.abs().max().item():.2e} | {rel.max().item():.2e} | "
        f"{seconds:.0f} s |"
    )


def _pendulum_design(model: phc.PortHamiltonian) -> SwingUp:
    pump = EnergyPumping(model, [math.pi, 0.0], gain=2.0, max_input=3.0)
    local = EnergyShaping(model, [math.pi], 30.0, 8.0, periodic=True)
    return SwingUp(pump, local, angle=0)


def _arm_design(model: phc.PortHamiltonian) -> EnergyShaping:
    return EnergyShaping(model, [0.5, -0.3], [40.0, 15.0], [12.0, 4.0])


def _row(name: str, m: phc.control.RegulationMetrics) -> str:
    s = m.summary()
    return (
        f"| {name} | {s['success_rate'] * 100:.0f} % | "
        f"{s['median_settling_time']:.2f} s | {s['median_final_error']:.1e} | "
        f"{s['max_final_error']:.1e} | {s['median_effort']:.1f} |"
    )


def identified_designs(n_runs: int, noise: float) -> None:
    gen = torch.Generator().manual_seed(0)
    print(f"\n### Designed on identified models ({n_runs} initial conditions)\n")
    # Pendulum: log, fit, design, run on the true plant.
    truth = plants.pendulum(mass=1.0, length=1.0, damping=0.05)
    u = 2.0 * np.sin(0.7 * np.arange(1501) * 0.01)[:, None]
    u += 1.0 * np.sin(2.3 * np.arange(1501) * 0.01 + 1.0)[:, None]
    log = record_motion(truth, [0.2, 0.0], u, 0.01, noise_std=noise, seed=1)
    fit = fit_pendulum(log)
    params = ", ".join(f"{k} {v:.4g}" for k, v in fit.parameters.items())
    print(f"pendulum fit: {params}")
    print("pendulum truth: inertia 1, gravity_torque 9.81, damping 0.05")
    x0 = torch.cat(
        [
            torch.zeros(1, 2),  # at rest at the bottom
            torch.stack(
                [
                    (2 * torch.rand(n_runs - 1, generator=gen) - 1) * math.pi,
                    (2 * torch.rand(n_runs - 1, generator=gen) - 1) * 2.0,
                ],
                -1,
            ),
        ]
    )
    print(
        "\n| pendulum swing-up and stabilisation | success | median settling "
        "| median final error | max final error | median effort |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, model in (
        ("designed on the true model", truth),
        ("designed on the identified model", fit.model),
    ):
        ctrl = _pendulum_design(model)
        traj = phc.simulate(closed_loop(truth, ctrl), x0, dt=0.02, steps=600)
        m = regulation_metrics(
            traj.t, traj.x, ctrl.x_star, ctrl, tolerance=1e-2, angles=[0]
        )
        print(_row(name, m))
    # Two-link arm.
    arm = plants.two_link_arm()
    t = np.arange(2001)[:, None] * 0.01
    # Slow excitation: the Savitzky-Golay window (0.21 s) must resolve the
    # motion, or the acceleration estimates and the fit are biased.
    u = np.hstack([8 * np.sin(1.3 * t), 3 * np.sin(2.1 * t + 1)])
    log = record_motion(arm, [0.0] * 4, u, 0.01, noise_std=noise, seed=2)
    fit = fit_two_link_arm(log)
    params = ", ".join(f"{k} {v:.4g}" for k, v in fit.parameters.items())
    true = dict(zip("a b c g1 g2".split(), arm.H.params.tolist(), strict=True))
    print(f"\narm fit: {params}")
    print(
        "arm truth: "
        + ", ".join(f"{k} {v:.4g}" for k, v in true.items())
        + ", d1 0.1, d2 0.1"
    )
    x0 = torch.zeros(n_runs, 4)
    x0[:, :2] = (2 * torch.rand(n_runs, 2, generator=gen) - 1) * 1.5
    print(
        "\n| two-link arm regulation to q* = (0.5, -0.3) | success | median "
        "settling | median final error | max final error | median effort |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, model in (
        ("designed on the true model", arm),
        ("designed on the identified model", fit.model),
    ):
        ctrl = _arm_design(model)
        traj = phc.simulate(closed_loop(arm, ctrl), x0, dt=0.02, steps=300)
        m = regulation_metrics(traj.t, traj.x, ctrl.x_star, ctrl, tolerance=1e-2)
        print(_row(name, m))


def certificate_times(sizes: list[int]) -> None:
    print("\n### Certificate time against closed-loop size\n")
    print("| states | verdict | seconds (wall) | seconds (CPU) |")
    print("| --- | --- | --- | --- |")
    for n in sizes:
        torch.manual_seed(n)
        plant = phc.PortHamiltonian(
            phc.QuadraticHamiltonian(n, Q=torch.eye(n) + 0.1 * torch.ones(n, n)),
            phc.SkewSymmetric(n),
            phc.CholeskyDissipation(n, init_scale=0.1),
            phc.InputMatrix(n, 2),
        ).requires_grad_(False)
        loop = closed_loop(plant, DampingInjection(plant, 1.0))
        started, cpu = time.perf_counter(), time.process_time()
        cert = certify_closed_loop(loop, decay_rate=1e-3)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"| {n} | {cert.verdict} | {wall:.2f} | {cpu:.2f} |")


def damping_synthesis() -> None:
    print("\n### Damping gains for a decay rate\n")
    print(
        "| design | rate | options | K | objective value | rounds | max Re eig | "
        "verified | seconds (wall) | seconds (CPU) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    msd = plants.mass_spring_damper(damping=0.0)
    arm = plants.two_link_arm()
    iwp = wheel_pendulum_ida_pbc(plants.inertia_wheel_pendulum(), damping=0.0)
    cases = [
        ("mass-spring, damping injection", msd, 0.5, {}),
        ("two-link arm, damping injection", arm, 0.5, {}),
        ("two-link arm, damping injection", arm, 0.5, {"objective": "norm"}),
        ("two-link arm, damping injection", arm, 0.5, {"diagonal": True}),
        ("inertia-wheel pendulum, IDA-PBC", iwp, 0.1, {}),
    ]
    synthesize_damping_gain(msd, 0.5)  # CVXPY's first-call overhead
    for name, design, rate, opts in cases:
        started, cpu = time.perf_counter(), time.process_time()
        out = synthesize_damping_gain(design, rate, **opts)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        K = np.array2string(out.gain, precision=3, separator=", ")
        value = (
            np.trace(out.gain)
            if opts.get("objective", "trace") == "trace"
            else np.linalg.eigvalsh(out.gain)[-1]
        )
        options = ", ".join(f"{k}={v}" for k, v in opts.items()) or "default"
        print(
            f"| {name} | {rate:g} | {options} | {' '.join(K.split())} | "
            f"{value:.4g} | {out.rounds} | {out.max_real_eigenvalue:.4f} | "
            f"{out.verified} | {seconds:.2f} | {cpu:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--part",
        choices=("all", "balance", "identified", "certificates", "damping"),
        default="all",
    )
    args = parser.parse_args()
    if args.part in ("all", "balance"):
        energy_balance(2_000 if args.quick else 100_000)
    if args.part in ("all", "identified"):
        identified_designs(5 if args.quick else 20, noise=0.01)
    if args.part in ("all", "certificates"):
        certificate_times([4, 8] if args.quick else [4, 8, 16, 32, 64])
    if args.part in ("all", "damping"):
        damping_synthesis()


if __name__ == "__main__":
    main()
