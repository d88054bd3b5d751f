"""The HNN table: derivative loss and rollout energy error on four systems.

Data, after Greydanus, Dzamba and Yosinski, "Hamiltonian Neural Networks"
(NeurIPS 2019), regenerated here from its description:

* mass-spring: ``H = q² + p²``; 50 trajectories (25 train, 25 test) of 30
  samples on ``t ∈ [0, 3]``; start on the circle ``H = r²`` with radius
  ``r`` uniform in [0.1, 1.0] and a uniform angle; Gaussian noise of
  standard deviation 0.1 on ``q`` and ``p``;
* pendulum: ``H = 3 (1 - cos q) + p²`` (``2mgℓ(1 - cos q) + ℓ²p²/2m`` with
  the paper's constants, written as its data were generated); 25 + 25
  trajectories of 45 samples on ``[0, 3]``; radius in [1.3, 2.3]; noise 0.1;
* real pendulum: the bundled Schmidt-Lipson log (``phc.datasets.load(
  "real_pendulum")``), its last 20% the test set, finite differences as
  derivatives, energy ``2.4 (1 - cos θ) + ω²`` (``PROTOCOLS.md``);
* two-body: unit masses, ``G = 1``; 1000 near-circular orbits of 50 samples
  on ``[0, 20]``, the first 20% of them the test set; body 1 at a position
  uniform in [0.5, 1.5]², body 2 opposite, circular speed scaled by
  ``1 + 0.05 N(0, 1)``; no state noise.

Synthetic trajectories come from phcontrol's reference plants integrated
by RK4 at a small step in float64; the training targets of the derivative
models are the exact vector field at the noise-free states, evaluated at
the noisy ones, as in the paper. Models, MLPs of two tanh layers of 200
units, Adam at learning rate 1e-3 for 2000 steps, full batch (two-body:
10 000 steps of 200 samples, as the HNN paper's code trains that set):

* ``NeuralODE``: ``dx/dt = f(x)`` fitted to the derivatives; RK4 rollouts;
* ``HNN``: ``phc.HNN`` fitted to the derivatives, rolled out by RK4 and by
  the Gonzalez discrete gradient (``HNN + DG``);
* ``pH + DG``: ``PortHamiltonian(MLPHamiltonian, CanonicalJ,
  CholeskyDissipation)``, a learned constant ``R ⪰ 0``, fitted to pairs of
  successive states through the discrete-gradient step equation
  ``(x' - x)/Δt = (J - R) ∇̄H(x, x')`` with Gonzalez's ``∇̄H``; it never
  sees a derivative. On the noisy synthetic sets the states are first
  smoothed by a cubic Savitzky-Golay filter of window 9, and only the
  samples the window is centred on (not the four at either end) make
  pairs.

Metrics: the test loss is the mean squared error of ``dx/dt`` at the
(noisy) test inputs; the energy MSE is the mean of ``(H(x̂_k) - H(x_k))²``
over every test trajectory and sample, with ``x̂`` the model's rollout from
the noise-free initial test state (the measured one for the real pendulum)
over the test trajectory's own time span, one integrator step per sample
interval (four for the two-body set, whose interval is 0.41), and ``H`` the
true energy.

Run ``python -m benchmarks.hamiltonian_table [--seeds N] [--quick]``; it
prints the table and writes it as the section "### HNN table" of
``docs/benchmarks.md`` (``--doc PATH`` to change, ``--doc -`` to skip).
``--json PATH`` saves the raw results after every system; seeds can run in
separate processes (``--first-seed K --seeds 1``, ``--systems ...``) and
``--render A.json B.json`` pools their seeds into the table without
fitting anything (a later file's run of a system and seed replaces an
earlier one's). ``--diagnose pendulum 2 [--all-pairs]`` fits pH + DG on
one noisy system and seed and prints its learned ``R`` and its energy MSE
with and without it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

import phcontrol as phc
from phcontrol import plants

DTYPE = torch.float64
MODELS = ("NeuralODE", "HNN + RK4", "HNN + DG", "pH + DG")
SYSTEMS = ("mass-spring", "pendulum", "real pendulum", "two-body")

#: Energy MSE as published: HNN (Greydanus et al. 2019, as re-measured by
#: Matsubara et al. 2020) and DGNet (Matsubara, Ishikawa and Yaguchi,
#: "Deep Energy-Based Modeling of Discrete-Time Physics", NeurIPS 2020).
PUBLISHED_ENERGY = {
    "mass-spring": {"HNN": 3.84e-4, "DGNet": 6.17e-4},
    "pendulum": {"HNN": 2.49e-2, "DGNet": 1.08e-2},
    "real pendulum": {"HNN": 1.45e-2, "DGNet": 4.92e-4},
    "two-body": {"HNN": 3.88e-5, "DGNet": 8.10e-5},
}
#: Published derivative test loss where ``PROTOCOLS.md`` records it.
PUBLISHED_DERIVATIVE = {"real pendulum": {"HNN": 5.96e-3, "baseline MLP": 2.19e-3}}

HEADING = "### HNN table"
PARENT = "## Hamiltonian learning"


@dataclass
class Task:
    """One system's data, ready for every model."""

    name: str
    n: int
    deriv_x: Tensor  # (N, n) training inputs of the derivative models
    deriv_y: Tensor  # (N, n) their targets
    pair_a: Tensor  # (M, n) training pairs of the discrete-gradient model
    pair_b: Tensor  # (M, n)
    pair_dt: Tensor  # (M, 1)
    test_x: Tensor  # (K, n) test inputs
    test_y: Tensor  # (K, n) test derivatives
    x0: Tensor  # (B, n) rollout starts
    reference: Tensor  # (B, T, n) states the rollouts are compared with
    dt: float  # sample interval of the rollouts
    substeps: int  # integrator steps per interval
    energy: Callable[[Tensor], Tensor]  # true energy, (..., n) -> (...)
    batch_size: int | None  # samples per Adam step (None: all)
    steps: int  # Adam steps


