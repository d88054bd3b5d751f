"""Baselines on the three identification benchmarks, fitted by the same code.

Two models stand beside phcontrol's physical ones (``benchmarks.identification``):

- ``linear``: the linear port-Hamiltonian model (quadratic ``H``, constant
  ``J``, ``R ⪰ 0`` and ``G``), passive by construction;
- ``neural_ode``: the black-box neural ODE (an MLP vector field stepped by
  RK4), with no energy and no passivity.

Each is one :func:`phcontrol.identify` call with the options the
dataset's physical model uses (Silverbox: the defaults; EMPS:
``benchmarks.identification_emps.OPTIONS``; tanks:
``benchmarks.identification_tanks.SETTINGS``), only ``model`` replaced,
and ``max_time`` set so that a fit stays within the 15 minutes (3 for the
tanks) that the physical models are held to. The neural ODE has no
physical first stage, so its Adam stage runs up to
``NEURAL_ODE_ITERATIONS`` iterations with a patience of 10 validations,
within the same time cap. The score is the protocol's test RMSE on every
test set.

Run ``python -m benchmarks.identification_baselines [--dataset silverbox]
[--models linear neural_ode] [--seeds 0]``; it prints a markdown table
headed by the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

MODELS = ("linear", "neural_ode")
NEURAL_ODE_ITERATIONS = 5000
"""Adam iterations of the neural ODE; the time cap or early stopping ends it first."""
UNITS = {"silverbox": "mV", "emps": "mm", "cascaded_tanks": "V"}


def options(dataset: str, model: str) -> dict[str, Any]:
    """Return the fit options of ``dataset``'s physical model with ``model``."""
    if dataset == "silverbox":
        base: dict[str, Any] = {"max_time": 840.0}
    elif dataset == "emps":
        from .identification_emps import OPTIONS

        base = dict(OPTIONS)
    elif dataset == "cascaded_tanks":
        from .identification_tanks import SETTINGS

        base = dict(SETTINGS)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {sorted(UNITS)}")
    base["model"] = model
    if model == "neural_ode":
        # No physical first stage to start from: Adam alone, for as long as
        # the time cap and early stopping allow.
        base.update(iterations=NEURAL_ODE_ITERATIONS, patience=10)
    return base


def fit_baseline(
    dataset: str, model: str, seed: int, **overrides: Any
) -> dict[str, Any]:
    """Fit one baseline; return its test and validation RMSE and wall time.

    ``overrides`` replace fit options (the tests use them to fit briefly).
    """
    import phcontrol as phc

    torch.set_num_threads(1)
    start = time.perf_counter()
    settings = {**options(dataset, model), **overrides}
    fit = phc.identify(dataset, seed=seed, **settings)
    wall = time.perf_counter() - start
    metrics = fit.report.metrics
    return {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "wall_s": wall,
        "rmse": {name: m["rmse"] for name, m in metrics.items()},
        "faults": [e["event"] for e in fit.report.events],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: one row per fit, every scored set in its unit."""
    lines = [
        "| dataset | model | seed | test RMSE | val RMSE | wall (s) | faults |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        unit = UNITS[r["dataset"]]
        tests = ", ".join(
            f"{name} {value:.3g}" for name, value in r["rmse"].items() if name != "val"
        )
        val = r["rmse"].get("val", float("nan"))
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['seed']} | {tests} ({unit}) "
            f"| {val:.3g} | {r['wall_s']:.0f} | {len(r['faults'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", nargs="+", choices=sorted(UNITS), default=sorted(UNITS)
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.dataset:
        for model in args.models:
            for seed in args.seeds:
                rows.append(fit_baseline(dataset, model, seed))
                print(rows[-1], file=sys.stderr, flush=True)
    words = sys.argv[1:] if argv is None else argv
    print("command: python -m benchmarks.identification_baselines " + " ".join(words))
    print(table(rows))


if __name__ == "__main__":
    main()
