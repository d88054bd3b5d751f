"""The project's conventions, checked: style, documented parameters, type
hints, no printing in the library, --json on every command-line verb."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import phcontrol

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "phcontrol"

PUBLIC_MODULES = [
    "phcontrol",
    "phcontrol.cli",
    "phcontrol.data",
    "phcontrol.datasets",
    "phcontrol.errors",
    "phcontrol.fitted",
    "phcontrol.hamiltonians",
    "phcontrol.integrators",
    "phcontrol.io",
    "phcontrol.linear",
    "phcontrol.models",
    "phcontrol.passivity",
    "phcontrol.plants",
    "phcontrol.plotting",
    "phcontrol.report",
    "phcontrol.structure",
]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    done = subprocess.run(
        [*command, "check", "phcontrol", "tests", "examples", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]


def public_objects() -> Iterator[tuple[str, Any]]:
    """Every public function and class the public modules export, once."""
    seen: set[int] = set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if id(obj) in seen or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("phcontrol"):
                continue
            seen.add(id(obj))
            yield f"{name}.{attr}", obj


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def documented_parameters(doc: str) -> set[str]:
    """Names listed in the numpydoc Parameters and Other Parameters sections.

    Entries sit at the indentation of the section title; deeper lines
    describe them, and shallower ones continue a long type line.
    """
    lines = doc.expandtabs().splitlines()
    names: set[str] = set()

    def is_title(k: int) -> bool:
        return (
            k + 1 < len(lines)
            and bool(lines[k].strip())
            and set(lines[k + 1].strip()) == {"-"}
        )

    for k, line in enumerate(lines):
        if not (is_title(k) and line.strip() in ("Parameters", "Other Parameters")):
            continue
        indent = _indent(line)
        for j in range(k + 2, len(lines)):
            entry = lines[j]
            if not entry.strip() or _indent(entry) != indent:
                continue
            if is_title(j):
                break
            head = entry.strip().split(" : ")[0]
            for part in head.split(","):
                names.add(part.strip().lstrip("*"))
    return names


def signature_parameters(obj: Any) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and not p.name.startswith("_")
    ]


def test_every_public_parameter_is_documented() -> None:
    missing = []
    for name, obj in public_objects():
        if inspect.isclass(obj) and "__init__" not in vars(obj):
            # Inherited constructors: an exception class, a dataclass' fields
            # are its Attributes.
            continue
        if inspect.isclass(obj) and getattr(obj, "__dataclass_fields__", None):
            continue
        params = signature_parameters(obj)
        if not params:
            continue
        documented = documented_parameters(obj.__doc__ or "")
        for param in params:
            if param not in documented:
                missing.append(f"{name}: {param}")
    assert not missing, "undocumented parameters:\n" + "\n".join(missing)


def test_every_public_signature_has_type_hints() -> None:
    missing = []
    for name, obj in public_objects():
        target = obj.__init__ if inspect.isclass(obj) else obj
        if inspect.isclass(obj) and "__init__" not in vars(obj):
            continue
        if inspect.isclass(obj) and getattr(obj, "__dataclass_fields__", None):
            continue
        sig = inspect.signature(target)
        for p in sig.parameters.values():
            if p.name in ("self", "cls"):
                continue
            if p.annotation is inspect.Parameter.empty:
                missing.append(f"{name}: parameter {p.name}")
        if (
            not inspect.isclass(obj)
            and sig.return_annotation is inspect.Signature.empty
        ):
            missing.append(f"{name}: return")
    assert not missing, "missing type hints:\n" + "\n".join(missing)


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_library_code_never_prints() -> None:
    offenders = []
    for path in library_files():
        if path.name == "cli.py":  # the command line's results go to stdout
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_modules_log_through_their_own_logger() -> None:
    for path in library_files():
        text = path.read_text()
        if path.name == "_build.py":  # a maintainer's script with its own main()
            continue
        assert "logging.basicConfig" not in text, path
        assert "logging.getLogger()" not in text, path  # never the root logger
        for call in re.findall(r"logging\.getLogger\(([^)]*)\)", text):
            assert call in ("__name__", '"phcontrol"'), (path, call)


def test_importing_phcontrol_attaches_only_a_null_handler() -> None:
    import logging

    handlers = logging.getLogger("phcontrol").handlers
    assert all(isinstance(h, logging.NullHandler) for h in handlers)


def test_every_command_line_verb_has_json_and_verbosity() -> None:
    import argparse

    from phcontrol.cli import _build_parser

    parser = _build_parser()
    (commands,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    assert set(commands.choices) >= {"identify", "check"}
    for name, sub in commands.choices.items():
        flags = {flag for action in sub._actions for flag in action.option_strings}
        for flag in ("--json", "-v", "-q", "--debug"):
            assert flag in flags, (name, flag)


@pytest.mark.parametrize("flag", ["-q", "-v"])
def test_cli_verbosity_sets_the_package_log_level(flag, tmp_path, capsys) -> None:
    import logging

    from phcontrol.cli import main

    seen = []
    logger = logging.getLogger("phcontrol")
    original = logger.setLevel

    def spy(level):  # noqa: ANN001, ANN202
        seen.append(level)
        original(level)

    logger.setLevel = spy  # type: ignore[method-assign]
    try:
        main(["check", str(tmp_path / "missing.json"), flag])
    finally:
        del logger.setLevel
    expected = logging.ERROR if flag == "-q" else logging.INFO
    assert seen[0] == expected
    assert logger.level == logging.NOTSET  # restored after the command
    capsys.readouterr()


def test_documented_parameter_parser_reads_numpydoc() -> None:
    doc = """Summary.

    Parameters
    ----------
    a, b : int
        Two.
    *args : float
        More.

    Other Parameters
    ----------------
    strict : bool
        Raise.

    Returns
    -------
    int
    """
    assert documented_parameters(doc) == {"a", "b", "args", "strict"}


def test_the_public_api_lists_only_existing_names() -> None:
    for name in phcontrol.__all__:
        assert hasattr(phcontrol, name), name


def test_cli_output_to_a_closed_pipe_is_no_error(tmp_path: Path) -> None:
    import os

    import phcontrol as phc

    path = tmp_path / "m.safetensors"
    model = phc.PortHamiltonian(
        phc.QuadraticHamiltonian(2), phc.CanonicalJ(2), G=phc.InputMatrix(2, 1)
    )
    phc.save(model, path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "phcontrol", "check", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before anything is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_every_public_object_has_an_example() -> None:
    """Each public function and class shows its use; pytest runs the examples."""
    import pkgutil

    import phcontrol

    missing = []
    seen: set[int] = set()
    for info in pkgutil.walk_packages(phcontrol.__path__, "phcontrol."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if id(obj) in seen or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            seen.add(id(obj))
            doc = inspect.getdoc(obj) or ""
            if not re.search(r"\n *Examples\n *--------\n", doc) or ">>> " not in doc:
                missing.append(f"{info.name}.{attr}")
    assert len(seen) > 100
    assert not missing, "no Examples section:\n" + "\n".join(missing)
