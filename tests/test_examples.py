"""Every example script runs in smoke mode and writes its figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))


def test_examples_exist():
    assert EXAMPLES, "no examples/NN_topic.py scripts found"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_smoke_mode_and_writes_its_figure(script, tmp_path):
    env = dict(os.environ)
    env["PHCONTROL_SMOKE"] = "1"
    env["PHCONTROL_OUT"] = str(tmp_path)
    env["MPLBACKEND"] = "Agg"
    # Import this checkout's package, whatever copy is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    figure = tmp_path / f"{script.stem}.png"
    assert figure.is_file() and figure.stat().st_size > 0, sorted(
        p.name for p in tmp_path.iterdir()
    )
