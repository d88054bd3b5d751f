"""Identify a two-link arm from a noisy log, design on the fit, run on the true arm.

Goal
    The whole chain from data to a certified controller: log a two-link arm
    under multisine torques with noisy positions and velocities, fit its
    physical parameters (``fit_two_link_arm``), synthesise the smallest
    energy-shaping gains for a decay rate of 2 / s on the identified model,
    certify that design's closed loop (SDP and numpy checks, Lyapunov LMI),
    then run the controller on the true arm from seeded initial conditions
    and compare it with the same synthesis done on the true model. On the
    true arm the gravity compensation of the fitted model is slightly off,
    so that loop settles with a small offset; its certificate says so.
Data set
    None: the log is simulated from ``phcontrol.plants.two_link_arm``.
Expected runtime
    About half a minute on two CPU cores; a few seconds with ``--quick``
    (or ``PHCONTROL_SMOKE=1``).
Figure
    ``07_identify_then_control.png`` in ``$PHCONTROL_OUT`` (default
    ``examples/out/``): relative error of each fitted parameter (left), joint errors
    on the true arm for both designs (middle), final errors per initial
    condition (right).
"""

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import phcontrol as phc  # noqa: E402
from phcontrol.control import (  # noqa: E402
    EnergyShaping,
    certify_closed_loop,
    closed_loop,
    fit_two_link_arm,
    record_motion,
    regulation_metrics,
    synthesize_shaping_gains,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="short log, few runs")
QUICK = parser.parse_args().quick or os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

RATE = 2.0
Q_STAR = [0.5, -0.3]
N_RUNS = 4 if QUICK else 20
STEPS = 200 if QUICK else 300  # 4 s or 6 s at dt = 0.02

# 1. A noisy log of the true arm: 20 s at 100 Hz (5 s with --quick).
truth = phc.plants.two_link_arm()
t = np.arange(501 if QUICK else 2001)[:, None] * 0.01
u = np.hstack([8 * np.sin(1.3 * t), 3 * np.sin(2.1 * t + 1)])
log = record_motion(truth, [0.0] * 4, u, 0.01, noise_std=0.01, seed=2)

# 2. Least squares on the regressor form.
fit = fit_two_link_arm(log)
true_params = dict(zip("a b c g1 g2".split(), truth.H.params.tolist(), strict=True))
true_params.update(d1=0.1, d2=0.1)
for name, value in fit.parameters.items():
    print(f"{name}: fitted {value:.4g}, true {true_params[name]:.4g}")

# 3. Design on each model: the smallest diagonal gains for the rate.
designs = {}
for label, model in (("identified model", fit.model), ("true model", truth)):
    gains = synthesize_shaping_gains(model, Q_STAR, decay_rate=RATE)
    designs[label] = EnergyShaping(model, Q_STAR, gains.stiffness, gains.damping)
    print(
        f"design on the {label}: K_p {gains.stiffness.diagonal().round(2)}, "
        f"K_d {gains.damping.diagonal().round(2)}"
    )

# 4. Certificates: of the design on its own model, and on the true arm.
ctrl = designs["identified model"]
own = certify_closed_loop(closed_loop(fit.model, ctrl), decay_rate=RATE)
print(f"identified design on the identified model: {own.verdict}")
on_truth = certify_closed_loop(closed_loop(truth, ctrl), decay_rate=RATE)
print(
    f"identified design on the true arm: {on_truth.verdict} "
    f"({on_truth.check('equilibrium').message})"
)

# 5. Run both designs on the true arm from the same seeded initial conditions.
gen = torch.Generator().manual_seed(0)
x0 = torch.zeros(N_RUNS, 4)
x0[:, :2] = (2 * torch.rand(N_RUNS, 2, generator=gen) - 1) * 1.5
runs = {}
print("\n| design | success | median settling | median final error | median effort |")
print("| --- | --- | --- | --- | --- |")
for label, design in designs.items():
    loop = closed_loop(truth, design)
    traj = phc.simulate(loop, x0, dt=0.02, steps=STEPS, method="rk4")
    m = regulation_metrics(traj.t, traj.x, design.x_star, design, tolerance=1e-2)
    s = m.summary()
    runs[label] = (traj, m)
    print(
        f"| {label} | {s['success_rate'] * 100:.0f} % | "
        f"{s['median_settling_time']:.2f} s | {s['median_final_error']:.1e} | "
        f"{s['median_effort']:.1f} |"
    )

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
names = list(fit.parameters)
rel = [100 * (fit.parameters[k] / true_params[k] - 1) for k in names]
axes[0].bar(np.arange(len(names)), rel)
axes[0].set_xticks(np.arange(len(names)), names)
axes[0].axhline(0.0, color="k", lw=0.5)
axes[0].set_title("fitted / true - 1 (%)")
for (label, (traj, _)), color in zip(runs.items(), ("C0", "C1"), strict=True):
    err = (traj.x[:, :, :2] - torch.tensor(Q_STAR)).norm(dim=-1)
    for i in range(N_RUNS):
        axes[1].semilogy(
            traj.t, err[i], color=color, lw=0.8, label=label if i == 0 else None
        )
axes[1].set_title("|q - q*| on the true arm (rad)")
axes[1].set_xlabel("time (s)")
axes[1].legend()
for (label, (_, m)), marker in zip(runs.items(), ("o", "x"), strict=True):
    axes[2].semilogy(np.arange(N_RUNS), m.final_error, marker, label=label)
axes[2].axhline(1e-2, color="k", lw=0.5)
axes[2].set_title("final error per initial condition")
axes[2].set_xlabel("initial condition")
axes[2].legend()
fig.tight_layout()
fig.savefig(OUT / "07_identify_then_control.png", dpi=120)
print(f"figure written to {OUT / '07_identify_then_control.png'}")