@dataclass
class Sizes:
    """How big the fits are: the full protocol or a smoke test."""

    hidden: tuple[int, ...] = (200, 200)
    steps: int = 2000
    orbit_steps: int = 10000  # the two-body experiment's (HNN paper's code)
    lr: float = 1e-3
    oscillator_trajectories: int = 50
    orbits: int = 1000
    orbit_samples: int = 50
    batch: int = 200
    real_stride: int = 1


QUICK = Sizes(
    hidden=(16,), steps=20, orbit_steps=20, oscillator_trajectories=6, orbits=10,
    orbit_samples=20, batch=64, real_stride=4,
)  # fmt: skip


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _simulate_truth(truth: phc.PortHamiltonian, x0: Tensor, dt: float, steps: int):
    with torch.no_grad():
        x = phc.simulate(truth, x0, dt=dt, steps=steps, method="rk4", substeps=50).x
        f = truth.vector_field(x.reshape(-1, x.shape[-1])).reshape(x.shape)
    return x, f


def _smooth(x: Tensor, window: int = 9, trim: bool = True) -> Tensor:
    """Smooth each trajectory; keep the samples the window is centred on.

    Within half a window of either end the cubic Savitzky-Golay filter
    extrapolates its fit, and its noise there is several times larger;
    pairs made of those samples teach the model a spurious dissipation.
    ``trim=False`` keeps them (the benchmark's earlier pairs).
    """
    from scipy.signal import savgol_filter

    window = min(window, x.shape[1] - (1 - x.shape[1] % 2))
    half = window // 2 if trim else 0
    out = savgol_filter(x.numpy(), window, 3, axis=1)[:, half : x.shape[1] - half]
    return torch.as_tensor(np.ascontiguousarray(out), dtype=x.dtype)


def _pairs(x: Tensor, dt: float) -> tuple[Tensor, Tensor, Tensor]:
    n = x.shape[-1]
    a, b = x[:, :-1].reshape(-1, n), x[:, 1:].reshape(-1, n)
    return a, b, torch.full((a.shape[0], 1), dt, dtype=x.dtype)


