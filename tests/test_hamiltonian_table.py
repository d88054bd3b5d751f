"""The HNN-table benchmark: its data follow the protocol, its smoke run works."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks import hamiltonian_table as bench


def test_oscillator_data_follow_the_protocol() -> None:
    sizes = bench.Sizes(oscillator_trajectories=8)
    spring = bench.make_task("mass-spring", 0, sizes)
    # Clean test trajectories start on H = r^2 with r in [0.1, 1] and keep it.
    H = spring.energy(spring.reference)
    assert bool((H[:, :1] >= 0.01).all() and (H[:, :1] <= 1.0).all())
    assert float((H - H[:, :1]).abs().max()) < 1e-9
    # Targets are the exact field (2p, -2q) at the clean states, so the
    # noisy inputs sit about 0.1 away from where 'targets' say they are.
    assert spring.reference.shape == (4, 30, 2)
    noise = spring.test_x - spring.reference.reshape(-1, 2)
    assert 0.05 < float(noise.std()) < 0.15
    clean = spring.reference.reshape(-1, 2)
    field = torch.stack([2 * clean[:, 1], -2 * clean[:, 0]], -1)
    assert torch.allclose(spring.test_y, field, atol=1e-12)

    pend = bench.make_task("pendulum", 0, sizes)
    r2 = (pend.reference[:, 0] ** 2).sum(-1)
    assert bool((r2 >= 1.3**2 - 1e-12).all() and (r2 <= 2.3**2 + 1e-12).all())
    assert pend.reference.shape[1] == 45


def test_two_body_orbits_are_near_circular_with_resting_centre() -> None:
    x = bench.orbit_starts(64, torch.Generator().manual_seed(3))
    assert float((x[:, 4:6] + x[:, 6:8]).abs().max()) == 0.0
    assert float((x[:, 0:2] + x[:, 2:4]).abs().max()) == 0.0
    # A circular orbit has kinetic energy -V/2; the speeds carry 5% noise.
    r = (x[:, 0:2] - x[:, 2:4]).norm(dim=-1)
    ratio = (0.5 * (x[:, 4:] ** 2).sum(-1)) / (0.5 / r)
    assert float((ratio - 1).abs().median()) < 0.1


def test_real_pendulum_split_matches_the_paper() -> None:
    task = bench.make_task("real pendulum", 0, bench.Sizes())
    # 555 finite differences; the last 111 (points 444 to 554) are the test.
    assert task.deriv_x.shape == (444, 2) and task.test_x.shape == (111, 2)
    assert task.reference.shape == (1, 112, 2)
    assert task.dt == pytest.approx(1 / 6, rel=1e-3)


def test_replace_section_keeps_the_rest_of_the_page() -> None:
    page = "# B\n\n## A\n\ntext\n"
    once = bench.replace_section(page, "first")
    assert once.startswith(page.rstrip("\n"))
    assert "## Hamiltonian learning\n\n### HNN table\n\nfirst\n" in once
    later = once + "\n### Notes\n\nkept\n"
    twice = bench.replace_section(later, "second")
    assert "first" not in twice and "second" in twice
    assert twice.endswith("### Notes\n\nkept\n")
    assert twice.count("### HNN table") == 1


def test_quick_run_writes_a_full_table(tmp_path: Path) -> None:
    doc = tmp_path / "bench.md"
    doc.write_text("# Benchmarks\n")
    bench.main(["--quick", "--doc", str(doc)])
    text = doc.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == 1 + len(bench.SYSTEMS) * len(bench.MODELS)
    assert "python -m benchmarks.hamiltonian_table --quick" in text
    # The HNN's discrete-gradient rollout is finite on every system.
    dg = [ln.split("|") for ln in rows if "| HNN + DG |" in ln]
    assert len(dg) == len(bench.SYSTEMS)
    assert all(math.isfinite(float(cells[3])) and float(cells[4]) > 0 for cells in dg)


def test_pool_orders_seeds_and_lets_a_rerun_replace_a_system() -> None:
    old = {
        "command": "python -m benchmarks.hamiltonian_table --seeds 2",
        "results": {
            "pendulum": {"HNN + RK4": [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]},
            "two-body": {"HNN + RK4": [[5.0, 5.0, 5.0], [6.0, 6.0, 6.0]]},
        },
    }
    rerun = {
        "command": "python -m benchmarks.hamiltonian_table --first-seed 1 --seeds 1",
        "seeds": [1],
        "results": {"pendulum": {"HNN + RK4": [[9.0, 9.0, 9.0]]}},
    }
    extra = {
        "command": "python -m benchmarks.hamiltonian_table --first-seed 2 --seeds 1",
        "results": {"two-body": {"HNN + RK4": [[7.0, 7.0, 7.0]]}},
    }
    pooled = bench.pool([extra, old, rerun])
    assert list(pooled) == ["pendulum", "two-body"]
    assert [r[0] for r in pooled["pendulum"]["HNN + RK4"]] == [1.0, 9.0]
    assert [r[0] for r in pooled["two-body"]["HNN + RK4"]] == [5.0, 6.0, 7.0]


def test_diagnose_reports_the_learned_dissipation() -> None:
    line = bench.diagnose("pendulum", 0, bench.QUICK)
    assert "pairs from centred samples" in line and "learned R [" in line
    assert "with R = 0" in line
    # 6 trajectories, 3 for training, 45 samples less 4 at either end.
    assert "(108 pairs)" in line
    everything = bench.diagnose("pendulum", 0, bench.QUICK, trim=False)
    assert "(132 pairs)" in everything


def test_diagnose_refuses_other_systems_in_one_line() -> None:
    with pytest.raises(SystemExit) as info:
        bench.main(["--diagnose", "two-body", "0"])
    assert "\n" not in str(info.value) and "--diagnose two-body 0" in str(info.value)
