"""EMPS: a mass with viscous and Coulomb friction fitted to a robot joint's log.

Protocol (``phcontrol/datasets/emps.md``): train on the first 80% of
``DATA_EMPS``, validate on the rest, test on ``DATA_EMPS_PULSES``; the
first 20 test samples set the initial state; the score is the simulation
RMSE of the motor position ``qm`` after them, in mm, simulated open loop
from the drive voltage ``vir``.

Each seed is one :func:`phcontrol.identify` call with ``model="friction"``.
Beside accuracy and wall time, every fitted model is checked unforced:
from its equilibrium ``(q*, 0)`` displaced by a typical position and speed,
it is stepped with ``u = 0`` (the scalar discrete-gradient step, so the
energy can only fall) over a long horizon, and the distance left to the
equilibrium is reported.

Run ``python -m benchmarks.identification_emps [--seeds 0 1 2] [--jobs 3]
[--save-dir runs/emps]``; each fit runs in its own process with one torch
thread and leaves its model and report in the folder, then the unforced
check runs and a markdown table is printed. ``--report-only`` tabulates
fits already in the folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

OPTIONS: dict[str, Any] = dict(
    model="friction",
    substeps=1,
    input_hold="zoh",
    window=300,
    batch_size=16,
    lbfgs_steps=8,
    iterations=150,
    lr=1e-3,
    val_every=10,
    patience=4,
    max_time=540.0,
)
"""Fit options. ``zoh``: ``vir`` is a digital controller's output, held over
each 1 ms sample; one step per sample suffices for a mass whose motion is
slow beside the sample rate."""

RETURN_HORIZON_S = 2.0e3
"""Model time (seconds) of the creep phase of the unforced-return check."""

START_SPEED = 0.1
"""Speed (m/s) of the unforced check's starts, a typical speed of the log."""


def unforced_return(
    fitted: Any, horizon_s: float = RETURN_HORIZON_S
) -> dict[str, float]:
    """Step the fitted model unforced from displaced states; measure the return.

    Starts: the equilibrium moved by one standard deviation of the training
    position, plus or minus, moving at ``START_SPEED`` either way.
    Returns the largest distance left to ``(q*, 0)`` after ``horizon_s``
    seconds, in mm and in momentum, and the share of ``H - H*`` left.
    """
    from phcontrol import _mechanical
    from phcontrol._friction import friction_parameters

    system = fitted.system
    values = friction_parameters(system)
    m, q_star = values["mass"], values["equilibrium"]
    x_star = torch.tensor([[q_star, 0.0]], dtype=torch.float64)
    z_std = float(fitted.z_std[0])
    p0 = m * START_SPEED * fitted.dt / z_std  # normalised momentum
    offsets = torch.tensor(
        [[1.0, p0], [-1.0, -p0], [1.0, -p0], [-1.0, p0]], dtype=torch.float64
    )
    x = x_star + offsets
    u = torch.zeros(len(x), system.n_inputs, dtype=torch.float64)
    # Two phases: steps of one sample while the motion stops (the viscous
    # time m / c is a few hundred samples), then steps of a second for the
    # creep towards q*, whose time constant r(0) / k is reported too.
    phases = [(1.0, 2000), (horizon_s / fitted.dt / 2000, 2000)]
    with torch.no_grad():
        H_star = system.H(x_star)
        H0 = system.H(x) - H_star
        converged = True
        for dt, steps in phases:
            stepper = _mechanical.MechanicalStepper(system, dt, 1e-12, 50)
            for _ in range(steps):
                x, _, ok = stepper.step(x, u)
                converged &= bool(ok.all())
        H1 = system.H(x) - H_star
        r0, _ = system.R.law(torch.zeros(1, dtype=torch.float64), 1)
    creep_s = float(r0) / values["spring"] * fitted.dt
    return {
        "q_star_mm": (q_star * z_std + float(fitted.z_mean[0])) * 1e3,
        "distance_mm": float((x[:, 0] - q_star).abs().max()) * z_std * 1e3,
        "start_distance_mm": z_std * 1e3,
        "speed_left_mm_s": float((x[:, 1] / m).abs().max()) * z_std / fitted.dt * 1e3,
        "energy_left": float((H1 / H0).max()),
        "converged": converged,
        "creep_time_s": creep_s,
        "horizon_s": horizon_s + 2000 * fitted.dt,
    }