def oscillator_task(name: str, seed: int, sizes: Sizes, trim: bool = True) -> Task:
    """Mass-spring or ideal pendulum, noisy, after the HNN paper.

    ``trim=False``: the pH model's pairs include the smoothed end samples.
    """
    if name == "mass-spring":
        # H = q^2 + p^2: mass 1/2, stiffness 2.
        truth = plants.mass_spring_damper(0.5, 2.0, 0.0).double()
        samples, low, high = 30, 0.1, 1.0

        def energy(x: Tensor) -> Tensor:
            return x[..., 0] ** 2 + x[..., 1] ** 2

    else:
        # H = 3 (1 - cos q) + p^2: m l^2 = 1/2, m g l = 3.
        truth = plants.pendulum(mass=0.5, length=1.0, gravity=6.0).double()
        samples, low, high = 45, 1.3, 2.3

        def energy(x: Tensor) -> Tensor:
            return 3.0 * (1.0 - torch.cos(x[..., 0])) + x[..., 1] ** 2

    g = _generator(seed)
    count = sizes.oscillator_trajectories
    angle = 2.0 * math.pi * torch.rand(count, generator=g, dtype=DTYPE)
    radius = low + (high - low) * torch.rand(count, generator=g, dtype=DTYPE)
    start = radius[:, None] * torch.stack([angle.cos(), angle.sin()], -1)
    dt = 3.0 / (samples - 1)
    x, f = _simulate_truth(truth, start, dt, samples - 1)
    noisy = x + 0.1 * torch.randn(x.shape, generator=g, dtype=DTYPE)
    half = count // 2
    train, test = slice(0, half), slice(half, count)
    a, b, pdt = _pairs(_smooth(noisy[train], trim=trim), dt)
    return Task(
        name=name, n=2,
        deriv_x=noisy[train].reshape(-1, 2), deriv_y=f[train].reshape(-1, 2),
        pair_a=a, pair_b=b, pair_dt=pdt,
        test_x=noisy[test].reshape(-1, 2), test_y=f[test].reshape(-1, 2),
        x0=x[test, 0], reference=x[test], dt=dt, substeps=1, energy=energy,
        batch_size=None, steps=sizes.steps,
    )  # fmt: skip


def real_pendulum_task(sizes: Sizes) -> Task:
    """The Schmidt-Lipson log, split and scored as in the HNN paper."""
    data = phc.datasets.load("real_pendulum")
    t = torch.as_tensor(data.log.t, dtype=DTYPE)
    x = torch.as_tensor(data.log.x, dtype=DTYPE)
    cut = len(data.splits["train"].t)  # first test sample
    dt_all = (t[1:] - t[:-1])[:, None]
    fd = (x[1:] - x[:-1]) / dt_all
    train = slice(0, cut, sizes.real_stride)
    coefficient = float(data.metadata["energy_coefficient"])

    def energy(s: Tensor) -> Tensor:
        return coefficient * (1.0 - torch.cos(s[..., 0])) + s[..., 1] ** 2

    test = x[cut:]
    steps = np.diff(data.splits["test"].t)
    if not np.allclose(steps, steps[0]):
        raise ValueError("the real pendulum's test slice is expected to be regular")
    return Task(
        name="real pendulum", n=2,
        deriv_x=x[:cut][train], deriv_y=fd[:cut][train],
        pair_a=x[:cut][train], pair_b=x[1 : cut + 1][train],
        pair_dt=dt_all[:cut][train],
        test_x=x[cut:-1], test_y=fd[cut:],
        x0=test[:1], reference=test[None], dt=float(steps[0]), substeps=1,
        energy=energy, batch_size=None, steps=sizes.steps,
    )  # fmt: skip


def orbit_starts(count: int, g: torch.Generator) -> Tensor:
    """Near-circular two-body orbits about a resting centre of mass."""
    q1 = 0.5 + torch.rand(count, 2, generator=g, dtype=DTYPE)
    r = q1.norm(dim=-1, keepdim=True)
    # Each body circles at radius r, 2r apart: speed 1 / (2 sqrt(r)).
    v1 = torch.stack([-q1[:, 1], q1[:, 0]], -1) / (2.0 * r**1.5)
    v1 = v1 * (1.0 + 0.05 * torch.randn(count, 1, generator=g, dtype=DTYPE))
    return torch.cat([q1, -q1, v1, -v1], dim=-1)


def two_body_task(seed: int, sizes: Sizes) -> Task:
    """Two-body orbits after the HNN paper (``x = (q1, q2, p1, p2)``)."""
    truth = plants.two_body().double()
    g = _generator(seed)
    count, samples = sizes.orbits, sizes.orbit_samples
    dt = 20.0 / (samples - 1)
    x, f = _simulate_truth(truth, orbit_starts(count, g), dt, samples - 1)
    n_test = count // 5
    train, test = slice(n_test, count), slice(0, n_test)
    a, b, pdt = _pairs(x[train], dt)

    def energy(s: Tensor) -> Tensor:
        kinetic = 0.5 * (s[..., 4:] ** 2).sum(-1)
        return kinetic - 1.0 / (s[..., 0:2] - s[..., 2:4]).norm(dim=-1)

    return Task(
        name="two-body", n=8,
        deriv_x=x[train].reshape(-1, 8), deriv_y=f[train].reshape(-1, 8),
        pair_a=a, pair_b=b, pair_dt=pdt,
        test_x=x[test].reshape(-1, 8), test_y=f[test].reshape(-1, 8),
        x0=x[test, 0], reference=x[test], dt=dt, substeps=4, energy=energy,
        batch_size=sizes.batch, steps=sizes.orbit_steps,
    )  # fmt: skip


