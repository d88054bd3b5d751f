"""Fitting from noisy states: frequency bias and spurious damping, and remedies.

The plant is a lossless oscillator, ``H = p²/2 + 4 q²/2`` (angular
frequency 2 rad/s, no damping), sampled every 0.05 s from four random
initial states (200 samples each, about six periods); white Gaussian noise
of standard deviation ``sigma`` is added to both states. The model is a
linear pH model ``(J - R) Q`` with a learned ``Q = LLᵀ``, canonical ``J``
and a learned ``R = LLᵀ ⪰ 0``; its frequency and damping are read off
the eigenvalues ``-ζ ± iω`` of ``(J - R) Q``.

Fits (all with :func:`phcontrol.fit_states`, RK4 steps, Adam):

* ``one-step``: predict each noisy sample from the previous noisy one;
* ``one-step + SG``: the same after a Savitzky-Golay filter (window 15);
* ``EIV``: windows of 20 steps from learned initial states, compared
  with the data over the whole window (errors in variables).

Run ``python -m benchmarks.noisy_states [--quick]``; it prints a markdown
table headed by the command line.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import phcontrol as phc
from phcontrol import plants

OMEGA = 2.0
DT = 0.05


def data(noise: float, n_traj: int, samples: int, seed: int) -> torch.Tensor:
    truth = plants.mass_spring_damper(1.0, OMEGA**2, 0.0)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n_traj, 2, generator=gen, dtype=torch.float64)
    x = phc.simulate(truth, x0, dt=DT, steps=samples - 1, method="rk4", substeps=5).x
    return x + noise * torch.randn(x.shape, generator=gen, dtype=x.dtype)


def model() -> phc.PortHamiltonian:
    torch.manual_seed(0)
    return phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2),
        phc.CanonicalJ(2),
        phc.CholeskyDissipation(2, init_scale=0.1),
    ).double()


def frequency_and_damping(m: phc.PortHamiltonian) -> tuple[float, float]:
    x = torch.zeros(1, 2, dtype=torch.float64)
    with torch.no_grad():
        A = (m.J_matrix(x)[0] - m.R_matrix(x)[0]) @ m.H.Q
    lam = torch.linalg.eigvals(A)
    return float(lam.imag.abs().max()), float(-lam.real.max())


FITS = {
    "one-step": {"loss": "one_step"},
    "one-step + SG": {"loss": "one_step", "smoothing": 15},
    "EIV": {"loss": "multi_step", "horizon": 20, "free_initial_states": True},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    iterations = 600 if args.quick else 2000
    rows = []
    for noise in (0.02, 0.05, 0.1):
        x = data(noise, 4, 200, seed=1)
        for name, options in FITS.items():
            m = model()
            start = time.perf_counter()
            phc.fit_states(m, x, DT, iterations=iterations, lr=0.02, **options)
            seconds = time.perf_counter() - start
            omega, zeta = frequency_and_damping(m)
            rows.append(
                f"| {noise:g} | {name} | {100 * (omega - OMEGA) / OMEGA:+.2f} | "
                f"{zeta:.4f} | {seconds:.0f} |"
            )
    print("`python -m benchmarks.noisy_states " + " ".join(sys.argv[1:]) + "`\n")
    print(
        "| sigma | fit | frequency error (%) | spurious damping rate (1/s) "
        "| fit time (s) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
