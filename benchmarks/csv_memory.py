"""Peak memory of reading a large CSV log with :func:`phcontrol.load_log`.

Writes a CSV of ``--rows`` rows and eight numeric columns (a time column and
seven Gaussian ones, six significant digits), then loads three of them
(time, one input, one output) in a fresh process and reports the growth of
the peak resident set size during the load. Run
``python -m benchmarks.csv_memory [--rows N]``; it prints a markdown table
headed by the command line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_LOAD = """
import resource, sys
import torch
torch.set_num_threads(1)
from phcontrol.data import load_log
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
log = load_log(sys.argv[1], time="t", inputs=["u"], outputs=["y"])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(log), (after - before) / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        with path.open("w") as fh:
            fh.write("t,u,y,a,b,c,d,e\n")
            t = np.arange(args.rows) * 1e-3
            table = np.column_stack([t, rng.normal(size=(args.rows, 7))])
            np.savetxt(fh, table, delimiter=",", fmt="%.6g")
        size = path.stat().st_size / 2**20
        out = subprocess.run(
            [sys.executable, "-c", _LOAD, str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    print(f"`python -m benchmarks.csv_memory --rows {args.rows}`\n")
    print("| rows | file (MiB) | columns kept | peak RSS growth (MiB) |")
    print("| --- | --- | --- | --- |")
    print(f"| {int(out[0])} | {size:.1f} | 3 of 8 | {float(out[1]):.0f} |")


if __name__ == "__main__":
    main()
