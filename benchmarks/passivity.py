"""Passivity checks: phcontrol against python-control's ``ispassive``.

Random passive and non-passive systems of n states (n = 4 ... 200) and a
passive system whose A is scaled by 10^k (k = 0 ... 12). python-control runs
in a subprocess with a time limit (it needs cvxopt). Prints a markdown table.

    python -m benchmarks.passivity [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

import phcontrol as phc
from phcontrol.passivity._kyp import solve_lmi
from phcontrol.passivity._lti import balance, make_lti


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n <= 50, fewer k")
    parser.add_argument("--pc-timeout", type=float, default=60.0)
    args = parser.parse_args()
    sizes = [4, 20, 50] if args.quick else [4, 20, 50, 100, 200]
    print("## Random systems (m = 2 ports)\n")
    print(
        "| n | D | truth | phcontrol | method | time (s) | LMI Clarabel (s) "
        "| LMI SCS (s) | python-control | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for feed in (True, False):
            for truth, make in (
                ("passive", random_passive),
                ("not passive", non_passive),
            ):
                sysd = make(n, 2, n, feed)
                res, t = timed(phc.check_passivity, sysd)
                lmi_c = lmi_s = "-"
                if truth == "passive":
                    bal, _ = balance(make_lti(*sysd))
                    if n <= 50:
                        sol, _ = timed(solve_lmi, bal, solver="CLARABEL")
                        lmi_c = f"{sol.seconds:.2f} ({sol.status})"
                    if n <= 100:
                        sol, _ = timed(solve_lmi, bal, solver="SCS", max_seconds=120)
                        lmi_s = f"{sol.seconds:.2f} ({sol.status})"
                    else:
                        lmi_s = "skipped (minutes)"
                pc, pct = ("skipped (n >= 100)", float("nan"))
                if n < 100:
                    pc, pct = ispassive_subprocess(sysd, args.pc_timeout)
                print(
                    f"| {n} | {'I' if feed else '0'} | {truth} | "
                    f"{res.verdict.replace('_', ' ')} | {res.method} | {t:.3f} | "
                    f"{lmi_c} | {lmi_s} | {pc} | {pct:.3f} |"
                )
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
