"""Identification on the three real benchmarks, beside the published figures.

Each dataset is fitted on its official split and scored with its metric
(``phcontrol/datasets/*.md``, ``PROTOCOLS.md``):

- ``silverbox``: the default mechanical model, ``phcontrol.identify`` with
  its defaults, RMSE in mV on the three test sets, one fit per seed;
- ``emps``: the friction model (``benchmarks.identification_emps``), RMSE
  in mm of ``qm`` on the pulses test set;
- ``tanks``: the cascaded-tanks model (``benchmarks.identification_tanks``),
  RMSE in V.

Every seed is shown, then the median and the worst seed, with the wall time
of each fit. Run

    python -m benchmarks.identification --dataset all [--write]

``--dataset`` takes ``silverbox``, ``emps``, ``tanks`` or ``all``;
``--seeds`` overrides the seeds (default 3 for Silverbox and EMPS, 10 for
the tanks). ``--write`` puts the tables into ``docs/benchmarks.md``
between the markers ``<!-- identification:begin -->`` and
``<!-- identification:end -->``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
BEGIN, END = "<!-- identification:begin -->", "<!-- identification:end -->"

PUBLISHED = {
    "emps": "dynoNet 2.64 mm (the issue's anchor)",
    "tanks": "stable pHNN: median 0.32 V, worst seed 0.45 V; grey-box 0.19 V",
}


def run_silverbox(seeds: list[int]) -> str:
    """Fit Silverbox with the defaults once per seed; return a markdown table."""
    import phcontrol as phc

    torch.set_num_threads(1)
    data = phc.datasets.load("silverbox")
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        fit = phc.identify(data, seed=seed)
        rows.append((seed, fit.report.metrics, time.perf_counter() - start))
    names = data.test_sets
    head = " | ".join(f"{n} (mV)" for n in names)
    lines = [
        f"| seed | {head} | wall (s) |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]
    for seed, metrics, wall in rows:
        cells = " | ".join(f"{metrics[n]['rmse']:.3f}" for n in names)
        lines.append(f"| {seed} | {cells} | {wall:.0f} |")
    for label, pick in (("median", statistics.median), ("worst", max)):
        cells = " | ".join(
            f"{pick([m[n]['rmse'] for _, m, _ in rows]):.3f}" for n in names
        )
        lines.append(f"| {label} | {cells} | |")
    published = "; ".join(
        f"{n}: " + ", ".join(f"{k} {v}" for k, v in data.published[n].items())
        for n in names
    )
    return "\n".join(lines) + f"\n\nPublished (mV): {published}."


def run_emps(seeds: list[int]) -> str:
    from . import identification_emps as emps

    rows = emps.run_emps(seeds, "runs/emps", jobs=min(2, len(seeds)))
    return emps.table(rows) + f"\n\nPublished: {PUBLISHED['emps']}."


def run_tanks(seeds: list[int]) -> str:
    from . import identification_tanks as tanks

    return tanks.table(tanks.run_tanks(seeds)) + f"\n\nPublished: {PUBLISHED['tanks']}."


RUNNERS = {
    "silverbox": (run_silverbox, 3),
    "emps": (run_emps, 3),
    "tanks": (run_tanks, 10),
}


def write_docs(text: str) -> None:
    """Replace the block between the markers in ``docs/benchmarks.md``."""
    doc = DOCS.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(
            f"{DOCS}: the markers {BEGIN} and {END} are missing; add them where "
            "the tables belong"
        )
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    tmp = DOCS.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    tmp.replace(DOCS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", choices=(*RUNNERS, "all"), default="all", help="default: all"
    )
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    names = list(RUNNERS) if args.dataset == "all" else [args.dataset]
    command = "python -m benchmarks.identification " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    parts = [f"Command: `{command.strip()}`"]
    for name in names:
        runner, n_seeds = RUNNERS[name]
        seeds = args.seeds if args.seeds is not None else list(range(n_seeds))
        parts.append(f"### {name}\n\n{runner(seeds)}")
    text = "\n\n".join(parts)
    print(text)
    if args.write:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