def fit_one(seed: int, save_dir: str) -> dict[str, Any]:
    """Fit EMPS with one seed; write its model and report into ``save_dir``.

    Writes ``emps_seed{seed}.safetensors`` and ``seed{seed}.json`` (wall
    time, metrics, audit, events, history, parameters, settings).
    """
    torch.set_num_threads(1)
    import phcontrol as phc

    t0 = time.perf_counter()
    fit = phc.identify("emps", seed=seed, **OPTIONS)
    wall = time.perf_counter() - t0
    phc.io.save(fit.model, f"{save_dir}/emps_seed{seed}.safetensors")
    r = fit.report
    record = {
        "seed": seed,
        "wall": wall,
        "metrics": r.metrics,
        "audit": r.audit,
        "events": r.events,
        "history": r.history,
        "params": r.parameters,
        "settings": {k: v for k, v in r.settings.items() if k != "versions"},
    }
    with open(f"{save_dir}/seed{seed}.json", "w") as fh:
        json.dump(record, fh, default=str)
    return record


def collect(save_dir: str, seeds: list[int]) -> list[dict[str, Any]]:
    """Read the fits in ``save_dir``, run the unforced check; one row a seed."""
    import phcontrol as phc
    from phcontrol._friction import friction_parameters

    rows = []
    for seed in seeds:
        with open(f"{save_dir}/seed{seed}.json") as fh:
            record = json.load(fh)
        model = phc.io.load(f"{save_dir}/emps_seed{seed}.safetensors")
        ret = unforced_return(model)
        values = friction_parameters(model.system)
        rows.append(
            {
                "seed": seed,
                "test_mm": record["metrics"]["test"]["rmse"],
                "val_mm": record["metrics"]["val"]["rmse"],
                "wall_s": record["wall"],
                "audit_rel": record["audit"]["max_relative_residual"],
                "events": len(record["events"]),
                **{f"param_{k}": v for k, v in values.items()},
                **{f"return_{k}": v for k, v in ret.items()},
            }
        )
    return rows


def run_emps(seeds: list[int], save_dir: str, jobs: int = 1) -> list[dict[str, Any]]:
    """Fit every seed (``jobs`` processes at a time); return one row per seed."""
    os.makedirs(save_dir, exist_ok=True)
    if jobs <= 1:
        for seed in seeds:
            fit_one(seed, save_dir)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(fit_one, seeds, [save_dir] * len(seeds)))
    return collect(save_dir, seeds)


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the rows, then the median and the worst seed."""
    lines = [
        "| seed | test RMSE (mm) | val RMSE (mm) | wall time | unforced: "
        "distance left (mm) | energy left | audit (rel.) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['test_mm']:.2f} | {r['val_mm']:.2f} | "
            f"{r['wall_s'] / 60:.1f} min | {r['return_distance_mm']:.3g} of "
            f"{r['return_start_distance_mm']:.0f} | {r['return_energy_left']:.2g} "
            f"| {r['audit_rel']:.1e} |"
        )
    test = [r["test_mm"] for r in rows]
    med = statistics.median(test)
    lines.append("")
    lines.append(
        f"median {med:.2f} mm, worst {max(test):.2f} mm "
        f"(worst / median {max(test) / med:.2f}); longest fit "
        f"{max(r['wall_s'] for r in rows) / 60:.1f} min"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--save-dir", default="runs/emps")
    parser.add_argument(
        "--report-only", action="store_true", help="tabulate fits already saved"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        rows = collect(args.save_dir, args.seeds)
    else:
        rows = run_emps(args.seeds, args.save_dir, jobs=args.jobs)
    print("command: python -m benchmarks.identification_emps " + " ".join(sys.argv[1:]))
    print(table(rows))
    for r in rows:
        print(
            {
                k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in r.items()
            }
        )


if __name__ == "__main__":
    main()
