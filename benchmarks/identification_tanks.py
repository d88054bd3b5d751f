"""Cascaded Tanks: the tank pH model over several seeds, with its wall time.

Each seed fits ``identify("cascaded_tanks", model="tanks", ...)`` with the
options in ``SETTINGS`` (its initial flow and pump coefficients jittered by
the seed) and reports the protocol's test RMSE in volts (simulation from
the first 50 test samples, scored on the other 974), the validation RMSE,
the wall time of the whole fit, the energy-balance audit, and the
unforced check: the fitted model, started from the state it estimates at
the start of the test record, is run with the pump off for
``UNFORCED_SAMPLES`` samples; the row gives the largest level left (its
distance to the empty tanks, the equilibrium, where ``H`` has its strict
minimum) and whether ``H`` never rose.

Run ``python -m benchmarks.identification_tanks [--seeds 0 1 ...]``; it
prints a markdown table headed by the command line. ``run_tanks(seeds)``
returns the rows for other scripts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

import phcontrol as phc
from phcontrol import _tanks

SETTINGS: dict[str, Any] = {
    "model": "tanks",
    "input_hold": "zoh",  # the pump is driven through a zero-order hold
    "substeps": 1,
    "window": 100,
    "batch_size": 32,
    "lbfgs_steps": 12,
    "iterations": 40,
    "val_every": 10,
    "patience": 3,
    "lr": 5e-3,
    "n_past": 10,
    "max_time": 150.0,
}
"""Options of every fit; ``max_time`` keeps a fit within three minutes."""

UNFORCED_SAMPLES = 2000
"""Samples (4 s each) of the pump-off run of the unforced check."""


def unforced_return(fitted: phc.IdentifiedModel, log: Any, n_init: int) -> dict:
    """Run the fitted tanks with the pump off from the state of ``log[n_init]``."""
    with torch.no_grad():
        x0, _ = fitted._initial_state(log.u, log.z, n_init)
        u = torch.zeros(1, UNFORCED_SAMPLES * fitted.substeps, 1, dtype=x0.dtype)
        xs, ok = _tanks.rollout(fitted.system, x0, u, fitted.substeps)
        H = fitted.system.energy(xs[0])
    return {
        "start": x0[0].tolist(),
        "final_distance": float(xs[0, -1].abs().max()),
        "H_never_rose": bool((H[1:] <= H[:-1] + 1e-12 * (1 + H[:-1].abs())).all()),
        "converged": bool(ok.all()),
    }


def run_tanks(seeds: list[int]) -> list[dict[str, Any]]:
    """Fit the tank model once per seed; return one row of figures per seed."""
    torch.set_num_threads(1)
    data = phc.datasets.load("cascaded_tanks")
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        fit = phc.identify(data, seed=seed, **SETTINGS)
        wall = time.perf_counter() - start
        report = fit.report
        check = unforced_return(fit.model, data.splits["test"], data.init_window)
        stages = [h["stage"] for h in report.history]
        rows.append(
            {
                "seed": seed,
                "test_rmse_V": report.metrics["test"]["rmse"],
                "val_rmse_V": report.metrics["val"]["rmse"],
                "wall_s": wall,
                "lbfgs_steps": stages.count("lbfgs"),
                "adam_validations": stages.count("adam"),
                "audit_rel": report.audit["max_relative_residual"],
                "unforced_distance": check["final_distance"],
                "unforced_H_never_rose": check["H_never_rose"],
                "unforced_start": check["start"],
                "parameters": fit.model.system.R.coefficients(),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Format the rows and their summary as markdown."""
    lines = [
        "| seed | test RMSE (V) | val RMSE (V) | wall (s) | L-BFGS steps "
        "| audit (rel.) | pump-off distance to empty | H never rose |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['test_rmse_V']:.3f} | {r['val_rmse_V']:.3f} "
            f"| {r['wall_s']:.0f} | {r['lbfgs_steps']} | {r['audit_rel']:.1e} "
            f"| {r['unforced_distance']:.1e} | {r['unforced_H_never_rose']} |"
        )
    test = [r["test_rmse_V"] for r in rows]
    wall = [r["wall_s"] for r in rows]
    median = statistics.median(test)
    lines += [
        "",
        f"Test RMSE over {len(rows)} seeds: median {median:.3f} V, worst "
        f"{max(test):.3f} V, best {min(test):.3f} V; worst / median "
        f"{max(test) / median:.2f}. Wall time per fit: median "
        f"{statistics.median(wall):.0f} s, longest {max(wall):.0f} s.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    args = parser.parse_args(argv)
    rows = run_tanks(args.seeds)
    command = "python -m benchmarks.identification_tanks " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(f"`{command.strip()}`\n")
    print(table(rows))
    for r in rows:
        params = {k: np.round(v, 3).tolist() for k, v in r["parameters"].items()}
        print(f"\nseed {r['seed']}: {params}; pump-off start {r['unforced_start']}")


if __name__ == "__main__":
    main()