def make_task(name: str, seed: int, sizes: Sizes) -> Task:
    """Build the data of ``name`` (one of :data:`SYSTEMS`)."""
    if name in ("mass-spring", "pendulum"):
        return oscillator_task(name, seed, sizes)
    if name == "real pendulum":
        return real_pendulum_task(sizes)
    return two_body_task(seed, sizes)


def _adam(
    params: list[torch.nn.Parameter],
    loss: Callable[[Tensor], Tensor],
    n_items: int,
    sizes: Sizes,
    task: Task,
    seed: int,
) -> None:
    opt = torch.optim.Adam(params, lr=sizes.lr)
    g = _generator(seed + 7919)
    batch_size = task.batch_size
    for _ in range(task.steps):
        if batch_size is None or batch_size >= n_items:
            idx = torch.arange(n_items)
        else:
            idx = torch.randint(n_items, (batch_size,), generator=g)
        opt.zero_grad()
        value = loss(idx)
        value.backward()
        opt.step()


def fit_derivatives(model: phc.AbstractModel, task: Task, sizes: Sizes, seed: int):
    """Fit ``dx/dt`` at the training inputs (the HNN paper's loss)."""

    def loss(idx: Tensor) -> Tensor:
        return ((model.vector_field(task.deriv_x[idx]) - task.deriv_y[idx]) ** 2).mean()

    params = [p for p in model.parameters() if p.requires_grad]
    _adam(params, loss, task.deriv_x.shape[0], sizes, task, seed)


def fit_discrete_gradient(
    model: phc.PortHamiltonian, task: Task, sizes: Sizes, seed: int
) -> None:
    """Fit the discrete-gradient step equation to pairs of successive states."""
    H, dH = model.H, model.H.grad

    def loss(idx: Tensor) -> Tensor:
        a, b = task.pair_a[idx], task.pair_b[idx]
        g = phc.gonzalez_gradient(H, dH, a, b)
        flow = model.flow(0.5 * (a + b), g, a.new_zeros(a.shape[0], 0))
        return (((b - a) / task.pair_dt[idx] - flow) ** 2).mean()

    params = [p for p in model.parameters() if p.requires_grad]
    _adam(params, loss, task.pair_a.shape[0], sizes, task, seed)


def _scores(model: phc.AbstractModel, task: Task, method: str) -> tuple[float, float]:
    with torch.no_grad():
        f = model.vector_field(task.test_x)
    loss = float(((f - task.test_y) ** 2).mean())
    steps = task.reference.shape[1] - 1
    with torch.no_grad():
        roll = phc.simulate(
            model, task.x0, dt=task.dt, steps=steps, method=method,
            substeps=task.substeps, strict=True,
        ).x  # fmt: skip
    err = task.energy(roll) - task.energy(task.reference)
    energy = float((err**2).mean()) if bool(torch.isfinite(err).all()) else math.inf
    return loss, energy


def run_system(task: Task, seed: int, sizes: Sizes) -> dict[str, tuple[float, ...]]:
    """Fit the three models on ``task``; return ``{model: (loss, energy, s)}``."""
    out: dict[str, tuple[float, ...]] = {}
    torch.manual_seed(seed)
    node = phc.NeuralODE(task.n, hidden=sizes.hidden).double()
    start = time.perf_counter()
    fit_derivatives(node, task, sizes, seed)
    node.requires_grad_(False)
    out["NeuralODE"] = (*_scores(node, task, "rk4"), time.perf_counter() - start)

    torch.manual_seed(seed)
    hnn = phc.HNN(task.n, hidden=sizes.hidden).double()
    start = time.perf_counter()
    fit_derivatives(hnn, task, sizes, seed)
    fit_s = time.perf_counter() - start
    hnn.requires_grad_(False)
    out["HNN + RK4"] = (*_scores(hnn, task, "rk4"), fit_s)
    out["HNN + DG"] = (*_scores(hnn, task, "gonzalez"), fit_s)

    start = time.perf_counter()
    ph = fit_ph(task, sizes, seed)
    out["pH + DG"] = (*_scores(ph, task, "gonzalez"), time.perf_counter() - start)
    return out


