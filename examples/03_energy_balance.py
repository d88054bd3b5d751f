"""Compare the energy balance of the Gonzalez discrete gradient and RK4.

Goal
    Simulate a lossless and a damped port-Hamiltonian model (a nonlinear
    pendulum-like oscillator with a quartic energy) with
    ``method="gonzalez"`` and ``method="rk4"``, and plot how far each keeps
    the energy balance: the drift of ``H`` for the lossless model and the
    per-step residual ``H(x') - H(x) + dissipated - supplied`` for both.
Data set
    None: the models are built in the script.
Expected runtime
    About a minute on two CPU cores; a few seconds with ``PHCONTROL_SMOKE=1``.
Figure
    ``03_energy_balance.png`` in ``$PHCONTROL_OUT`` (default
    ``examples/out/``): energy error of the lossless model (left) and the
    per-step residual of both models (right), log scale.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import phcontrol as phc  # noqa: E402

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

STEPS = 40 if SMOKE else 500
DT = 0.2


def oscillator(damping: float) -> phc.PortHamiltonian:
    """A unit mass on a hardening spring, V(q) = q^2/2 + q^4/4."""
    potential = phc.PolynomialPotential(
        1, degree=4, coefficients=torch.tensor([[0.0, 0.5, 0.0, 0.25]])
    )
    R = None
    if damping > 0:
        R = phc.CholeskyDissipation(2, mask=[False, True], init_scale=damping**0.5)
    model = phc.PortHamiltonian(
        H=phc.MechanicalHamiltonian(1, potential=potential, learn_mass=False),
        J=phc.CanonicalJ(2),
        R=R,
    )
    return model.double()


x0 = torch.tensor([[1.5, 0.0]], dtype=torch.float64)
runs = {}
for label, damping in (("lossless", 0.0), ("damped", 0.1)):
    model = oscillator(damping)
    for method in ("gonzalez", "rk4"):
        with torch.no_grad():
            traj = phc.simulate(model, x0, dt=DT, steps=STEPS, method=method)
        runs[label, method] = traj
        worst = traj.residual.abs().max().item()
        line = f"{label:<9} {method:<9} max |residual| = {worst:8.1e}"
        if damping == 0:
            drift = (traj.energy - traj.energy[:, :1]).abs().max().item()
            line += f"   max |H - H0| = {drift:8.1e}"
        print(line)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for method, style in (("gonzalez", "-"), ("rk4", "--")):
    traj = runs["lossless", method]
    error = (traj.energy - traj.energy[:, :1]).abs()[0] + 1e-18
    left.semilogy(traj.t, error, style, label=method)
    for label, color in (("lossless", "C0"), ("damped", "C1")):
        traj = runs[label, method]
        residual = traj.residual.abs()[0] + 1e-18
        right.semilogy(
            traj.t[1:], residual, style, color=color, label=f"{label}, {method}"
        )
left.set_title("lossless model: |H(x_k) - H(x_0)|")
right.set_title("per-step residual of the energy balance")
for ax in (left, right):
    ax.set_xlabel("time")
    ax.legend()
fig.tight_layout()
fig.savefig(OUT / "03_energy_balance.png", dpi=120)
print(f"figure written to {OUT / '03_energy_balance.png'}")

if not SMOKE:
    plt.show()
