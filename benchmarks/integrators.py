"""Benchmark the integrator family: exactness, cost, speed against scipy.

Rows (full mode; ``--quick`` runs smaller instances of the same):

* power balance: 256 trajectories x 1e4 steps (1e5 with ``--device cuda``)
  of a random pH model in float64 (tanh MLP energy 2x64, n = 4, random skew
  ``J``, random ``R = L Lᵀ``, two random inputs held per step), Gonzalez
  steps; the residual of each step relative to the largest term it balances,
  ``|dH + dissipated - supplied| / max(|H_k|, |H_k+1|, |supplied|, |dissipated|)``;
* cost of exactness: time per step of ``gonzalez`` over ``rk4``, same model
  and batch (4,096 states), best of three timed runs each;
* against scipy: batched ``gonzalez`` against a loop of ``solve_ivp``
  (DOP853, ``rtol = atol = 1e-12``) over the same 4,096 initial states and the
  same output grid, for a lossless model, so that the energy error of both
  is measured the same way, ``max |H(x_k) - H(x_0)|`` with the same float64
  ``H``. Two right-hand sides for scipy: the model's own torch vector field
  (what a phcontrol user passes) and a hand-written numpy one (scipy's best
  case); a loop that would take too long is timed on a subset and
  extrapolated linearly, and the row says so;
* Verlet on the pendulum: 1e6 steps at ``dt = 0.1`` from three amplitudes;
  the energy error over the last 10% against the first 1%;
* with ``--device cuda``: Gonzalez trajectory-steps per second at batch 1e5.

Run ``python -m benchmarks.integrators [--device cuda] [--quick]``; it prints
a markdown table headed by the command line, and progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import phcontrol as phc
from phcontrol import plants

DT = 0.05


@dataclass(frozen=True)
class Row:
    """One line of the table; ``met`` is None where there is no target."""

    benchmark: str
    measure: str
    result: str
    target: str
    met: bool | None
    value: float

    def markdown(self) -> str:
        verdict = {True: "yes", False: "**no**", None: "-"}[self.met]
        cells = (self.benchmark, self.measure, self.result, self.target, verdict)
        return "| " + " | ".join(cells) + " |"


@dataclass(frozen=True)
class Sizes:
    power_batch: int = 256
    power_steps: int = 10_000
    power_steps_cuda: int = 100_000
    cost_batch: int = 4096
    cost_steps: int = 20
    cost_repeats: int = 3
    scipy_batch: int = 4096
    scipy_steps: int = 200
    scipy_loop_numpy: int = 4096
    scipy_loop_torch: int = 64
    verlet_steps: int = 1_000_000
    verlet_chunk: int = 100_000
    cuda_batch: int = 100_000
    cuda_steps: int = 20


FULL = Sizes()
QUICK = Sizes(
    power_batch=32,
    power_steps=1000,
    power_steps_cuda=1000,
    cost_steps=5,
    cost_repeats=1,
    scipy_batch=256,
    scipy_loop_numpy=32,
    scipy_loop_torch=4,
    verlet_steps=100_000,
    verlet_chunk=100_000,
)


def random_model(lossy: bool = True, n_inputs: int = 2) -> phc.PortHamiltonian:
    """The random float64 pH model: MLP energy 2x64, n = 4, skew ``J``.

    ``R`` is drawn after ``H`` and ``J``, so the lossless variant has the
    same energy and interconnection.
    """
    torch.manual_seed(0)
    H = phc.MLPHamiltonian(4, hidden=(64, 64))
    J = phc.SkewSymmetric(4)
    R = phc.CholeskyDissipation(4, init_scale=0.3)
    G = phc.InputMatrix(4, n_inputs) if n_inputs else None
    model = phc.PortHamiltonian(H, J, R if lossy else None, G)
    return model.double().requires_grad_(False)


def power_balance(batch: int, steps: int, device: str) -> Row:
    model = random_model().to(device)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(batch, 4, generator=gen, dtype=torch.float64).to(device)
    u = torch.randn(batch, steps, 2, generator=gen, dtype=torch.float64).to(device)
    traj = phc.simulate(model, x0, u, dt=DT)
    assert traj.residual is not None and traj.energy is not None
    assert traj.supplied is not None and traj.dissipated is not None
    terms = torch.stack(
        [
            traj.energy[:, :-1].abs(),
            traj.energy[:, 1:].abs(),
            traj.supplied.abs(),
            traj.dissipated.abs(),
        ]
    )
    rel = float((traj.residual.abs() / terms.amax(0)).max())
    absolute = float(traj.residual.abs().max())
    failed = int((~traj.converged).sum())
    return Row(
        f"power balance, {batch} traj x {steps} steps, {device}",
        "max relative residual per step (absolute; rows not converged)",
        f"{rel:.2e} ({absolute:.1e}; {failed})",
        "<= 1e-12",
        rel <= 1e-12 and failed == 0,
        rel,
    )


def _time_per_step(model, x0, steps: int, method: str, repeats: int) -> float:
    phc.simulate(model, x0, dt=DT, steps=2, method=method)  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        phc.simulate(model, x0, dt=DT, steps=steps, method=method)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def cost_of_exactness(batch: int, steps: int, repeats: int) -> Row:
    model = random_model(n_inputs=0)
    x0 = torch.randn(
        batch, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    rk4 = _time_per_step(model, x0, steps, "rk4", repeats)
    gonzalez = _time_per_step(model, x0, steps, "gonzalez", repeats)
    ratio = gonzalez / rk4
    return Row(
        f"cost of exactness, {batch} states, n=4, MLP 2x64, CPU, "
        f"best of {repeats} x {steps} steps",
        "gonzalez / rk4 time per step",
        f"{ratio:.2f}x ({gonzalez * 1e3:.0f} ms vs {rk4 * 1e3:.0f} ms)",
        "<= 2x",
        ratio <= 2.0,
        ratio,
    )


def _pendulum_problem():
    model = plants.pendulum().double().requires_grad_(False)
    gen = torch.Generator().manual_seed(2)

    def states(batch: int) -> torch.Tensor:
        return torch.rand(batch, 2, generator=gen, dtype=torch.float64) * 2.0 - 1.0

    k = float(model.H.potentials[0].k)  # m g l, as the model holds it

    def f_numpy(t: float, x: np.ndarray) -> np.ndarray:
        return np.array([x[1], -k * np.sin(x[0])])

    name = "pendulum (g = 9.81, period about 2 s, so dt = 0.05 is 40 steps a period)"
    return name, model, states, f_numpy


def _mlp_problem():
    model = random_model(lossy=False, n_inputs=0)
    gen = torch.Generator().manual_seed(3)

    def states(batch: int) -> torch.Tensor:
        return torch.randn(batch, 4, generator=gen, dtype=torch.float64)

    net = model.H.net
    Ws = [layer.weight.numpy() for layer in net.layers]
    bs = [layer.bias.numpy() for layer in net.layers]
    w_out = net.out.weight.numpy()[0]
    Q = model.H._Q(torch.float64).numpy()
    J = model.J_matrix(torch.zeros(1, 4, dtype=torch.float64))[0].numpy()

    def f_numpy(t: float, x: np.ndarray) -> np.ndarray:
        acts, a = [], x
        for W, b in zip(Ws, bs, strict=True):
            a = np.tanh(W @ a + b)
            acts.append(a)
        g = w_out
        for W, a in zip(reversed(Ws), reversed(acts), strict=True):
            g = (g * (1.0 - a * a)) @ W
        return J @ (g + Q @ x)

    name = "the cost row's MLP energy and J, lossless (R = 0)"
    return name, model, states, f_numpy


PROBLEMS = {"pendulum": _pendulum_problem, "mlp": _mlp_problem}


def _check_rhs(model, f_numpy: Callable, x: torch.Tensor) -> None:
    ref = model.vector_field(x).numpy()
    ours = np.stack([f_numpy(0.0, xi) for xi in x.numpy()])
    gap = float(np.abs(ours - ref).max() / (1.0 + np.abs(ref).max()))
    if gap > 1e-13:
        raise RuntimeError(f"numpy right-hand side differs from the model by {gap}")


def _scipy_loop(model, f, x0: torch.Tensor, steps: int, count: int):
    """Loop ``solve_ivp`` over the first ``count`` states: seconds, states."""
    from scipy.integrate import solve_ivp

    t_eval = DT * np.arange(steps + 1)
    out = []
    start = time.perf_counter()
    for i in range(count):
        sol = solve_ivp(
            f, (0.0, DT * steps), x0[i].numpy(), method="DOP853", rtol=1e-12,
            atol=1e-12, t_eval=t_eval,
        )  # fmt: skip
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed on trajectory {i}: {sol.message}")
        out.append(sol.y.T)
    seconds = time.perf_counter() - start
    return seconds, torch.as_tensor(np.stack(out))


def _energy_error(model, X: torch.Tensor) -> float:
    H = model.energy(X.reshape(-1, X.shape[-1])).reshape(X.shape[:2])
    return float((H - H[:, :1]).abs().max())


def against_scipy(
    problem: str, batch: int, steps: int, loop_numpy: int, loop_torch: int
) -> list[Row]:
    name, model, states, f_numpy = PROBLEMS[problem]()
    x0 = states(batch)
    _check_rhs(model, f_numpy, x0[:16])

    def f_torch(t: float, x: np.ndarray) -> np.ndarray:
        return model.vector_field(torch.as_tensor(x).reshape(1, -1))[0].numpy()

    start = time.perf_counter()
    traj = phc.simulate(model, x0, dt=DT, steps=steps)
    t_ours = time.perf_counter() - start
    err_ours = _energy_error(model, traj.x)
    rows = []
    for rhs, f, count in (
        ("numpy", f_numpy, loop_numpy),
        ("torch", f_torch, loop_torch),
    ):
        count = min(count, batch)
        seconds, X = _scipy_loop(model, f, x0, steps, count)
        t_scipy = seconds * batch / count
        err_scipy = _energy_error(model, X)
        gap = float((X - traj.x[:count]).abs().max())
        speedup = t_scipy / t_ours
        looped = (
            f"all {batch} looped"
            if count == batch
            else f"loop timed on {count}, extrapolated x{batch / count:.0f}"
        )
        rows.append(
            Row(
                f"batched gonzalez vs solve_ivp (DOP853, rtol=atol=1e-12) loop, "
                f"{rhs} right-hand side; {name}; {batch} traj x {steps} steps, "
                f"dt={DT} ({looped})",
                "speed-up (s ours / s scipy); max energy error ours / scipy; "
                "max state gap",
                f"{speedup:.3g}x ({t_ours:.1f} s / {t_scipy:.0f} s); "
                f"{err_ours:.1e} / {err_scipy:.1e}; {gap:.1e}",
                ">= 100x at <= error",
                speedup >= 100.0 and err_ours <= err_scipy,
                speedup,
            )
        )
    return rows


def newton_work(batch: int, steps: int) -> Row:
    """Count the implicit residual evaluations of each Gonzalez step.

    The pendulum of the scipy row; every call of the residual counts, the
    Jacobian's included. Also the largest scaled error of Newton's start.
    """
    from phcontrol.integrators import _base

    _, model, states, _ = _pendulum_problem()
    x0 = states(batch)
    counts: list[int] = []
    start_errors: list[float] = []
    plain = _base._NewtonSolver.solve

    def counting(self, residual, z0):
        calls = 0

        def counted(z):
            nonlocal calls
            calls += 1
            F = residual(z)
            if calls == 1:
                start_errors.append(float(_base._scaled_error(F, z).max()))
            return F

        out = plain(self, counted, z0)
        counts.append(calls)
        return out

    _base._NewtonSolver.solve = counting
    try:
        phc.simulate(model, x0, dt=DT, steps=steps)
    finally:
        _base._NewtonSolver.solve = plain
    mean = sum(counts) / steps
    spread = ", ".join(f"{k}: {counts.count(k)}" for k in sorted(set(counts)))
    return Row(
        f"implicit residual evaluations per gonzalez step; pendulum of the "
        f"scipy rows, {batch} traj x {steps} steps, dt={DT}",
        "mean per step (solves with k evaluations: count); largest scaled "
        "error of the extrapolated start",
        f"{mean:.2f} ({spread}); {max(start_errors):.1e}",
        "-",
        None,
        mean,
    )


def verlet_bounded(steps: int, chunk: int) -> Row:
    """Step the pendulum ``steps`` times in chunks; errors of each chunk."""
    model = plants.pendulum().double().requires_grad_(False)
    q0 = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    x = torch.stack([q0, torch.zeros_like(q0)], dim=-1)
    H0 = model.energy(x)
    errors = []  # (batch, steps) of |H(x_k) - H(x_0)|, in chunks
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        traj = phc.simulate(model, x, dt=0.1, steps=n, method="verlet")
        assert traj.energy is not None
        errors.append((traj.energy[:, 1:] - H0[:, None]).abs())
        x = traj.x[:, -1]
        done += n
    err = torch.cat(errors, dim=1)
    early = err[:, : steps // 100].amax(1)
    late = err[:, -(steps // 10) :].amax(1)
    ratio = float((late / early).max())
    cells = ", ".join(
        f"{q:.1f}: {e:.3e} / {v:.3e}"
        for q, e, v in zip(q0.tolist(), early.tolist(), late.tolist(), strict=True)
    )
    return Row(
        f"verlet, pendulum, dt=0.1, {steps} steps, from q0 = 0.5, 1, 2 rad at rest",
        "max energy error, first 1% / last 10%, per q0",
        f"{cells} (largest ratio {ratio:.3f})",
        "bounded: last 10% <= 1.05 x first 1%",
        ratio <= 1.05,
        ratio,
    )


def cuda_speed(batch: int, steps: int) -> Row:
    model = random_model(n_inputs=0).to("cuda")
    x0 = torch.randn(batch, 4, dtype=torch.float64, device="cuda")
    phc.simulate(model, x0, dt=DT, steps=2)
    torch.cuda.synchronize()
    start = time.perf_counter()
    phc.simulate(model, x0, dt=DT, steps=steps)
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    return Row(
        f"gonzalez on CUDA, batch {batch}, n=4, MLP 2x64, float64",
        "trajectory-steps/s (steps/s: divide by the batch)",
        f"{rate:.3g} ({rate / batch:.3g} steps/s)",
        "-",
        None,
        rate,
    )


def _stage(label: str, fn: Callable[[], Row | list[Row]]) -> list[Row]:
    print(f"{label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    out = fn()
    print(f"{label}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out if isinstance(out, list) else [out]


def run(device: str, sizes: Sizes) -> list[Row]:
    """Measure every row at ``sizes``; ``device`` is "cpu" or "cuda"."""
    s = sizes
    power_steps = s.power_steps_cuda if device == "cuda" else s.power_steps
    rows = _stage(
        "power balance", lambda: power_balance(s.power_batch, power_steps, device)
    )
    rows += _stage(
        "cost of exactness",
        lambda: cost_of_exactness(s.cost_batch, s.cost_steps, s.cost_repeats),
    )
    for problem in PROBLEMS:
        rows += _stage(
            f"scipy, {problem}",
            lambda p=problem: against_scipy(
                p, s.scipy_batch, s.scipy_steps, s.scipy_loop_numpy, s.scipy_loop_torch
            ),
        )
    rows += _stage("newton work", lambda: newton_work(s.scipy_batch, s.scipy_steps))
    rows += _stage("verlet", lambda: verlet_bounded(s.verlet_steps, s.verlet_chunk))
    if device == "cuda":
        rows += _stage("cuda", lambda: cuda_speed(s.cuda_batch, s.cuda_steps))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "--device cuda: torch finds no CUDA device here; run on a GPU machine "
            "or drop --device"
        )
    torch.set_num_threads(args.threads)
    rows = run(args.device, QUICK if args.quick else FULL)
    words = sys.argv[1:] if argv is None else argv
    print("`" + " ".join(["python -m benchmarks.integrators", *words]) + "`\n")
    print("| benchmark | measure | result | target | met |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r.markdown())


if __name__ == "__main__":
    main()