def fit_ph(task: Task, sizes: Sizes, seed: int) -> phc.PortHamiltonian:
    """Build the pH model with learned ``R ⪰ 0`` and fit it through DG steps."""
    torch.manual_seed(seed)
    ph = phc.PortHamiltonian(
        phc.MLPHamiltonian(task.n, hidden=sizes.hidden),
        phc.CanonicalJ(task.n),
        phc.CholeskyDissipation(task.n),
    ).double()
    fit_discrete_gradient(ph, task, sizes, seed)
    return ph.requires_grad_(False)


def diagnose(system: str, seed: int, sizes: Sizes, trim: bool = True) -> str:
    """Fit pH + DG on one noisy system and seed; report its learned ``R``.

    Also the energy MSE of the same trained model rolled out with ``R``
    set to zero, which measures how much of its error the learned
    dissipation causes (the data are lossless).
    """
    task = oscillator_task(system, seed, sizes, trim=trim)
    ph = fit_ph(task, sizes, seed)
    _, energy = _scores(ph, task, "gonzalez")
    R = ph.R_matrix(task.x0[:1])[0]
    with torch.no_grad():
        ph.R.L.zero_()
    _, lossless = _scores(ph, task, "gonzalez")
    rows = " ".join(f"[{r[0]:.2e} {r[1]:.2e}]" for r in R.tolist())
    pairs = "centred samples" if trim else "every sample"
    return (
        f"{system} seed {seed}, pairs from {pairs} ({task.pair_a.shape[0]} "
        f"pairs): energy MSE {energy:.2e}; learned R {rows}; energy MSE of "
        f"the same model with R = 0: {lossless:.2e}"
    )


def _stat(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).all():
        return f"diverged in {int((~np.isfinite(arr)).sum())} of {arr.size}"
    if arr.size == 1:
        return f"{arr[0]:.2e}"
    return f"{arr.mean():.2e} ± {arr.std(ddof=1):.1e}"


