"""The documentation builds with ``mkdocs build --strict`` and its nav is whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def nav_pages(entries: list) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages += nav_pages(value)
        else:
            pages.append(value)
    return pages


def test_every_nav_page_exists() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with mkdocs")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = nav_pages(config["nav"])
    assert "howto/gpu-and-cluster.md" in pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, missing


def test_docs_build_strictly(tmp_path: Path) -> None:
    pytest.importorskip(
        "mkdocs", reason="install the test extra: pip install -e .[test]"
    )
    pytest.importorskip(
        "mkdocstrings_handlers.python", reason="needs mkdocstrings[python]"
    )
    # Not -q: mkdocs counts only the warnings it shows, so a quiet strict
    # build passes with warnings.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-d",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (tmp_path / "reference" / "identification" / "index.html").read_text()
    assert "phcontrol.identify.identify" in api  # the reference came from docstrings
