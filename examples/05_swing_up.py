"""Swing up a pendulum and a cart-pole by energy pumping, then catch them upright.

Goal
    Start both plants at rest hanging down, where the pumping law alone
    gives no input, kick them, pump energy up to that of the upright state
    and hand over to a local stabiliser near the top: energy shaping for the
    pendulum, LQR (python-control) for the cart-pole. The energy balance of
    each closed loop is audited along the way.
Data set
    None: the reference plants of ``phcontrol.plants``.
Expected runtime
    About a minute on two CPU cores; a few seconds with ``PHCONTROL_SMOKE=1``.
Figure
    ``05_swing_up.png`` in ``$PHCONTROL_OUT`` (default ``examples/out/``):
    angle (left) and pumped energy (right) of both plants against time.
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
    LQR,
    CartPolePumping,
    EnergyPumping,
    EnergyShaping,
    SwingUp,
    closed_loop,
)

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

STEPS = 40 if SMOKE else 400
DT = 0.025

# Pendulum: torque limited to 3 N m, a third of m g l, so it must pump.
pendulum = phc.plants.pendulum(damping=0.05)
pump = EnergyPumping(pendulum, [math.pi, 0.0], gain=2.0, max_input=3.0)
local = EnergyShaping(pendulum, [math.pi], stiffness=30.0, damping=8.0, periodic=True)
swing = SwingUp(pump, local, angle=0)
traj_p = phc.simulate(
    closed_loop(pendulum, swing), torch.zeros(1, 2), dt=DT, steps=STEPS
)

# Cart-pole: pump the pole's energy through the cart, LQR near the top.
cart_pole = phc.plants.cart_pole()
upright = [0.0, math.pi, 0.0, 0.0]
lqr = LQR(cart_pole, upright, [1.0, 10.0, 1.0, 1.0], 1.0, angles=[1])
cp_pump = CartPolePumping(
    cart_pole, gain=10.0, max_acceleration=8.0, position_gain=1.0, velocity_gain=2.0
)
cp_swing = SwingUp(cp_pump, lqr, angle=1, switch_angle=0.4, kick=2.0)
traj_c = phc.simulate(
    closed_loop(cart_pole, cp_swing), torch.zeros(1, 4), dt=DT, steps=STEPS
)

for name, traj, i in (("pendulum", traj_p, 0), ("cart-pole", traj_c, 1)):
    err = math.remainder(traj.x[0, -1, i].item() - math.pi, 2 * math.pi)
    audit = (traj.residual.abs() / (1 + traj.energy[:, :-1].abs())).max().item()
    print(
        f"{name:9s} final angle error {err:+.2e} rad, energy-balance residual "
        f"{audit:.1e}"
    )

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for name, traj, ctrl, i in (
    ("pendulum", traj_p, swing, 0),
    ("cart-pole", traj_c, cp_swing, 1),
):
    left.plot(traj.t, traj.x[0, :, i], label=name)
    e = ctrl.pump.energy_error(traj.x[0]) + ctrl.pump.target_energy
    right.plot(traj.t, e / ctrl.pump.target_energy, label=name)
for level in (math.pi, -math.pi):
    left.axhline(level, color="k", lw=0.5)
left.set_title("angle from the downward vertical (rad)")
right.set_title("pumped energy / upright energy")
for ax in (left, right):
    ax.set_xlabel("time (s)")
    ax.legend()
fig.tight_layout()
fig.savefig(OUT / "05_swing_up.png", dpi=120)
print(f"figure written to {OUT / '05_swing_up.png'}")