def table(results: dict[str, dict[str, list[tuple[float, ...]]]]) -> str:
    """Markdown rows: one per system and model, mean ± std over seeds."""
    lines = [
        "| system | model | test loss dx/dt | energy MSE | published HNN | "
        "published DGNet | fit (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for system, rows in results.items():
        pub = PUBLISHED_ENERGY[system]
        for i, model in enumerate(MODELS):
            runs = rows[model]
            loss = _stat([r[0] for r in runs])
            energy = _stat([r[1] for r in runs])
            fit = f"{np.mean([r[2] for r in runs]):.0f}"
            hnn, dg = (
                (f"{pub['HNN']:.2e}", f"{pub['DGNet']:.2e}") if i == 0 else ("", "")
            )
            lines.append(
                f"| {system if i == 0 else ''} | {model} | {loss} | {energy} | {hnn} "
                f"| {dg} | {fit} |"
            )
    return "\n".join(lines)


def replace_section(doc: str, body: str) -> str:
    """Put ``body`` under :data:`HEADING` in ``doc``, replacing what was there.

    Without that heading, a ``## Hamiltonian learning`` section holding it
    is appended.
    """
    section = f"{HEADING}\n\n{body.strip()}\n"
    match = re.search(rf"^{re.escape(HEADING)}[ \t]*$", doc, flags=re.M)
    if match is None:
        if not re.search(rf"^{re.escape(PARENT)}[ \t]*$", doc, flags=re.M):
            return doc.rstrip("\n") + f"\n\n{PARENT}\n\n{section}"
        return doc.rstrip("\n") + f"\n\n{section}"
    rest = doc[match.end() :]
    nxt = re.search(r"^#{1,3} ", rest, flags=re.M)
    tail = "" if nxt is None else "\n" + rest[nxt.start() :]
    return doc[: match.start()] + section + tail


def measure(
    seeds: range | int,
    sizes: Sizes,
    systems: tuple[str, ...] = SYSTEMS,
    log: Callable[[str], object] = print,
    save: Callable[[dict], object] | None = None,
) -> dict[str, dict[str, list[list[float]]]]:
    """Run every system for ``seeds`` seeds; return the per-seed results.

    Seeds run in the outer loop, so an interrupted run leaves whole seeds;
    ``save(results)`` is called after every system.
    """
    results: dict[str, dict[str, list[list[float]]]] = {
        system: {m: [] for m in MODELS} for system in systems
    }
    for seed in range(seeds) if isinstance(seeds, int) else seeds:
        for system in systems:
            task = make_task(system, seed, sizes)
            for model, row in run_system(task, seed, sizes).items():
                results[system][model].append(list(row))
                log(f"{system} seed {seed} {model}: loss {row[0]:.3e} "
                    f"energy {row[1]:.3e} fit {row[2]:.0f} s")  # fmt: skip
            if save is not None:
                save(results)
    return results


def render(results: dict, command: str, wall: float) -> str:
    """The markdown body of the section: command, table, seeds, wall time."""
    seeds = min(len(runs) for rows in results.values() for runs in rows.values())
    results = {
        system: {m: runs[:seeds] for m, runs in rows.items()}
        for system, rows in results.items()
    }
    return (
        f"`{command.strip()}`\n\n{table(results)}\n\n"
        f"{seeds} seed(s); wall time {wall / 60:.0f} min.\n"
    )


def _saved_seeds(record: dict) -> list[int]:
    """The seeds of a saved run, from its record or else its command line."""
    if "seeds" in record:
        return list(record["seeds"])
    words = record["command"].split()

    def option(name: str, default: int) -> int:
        return int(words[words.index(name) + 1]) if name in words else default

    first = option("--first-seed", 0)
    return list(range(first, first + option("--seeds", 3)))


def pool(saved: list[dict]) -> dict:
    """Pool saved runs by system, model and seed, in seed order.

    A later run of the same system and seed replaces an earlier one, so a
    rerun of some systems can be pooled with the rest of an older run.
    """
    runs: dict[str, dict[str, dict[int, list]]] = {}
    for record in saved:
        seeds = _saved_seeds(record)
        for system, rows in record["results"].items():
            for model, values in rows.items():
                by_seed = runs.setdefault(system, {}).setdefault(model, {})
                by_seed.update(zip(seeds, values, strict=False))
    order = [s for s in SYSTEMS if s in runs]
    return {
        system: {m: [v[k] for k in sorted(v)] for m, v in runs[system].items()}
        for system in order
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke test")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (1 quick)")
    parser.add_argument("--doc", default=None, help="markdown file to update; - none")
    parser.add_argument("--json", default=None, help="also save raw results here")
    parser.add_argument("--first-seed", type=int, default=0, help="default 0")
    parser.add_argument(
        "--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS), help="all"
    )
    parser.add_argument(
        "--diagnose",
        nargs=2,
        metavar=("SYSTEM", "SEED"),
        help="fit pH + DG on mass-spring or pendulum once; print its learned R",
    )
    parser.add_argument(
        "--all-pairs",
        action="store_true",
        help="with --diagnose: pairs from every smoothed sample, the ends too",
    )
    parser.add_argument(
        "--render",
        nargs="+",
        default=None,
        help="write the table from --json files (their seeds pooled), no fits",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = QUICK if args.quick else Sizes()
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if seeds < 1:
        raise SystemExit(f"--seeds must be a positive integer; found {seeds}")
    doc = args.doc
    if doc is None:
        doc = "-" if args.quick else "docs/benchmarks.md"
    if args.diagnose is not None:
        system, seed = args.diagnose
        if system not in ("mass-spring", "pendulum") or not seed.isdigit():
            raise SystemExit(
                f"--diagnose {system} {seed}: give mass-spring or pendulum and "
                "a seed (a non-negative integer), e.g. --diagnose pendulum 2"
            )
        print(diagnose(system, int(seed), sizes, trim=not args.all_pairs))
        return
    if args.render is not None:
        saved = [json.loads(Path(p).read_text()) for p in args.render]
        pooled = pool(saved)
        commands = "`, `".join(s["command"].strip() for s in saved)
        wall = max(s["wall_s"] for s in saved)
        body = render(pooled, commands, wall)
    else:
        command = "python -m benchmarks.hamiltonian_table " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        start = time.perf_counter()

        def save(results: dict) -> None:
            if args.json is not None:
                wall = time.perf_counter() - start
                record = {
                    "command": command,
                    "wall_s": wall,
                    "seeds": list(range(args.first_seed, args.first_seed + seeds)),
                    "results": results,
                }
                Path(args.json).write_text(json.dumps(record, indent=1))

        first = args.first_seed
        results = measure(
            range(first, first + seeds), sizes, tuple(args.systems),
            log=lambda s: print(s, file=sys.stderr, flush=True), save=save,
        )  # fmt: skip
        body = render(results, command, time.perf_counter() - start)
    print(body)
    if doc != "-":
        path = Path(doc)
        old = path.read_text() if path.exists() else ""
        path.write_text(replace_section(old, body))


if __name__ == "__main__":
    main()
