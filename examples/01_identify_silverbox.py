"""Identify the Silverbox electronic Duffing oscillator as a passive pH model.

Goal
    Fit a one-degree-of-freedom mechanical port-Hamiltonian model to the
    bundled Silverbox log with ``phc.identify``, report the simulation RMSE of
    every official test set in mV next to the published results the dataset
    carries, and plot measured against simulated output.
Data set
    ``silverbox`` (bundled, offline): 131 072 samples at 610.35 Hz.
Expected runtime
    Full run: the default fit, a few minutes on two CPU cores (see
    ``docs/benchmarks.md`` for the measured time).
    ``PHCONTROL_SMOKE=1``: a few seconds, on short slices of every split.
Figure
    ``01_identify_silverbox.png`` in ``$PHCONTROL_OUT`` (default
    ``examples/out/``): measured and simulated output on the multisine test
    set, and the simulation error.
"""

import dataclasses
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import phcontrol as phc  # noqa: E402

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)

dataset = phc.datasets.load("silverbox")
print(dataset)

if SMOKE:
    # Short slices of every split and a handful of iterations: this checks
    # the pipeline, not the accuracy.
    splits = {
        name: log.slice(0, 3000 if name == "train" else 300)
        for name, log in dataset.splits.items()
    }
    dataset = dataclasses.replace(dataset, splits=splits)
    options = dict(
        lm_windows=8,
        lm_lengths=(20,),
        lm_iterations=2,
        iterations=3,
        batch_size=8,
        window=10,
        substeps=1,
        val_every=1,
    )
else:
    options = {}

fit = phc.identify(dataset, seed=0, **options)
report = fit.report

print(f"\nfit took {report.wall_time:.1f} s")
print(f"{'test set':<30} {'phcontrol':>10}   published ({report.unit})")
for name in dataset.test_sets:
    rmse = report.metrics[name]["rmse"]
    published = ", ".join(
        f"{method} {value:g}" for method, value in dataset.published[name].items()
    )
    print(f"{name:<30} {rmse:>10.2f}   {published}")

audit = report.audit
print(
    f"\nenergy-balance audit over {audit['steps']} steps: largest residual "
    f"{audit['max_residual']:.1e} (relative {audit['max_relative_residual']:.1e})"
)

measured, simulated = fit.predictions["test_multisine"]
scale = dataset.unit_scale
shown = slice(0, min(2000, len(measured)))
dt = dataset.splits["test_multisine"].dt
t = dt * (dataset.init_window + np.arange(shown.stop))

fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
top.plot(t, scale * measured[shown, 0], label="measured", lw=1.0)
top.plot(t, scale * simulated[shown, 0], label="simulated", lw=1.0, ls="--")
top.set_ylabel("output (mV)")
top.legend(loc="upper right")
top.set_title("Silverbox, multisine test set")
bottom.plot(t, scale * (simulated[shown, 0] - measured[shown, 0]), color="C3", lw=0.8)
bottom.set_ylabel("error (mV)")
bottom.set_xlabel("time (s)")
fig.tight_layout()
fig.savefig(OUT / "01_identify_silverbox.png", dpi=120)
print(f"figure written to {OUT / '01_identify_silverbox.png'}")

if not SMOKE:
    plt.show()
