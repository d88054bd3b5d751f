"""Certify passivity of a few LTI systems and of a port-Hamiltonian model.

Goal
    Run ``phc.check_passivity`` on systems whose answer is known by hand,
    print each verdict with the method that decided it and its re-checked
    margin, and show the frequency sweep of the smallest eigenvalue of
    ``G(jw) + G(jw)^H`` that explains the verdict.
Data set
    None: the systems are written down below.
Expected runtime
    A few seconds (the same with ``PHCONTROL_SMOKE=1``).
Figure
    ``02_passivity_certificate.png`` in ``$PHCONTROL_OUT`` (default
    ``examples/out/``): one frequency sweep per LTI system, shaded where
    passivity fails.
"""

import os
from pathlib import Path

import control
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import phcontrol as phc  # noqa: E402

SMOKE = os.environ.get("PHCONTROL_SMOKE") == "1"
OUT = Path(os.environ.get("PHCONTROL_OUT", Path(__file__).parent / "out"))
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

systems = {
    # Positive real: Re G(jw) = (w^2 + 2) / (w^2 + 4) > 0.
    "(s + 1)/(s + 2)": control.tf([1, 1], [1, 2]),
    # A right-half-plane zero: G(0) = -1/2 < 0 refutes passivity.
    "(s - 1)/(s + 2)": control.tf([1, -1], [1, 2]),
    # Mass-spring-damper, force in, velocity out: passive with D = 0.
    "s/(s^2 + s + 1)": control.tf([1, 0], [1, 1, 1]),
    # Relative degree two: the phase falls below -90 degrees past resonance.
    "1/(s^2 + 0.1 s + 1)": control.tf([1], [1, 0.1, 1]),
}

print(f"{'system':<22} {'verdict':<12} {'method':<12} {'margin':>10}")
for name, system in systems.items():
    result = phc.check_passivity(system)
    print(f"{name:<22} {result.verdict:<12} {result.method:<12} {result.margin:>10.3g}")
    if result.witness_frequency is not None:
        print(f"{'':<22} fails at w = {result.witness_frequency:.3g} rad/s")

# A pH model is passive by construction; the certificate is P = Q.
model = phc.PortHamiltonian(
    H=phc.QuadraticHamiltonian(2),
    J=phc.CanonicalJ(2),
    R=phc.CholeskyDissipation(2, mask=[False, True], init_scale=0.5),
    G=phc.InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])),
).double()
result = phc.check_passivity(model)
print(f"\npH model: {result.verdict} (decided by {result.method})")
print(f"  {result.message}")
if result.P is not None:
    print(f"  storage P =\n{np.array2string(np.asarray(result.P), precision=3)}")

fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=False)
for ax, (name, system) in zip(axes.flat, systems.items(), strict=True):
    sweep = phc.passivity.frequency_sweep(system, n_points=100 if SMOKE else 400)
    phc.passivity.plot_frequency_sweep(sweep, ax=ax)
    ax.set_title(name)
fig.suptitle("smallest eigenvalue of G(jw) + G(jw)^H")
fig.tight_layout()
fig.savefig(OUT / "02_passivity_certificate.png", dpi=120)
print(f"figure written to {OUT / '02_passivity_certificate.png'}")

if not SMOKE:
    plt.show()
