"""Silverbox with a 7-parameter grey-box Duffing model, in physical units.

The circuit is a mass-spring-damper with a cubic spring. The model is

    H = p^2 / 2 + k1 q^2/2 + k2 q^3/3 + k3 q^4/4 - f q,
    r(v) = c0 + c1 v^2,     dp/dt = -V'(q) - r(v) v + g u,

with q the output in volts and time in seconds. ``k3``, ``c0`` and ``c1``
are declared positive, so the model is passive by construction and ``H`` is
bounded below. The initial values come from an equation-error least
squares on Savitzky–Golay derivatives of the training output; then
:func:`phcontrol.identify` fits the seven parameters by
Levenberg–Marquardt over windows with free initial states (no neural part,
so no Adam stage).

Run ``python -m benchmarks.greybox_silverbox [--seed 0]``; it prints the
RMSE in mV on the three test sets, the fitted values and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.signal import savgol_filter

import phcontrol as phc


def duffing_start(log: phc.data.Log) -> dict[str, float]:
    """Equation-error start: least squares of ``q''`` on the model's terms."""
    q, u, dt = log.z[:, 0], log.u[:, 0], log.dt
    v = savgol_filter(q, 9, 3, deriv=1, delta=dt)
    a = savgol_filter(q, 9, 3, deriv=2, delta=dt)
    terms = np.stack([-q, -(q**2), -(q**3), np.ones_like(q), -v, u], axis=1)
    k1, k2, k3, f, c0, g = np.linalg.lstsq(terms, a, rcond=None)[0]
    return {
        "k1": k1,
        "k2": k2,
        "k3": max(k3, 1e-3 * abs(k1)),
        "f": f,
        "c0": max(c0, 1e-3),
        "c1": 1e-3,
        "gain": g,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = phc.datasets.load("silverbox")
    start = duffing_start(data.splits["train"])
    gain = start.pop("gain")
    model = phc.greybox.mechanical_model(
        potential=lambda q, p: (
            p.k1 * q[:, 0] ** 2 / 2
            + p.k2 * q[:, 0] ** 3 / 3
            + p.k3 * q[:, 0] ** 4 / 4
            - p.f * q[:, 0]
        ),
        damping=lambda v, p: p.c0 + p.c1 * v**2,
        values=start,
        positive=["k3", "c0", "c1"],
        gain=gain,
    )
    t0 = time.perf_counter()
    fit = phc.identify(data, model=model, iterations=0, seed=args.seed)
    wall = time.perf_counter() - t0
    print("python -m benchmarks.greybox_silverbox " + " ".join(argv or []))
    print("| test set | RMSE (mV) |\n| --- | --- |")
    for name in data.test_sets:
        print(f"| {name} | {fit.report.metrics[name]['rmse']:.3f} |")
    print(f"\nwall time {wall:.0f} s")
    print("parameters", json.dumps(phc.greybox.parameter_values(fit.model.system)))
    print("audit", json.dumps(fit.report.audit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
