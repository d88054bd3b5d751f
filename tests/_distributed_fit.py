"""A tiny fit run once in one process and once under ``torchrun``.

``tests/test_distributed.py`` imports :func:`tiny_fit` for the one-process
run and starts this file with ``python -m torch.distributed.run
--nproc_per_node=2 tests/_distributed_fit.py OUT_DIR`` for the other; each
rank then writes ``OUT_DIR/rank<k>.json`` with what :func:`tiny_fit`
returned, and the exit status of :data:`CLI_ARGS` run by
``phcontrol.cli.main`` on ``OUT_DIR/duffing.csv`` into ``OUT_DIR/cli``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phcontrol.cli import main as cli_main
from phcontrol.data import Log
from phcontrol.identify import identify

DT = 0.05


def duffing_log(samples: int = 500) -> Log:
    """``q'' = u - 0.4 q' - 2 q - q^3`` driven by a smooth random force.

    Stepped by RK4 at a quarter sample with the force held over a sample.
    """
    rng = np.random.default_rng(7)
    raw = rng.standard_normal(samples + 16)
    u = 2.0 * np.convolve(raw, np.ones(6) / 6, mode="same")[:samples]
    h = DT / 4

    def rate(q: float, v: float, f: float) -> tuple[float, float]:
        return v, f - 0.4 * v - 2.0 * q - q**3

    q = v = 0.0
    z = np.zeros(samples)
    for k in range(samples):
        z[k] = q
        for _ in range(4):
            a = rate(q, v, u[k])
            b = rate(q + h / 2 * a[0], v + h / 2 * a[1], u[k])
            c = rate(q + h / 2 * b[0], v + h / 2 * b[1], u[k])
            d = rate(q + h * c[0], v + h * c[1], u[k])
            q += h / 6 * (a[0] + 2 * b[0] + 2 * c[0] + d[0])
            v += h / 6 * (a[1] + 2 * b[1] + 2 * c[1] + d[1])
    t = DT * np.arange(samples)
    return Log(t=t, u=u[:, None], z=z[:, None], source="duffing")


FITS: dict[str, dict[str, Any]] = {
    # Levenberg–Marquardt over 6 windows, then Adam on 8-window batches.
    "lm": dict(
        first_stage="lm",
        lm_windows=6,
        lm_lengths=(12, 24),
        lm_iterations=2,
    ),
    # One L-BFGS step (up to 10 simulations) over 16 windows, then the same
    # Adam stage.
    "lbfgs": dict(first_stage="lbfgs", lbfgs_steps=1),
}
"""The first stage of each tiny fit; both end with the same Adam stage."""


CLI_ARGS = (
    "--time t --inputs u --outputs z --first-stage lbfgs --lbfgs-steps 1 "
    "--iterations 2 --window 20 --substeps 1 --batch-size 8"
).split()
"""Options of the tiny ``phcontrol identify`` run."""


def write_csv(path: Path) -> None:
    """Write :func:`duffing_log` as a CSV file with columns t, u and z."""
    log = duffing_log()
    table = np.column_stack([log.t, log.u[:, 0], log.z[:, 0]])
    np.savetxt(path, table, delimiter=",", header="t,u,z", comments="")


def tiny_fit(name: str) -> dict[str, Any]:
    """Run the tiny fit ``name`` of :data:`FITS`; return its numbers."""
    fit = identify(
        duffing_log(),
        input_hold="zoh",
        substeps=1,
        window=20,
        batch_size=8,
        iterations=4,
        val_every=2,
        mlp_hidden=4,
        n_past=5,
        **FITS[name],
    )
    state = fit.model.state_dict()
    return {
        "parameters": {k: v.flatten().tolist() for k, v in state.items()},
        "val_rmse": fit.report.metrics["val"]["rmse"],
        "val_loss": [e.get("val_loss", math.nan) for e in fit.report.history],
        "processes": fit.report.settings["processes"],
    }


def main(out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    out = Path(out_dir)
    results: dict[str, Any] = {name: tiny_fit(name) for name in FITS}
    csv = str(out / "duffing.csv")
    results["cli_status"] = cli_main(
        ["identify", csv, *CLI_ARGS, "--out", str(out / "cli")]
    )
    rank = int(os.environ.get("RANK", "0"))
    (out / f"rank{rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
