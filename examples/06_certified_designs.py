"""Design passivity-based controllers and certify their closed loops.

Goal
    Three designs, each closed into a pH model again and certified
    (R_d >= 0, Hessian of H_d > 0 at the target, a Lyapunov LMI with a
    decay rate, all re-checked in numpy):
    a two-link arm regulated by energy shaping with gains synthesised as an
    LMI (against plain PD, which keeps an offset under gravity); an
    inertia-wheel pendulum balanced by IDA-PBC with a fitted target energy;
    a boost converter tracking a voltage reference with PI-PBC.
Data set
    None: the reference plants of ``phcontrol.plants``.
Expected runtime
    About a minute on two CPU cores; well under that with ``PHCONTROL_SMOKE=1``.
Figure
    ``06_certified_designs.png`` in ``$PHCONTROL_OUT`` (default
    ``examples/out/``): arm joint angles with energy shaping and PD (left),
    pendulum angle of the inertia-wheel pendulum (middle), boost output
    voltage against its reference (right).
"""

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import phcontrol as phc  # noqa: E402
from phcontrol.control import (  # noqa: E402
    PIPBC,
    EnergyShaping,
    certify_closed_loop,
    closed_loop,
    synthesize_shaping_gains,
    wheel_pendulum_ida_pbc,
)

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
SCALE = 0.2 if SMOKE else 1.0


def report(name: str, loop, rate: float) -> None:
    cert = certify_closed_loop(loop, decay_rate=rate)
    checks = ", ".join(f"{c.name} {c.status}" for c in cert.checks)
    print(f"{name}: {cert.verdict} at decay rate {rate:g} ({checks})")


# Two-link arm: the smallest diagonal gains for a decay rate of 2 / s.
arm = phc.plants.two_link_arm()
q_star = [0.5, -0.3]
gains = synthesize_shaping_gains(arm, q_star, decay_rate=2.0)
print(
    "synthesised K_p",
    gains.stiffness.diagonal().round(2),
    "K_d",
    gains.damping.diagonal().round(2),
)
arm_runs = {}
for name, comp in (("energy shaping", True), ("PD", False)):
    ctrl = EnergyShaping(
        arm, q_star, gains.stiffness, gains.damping, gravity_compensation=comp
    )
    loop = closed_loop(arm, ctrl)
    report(f"arm, {name}", loop, 2.0)
    arm_runs[name] = phc.simulate(
        loop, torch.zeros(1, 4), dt=0.05, steps=int(100 * SCALE)
    )

# Inertia-wheel pendulum: IDA-PBC, H_d fitted to the matching condition.
iwp = phc.plants.inertia_wheel_pendulum()
ida = wheel_pendulum_ida_pbc(iwp)
print(f"fitted H_d: a = {ida.H_d.a.item():.6g}, c = {ida.H_d.c.item():.6g}")
iwp_loop = closed_loop(iwp, ida, form="port_hamiltonian")
report("inertia-wheel pendulum, IDA-PBC", iwp_loop, 0.3)
x0 = torch.tensor([[math.pi - 0.5, 0.0, 0.0, 0.0]])
iwp_traj = phc.simulate(iwp_loop, x0, dt=0.1, steps=int(200 * SCALE))

# Boost converter: PI-PBC through the incremental passive output.
boost = phc.plants.boost_converter()
xs, us = phc.plants.boost_equilibrium(boost, 24.0, 12.0)
pi = PIPBC(boost, xs, us, proportional=1e-2, integral=10.0)
report("boost converter, PI-PBC", closed_loop(boost, pi), 50.0)
x = torch.tensor([[0.0, boost.G.inv[1].item() ** -1 * 12.0, 0.0]])
times, volts, refs = [], [], []
for k, ref in enumerate((24.0, 30.0, 20.0)):
    pi = pi.retarget(*phc.plants.boost_equilibrium(boost, ref, 12.0))
    traj = phc.simulate(closed_loop(boost, pi), x, dt=2e-4, steps=int(300 * SCALE))
    times.append(traj.t + k * traj.t[-1])
    volts.append(traj.x[0, :, 1] * boost.G.inv[1])
    refs.append(torch.full_like(traj.t, ref))
    x = traj.x[:, -1]

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for name, traj in arm_runs.items():
    for i, style in ((0, "-"), (1, "--")):
        axes[0].plot(traj.t, traj.x[0, :, i], style, label=f"{name}, q{i + 1}")
for v in q_star:
    axes[0].axhline(v, color="k", lw=0.5)
axes[0].set_title("two-link arm: joint angles (rad)")
axes[1].plot(iwp_traj.t, iwp_traj.x[0, :, 0])
axes[1].axhline(math.pi, color="k", lw=0.5)
axes[1].set_title("inertia-wheel pendulum: angle (rad)")
axes[2].plot(torch.cat(times), torch.cat(volts), label="output voltage")
axes[2].plot(torch.cat(times), torch.cat(refs), "k--", lw=0.8, label="reference")
axes[2].set_title("boost converter (V)")
for ax in axes:
    ax.set_xlabel("time (s)")
axes[0].legend(fontsize=7)
axes[2].legend()
fig.tight_layout()
fig.savefig(OUT / "06_certified_designs.png", dpi=120)
print(f"figure written to {OUT / '06_certified_designs.png'}")
