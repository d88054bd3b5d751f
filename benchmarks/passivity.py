"""Passivity checks: phcontrol against python-control's ``ispassive``.

Random passive and non-passive systems of n states (n = 4 ... 200) and a
passive system whose A is scaled by 10^k (k = 0 ... 12). Each phcontrol time
is the median of ``--repeats`` runs. The LMI columns time the SDP alone (the
fallback when no shortcut applies) with each solver, up to ``--lmi-up-to``
states. python-control runs in a subprocess with a time limit (it needs
cvxopt), below 100 states. Prints a markdown table.

    python -m benchmarks.passivity [--quick] [--sizes 50 100 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# One BLAS thread: on two shared cores a second OpenBLAS thread spins against
# other work and made a 0.1 s check take 3.5 s. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import phcontrol as phc  # noqa: E402
from phcontrol.passivity._check import RECHECK_TOL  # noqa: E402
from phcontrol.passivity._kyp import solve_lmi  # noqa: E402
from phcontrol.passivity._lti import balance, make_lti, recheck  # noqa: E402


def random_passive(n: int, m: int, seed: int, feedthrough: bool) -> tuple:
    """A random linear pH system (passive); D = S >= 0 when feedthrough."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n))
    L = rng.normal(size=(n, n)) / np.sqrt(n)
    Y = rng.normal(size=(n, n)) / np.sqrt(n)
    Q = Y @ Y.T + 0.5 * np.eye(n)
    G = rng.normal(size=(n, m))
    A = (X - X.T - L @ L.T - 0.1 * np.eye(n)) @ Q
    D = np.eye(m) if feedthrough else np.zeros((m, m))
    return A, G, G.T @ Q, D


def non_passive(n: int, m: int, seed: int, feedthrough: bool) -> tuple:
    A, B, C, D = random_passive(n, m, seed, feedthrough)
    return A, B, -C, D


def ispassive_subprocess(sysd: tuple, timeout: float) -> tuple[str, float]:
    """python-control's verdict and time, or 'timeout' / 'error: ...'."""
    payload = json.dumps([np.asarray(M).tolist() for M in sysd])
    code = (
        "import json,sys,time,control\n"
        "A,B,C,D=json.loads(sys.stdin.read())\n"
        "s=control.ss(A,B,C,D); t=time.perf_counter()\n"
        "r=control.ispassive(s); print(json.dumps([bool(r), time.perf_counter()-t]))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=payload,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"timeout > {timeout:g} s", float("nan")
    if out.returncode:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"error: {last[:60]}", float("nan")
    ok, seconds = json.loads(out.stdout)
    return ("passive" if ok else "not passive"), seconds


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def median_time(repeats: int, fn, *args, **kwargs):
    """The last result and the median, min and max time of ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        out, t = timed(fn, *args, **kwargs)
        times.append(t)
    return out, statistics.median(times), min(times), max(times)


def lmi_cell(bal, solver: str, seconds: float) -> str:
    sol = solve_lmi(bal, solver=solver, max_seconds=seconds)
    ok = sol.P is not None and recheck(bal, sol.P, RECHECK_TOL).ok
    return f"{sol.seconds:.2f} ({sol.solver}, {sol.status}{'' if ok else ', no P'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n <= 50, fewer k")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="state counts (default 4 20 50 100 200)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per time")
    parser.add_argument(
        "--lmi-up-to", type=int, default=50, help="time the SDP alone up to this n"
    )
    parser.add_argument("--lmi-seconds", type=float, default=300.0)
    parser.add_argument("--pc-timeout", type=float, default=60.0)
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip the A * 10^k family"
    )
    args = parser.parse_args()
    sizes = args.sizes or ([4, 20, 50] if args.quick else [4, 20, 50, 100, 200])
    phc.check_passivity(random_passive(4, 2, 0, False))  # imports, first calls
    print("## Random systems (m = 2 ports)\n")
    print(
        "| n | D | truth | phcontrol | method | median time (s) | min-max (s) "
        "| LMI Clarabel (s) | LMI SCS (s) | python-control | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for feed in (True, False):
            for truth, make in (
                ("passive", random_passive),
                ("not passive", non_passive),
            ):
                sysd = make(n, 2, n, feed)
                res, t, lo, hi = median_time(args.repeats, phc.check_passivity, sysd)
                lmi_c = lmi_s = "-"
                if truth == "passive" and n <= args.lmi_up_to:
                    bal, _ = balance(make_lti(*sysd))
                    lmi_c = lmi_cell(bal, "CLARABEL", args.lmi_seconds)
                    lmi_s = lmi_cell(bal, "SCS", args.lmi_seconds)
                pc, pct = ("skipped (n >= 100)", float("nan"))
                if n < 100:
                    pc, pct = ispassive_subprocess(sysd, args.pc_timeout)
                print(
                    f"| {n} | {'I' if feed else '0'} | {truth} | "
                    f"{res.verdict.replace('_', ' ')} | {res.method} | {t:.3f} | "
                    f"{lo:.3f}-{hi:.3f} | {lmi_c} | {lmi_s} | {pc} | {pct:.3f} |",
                    flush=True,
                )
    if args.no_scaling:
        return
    print("\n## Scaling family: A * 10^k of a passive 2-state system, D = 0\n")
    print("| k | phcontrol | time (s) | python-control |")
    print("|---|---|---|---|")
    A0 = np.array([[-1.0, 2.0], [-2.0, -3.0]])
    B = np.array([[1.0], [0.5]])
    for k in range(0, 13, 3 if args.quick else 1):
        sysd = (A0 * 10.0**k, B, B.T, np.zeros((1, 1)))
        res, t = timed(phc.check_passivity, sysd)
        pc, _ = ispassive_subprocess(sysd, args.pc_timeout)
        print(f"| {k} | {res.verdict.replace('_', ' ')} | {t:.3f} | {pc} |")


if __name__ == "__main__":
    main()
