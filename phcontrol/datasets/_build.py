"""Build the bundled NPZ files from the original benchmark files.

Usage: ``python -m phcontrol.datasets._build DATA_DIR [--out DIR]``.
``DATA_DIR`` holds one folder per log (``silverbox``, ``emps``,
``cascaded-tanks``, ``real-pendulum-schmidt-lipson``), each with a
``SOURCE.md`` whose table lists the SHA-256 of every original file. The
originals are checked against those hashes, read with :func:`load_log`,
and written as compressed NPZ files of plain float64 arrays. The hashes of
the written arrays are then compared with the registry in
``phcontrol/datasets/__init__.py``; on a mismatch the new registry is
written to standard output and the exit status is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from phcontrol.data import load_log
from phcontrol.datasets import _SHA256, SILVERBOX_DT, _array_sha256, names
from phcontrol.errors import DataError, DataWarning

logger = logging.getLogger(__name__)

_TABLE_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*[\d,]+\s*\|\s*([0-9a-f]{64})\s*\|")


def _listed_hashes(folder: Path) -> dict[str, str]:
    """Read the file/SHA-256 table of ``folder/SOURCE.md``."""
    text = (folder / "SOURCE.md").read_text(encoding="utf-8")
    rows = (_TABLE_ROW.match(line) for line in text.splitlines())
    return {row.group(1): row.group(2) for row in rows if row}


def _verified(folder: Path, name: str) -> Path:
    """Return ``folder/name`` after checking it against SOURCE.md."""
    listed = _listed_hashes(folder).get(name)
    if listed is None:
        raise DataError(f"{folder / 'SOURCE.md'}: no SHA-256 listed for {name!r}")
    path = folder / name
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != listed:
        raise DataError(
            f"{path}: SHA-256 is {found}, but SOURCE.md lists {listed}; this is "
            "not the original file"
        )
    logger.info("verified %s", path)
    return path


def _silverbox(root: Path) -> dict[str, np.ndarray]:
    path = _verified(root / "silverbox", "SNLS80mV.mat")
    log = load_log(path, dt=SILVERBOX_DT, inputs=["V1"], outputs=["V2"])
    return {"u": log.u[:, 0], "y": log.z[:, 0]}


def _emps(root: Path) -> dict[str, np.ndarray]:
    import scipy.io

    folder = root / "emps"
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, float]] = {}
    for split, name in (("train", "DATA_EMPS.mat"), ("test", "DATA_EMPS_PULSES.mat")):
        path = _verified(folder, name)
        log = load_log(path, time="t", inputs=["vir"], outputs=["qm"])
        arrays |= {f"{split}_t": log.t, f"{split}_u": log.u[:, 0]}
        arrays[f"{split}_y"] = log.z[:, 0]
        contents = scipy.io.loadmat(str(path), variable_names=["gtau", "kp", "kv"])
        scalars[split] = {
            key: float(contents[key].item()) for key in ("gtau", "kp", "kv")
        }
    if scalars["train"] != scalars["test"]:
        raise DataError(f"{folder}: gtau, kp, kv differ between train and test")
    for key, value in scalars["train"].items():
        arrays[key] = np.array(value)
    return arrays


def _cascaded_tanks(root: Path) -> dict[str, np.ndarray]:
    import scipy.io

    path = _verified(root / "cascaded-tanks", "dataBenchmark.mat")
    step = float(scipy.io.loadmat(str(path), variable_names=["Ts"])["Ts"].item())
    if step != 4.0:
        raise DataError(f"{path}: Ts is {step}, expected 4 s")
    arrays: dict[str, np.ndarray] = {}
    for split, suffix in (("train", "Est"), ("test", "Val")):
        log = load_log(path, dt=step, inputs=[f"u{suffix}"], outputs=[f"y{suffix}"])
        arrays |= {f"{split}_u": log.u[:, 0], f"{split}_y": log.z[:, 0]}
    return arrays


def _real_pendulum(root: Path) -> dict[str, np.ndarray]:
    folder = root / "real-pendulum-schmidt-lipson"
    path = _verified(folder, "extracted/real_pend_h_1.txt")
    with warnings.catch_warnings():
        # The gaps in this log are known and documented in its note.
        warnings.simplefilter("ignore", DataWarning)
        log = load_log(path, time="t", outputs=["trial"], states=["o", "v"])
    if np.any(log.z[:, 0] != 0):
        raise DataError(f"{path}: expected a single trial numbered 0")
    assert log.x is not None
    return {"t": log.t, "theta": log.x[:, 0], "omega": log.x[:, 1]}


_BUILDERS: dict[str, Callable[[Path], dict[str, np.ndarray]]] = {
    "silverbox": _silverbox,
    "emps": _emps,
    "cascaded_tanks": _cascaded_tanks,
    "real_pendulum": _real_pendulum,
}


def build(root: Path, out: Path) -> dict[str, dict[str, str]]:
    """Write every bundled NPZ file and return the hashes of its arrays.

    Parameters
    ----------
    root : Path
        Folder holding the original files, one sub-folder per log.
    out : Path
        Folder the NPZ files are written to.

    Returns
    -------
    dict of str to dict of str to str
        For each dataset, the SHA-256 of each array, as the registry holds.
    """
    if set(_BUILDERS) != set(names()):
        raise DataError("the build script and the registry name different datasets")
    hashes: dict[str, dict[str, str]] = {}
    for name, make in _BUILDERS.items():
        arrays = {
            key: np.asarray(value, dtype=np.float64)
            for key, value in make(root).items()
        }
        target = out / f"{name}.npz"
        np.savez_compressed(target, **arrays)  # type: ignore[arg-type]
        logger.info("wrote %s (%d bytes)", target, target.stat().st_size)
        hashes[name] = {key: _array_sha256(value) for key, value in arrays.items()}
    return hashes


def _registry_source(hashes: dict[str, dict[str, str]]) -> str:
    lines = ["_SHA256: dict[str, dict[str, str]] = {"]
    for name, arrays in hashes.items():
        lines.append(f'    "{name}": {{')
        lines += [f'        "{key}": "{digest}",' for key, digest in arrays.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the build from the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m phcontrol.datasets._build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path, help="folder of the original files")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where to write the NPZ files (default: this package)",
    )
    parser.add_argument(
        "--print-registry",
        action="store_true",
        help="write the registry of array hashes to standard output",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    hashes = build(args.data_dir, args.out)
    matches = hashes == _SHA256
    if matches:
        logger.info("all arrays match the registry")
    else:
        logger.error("array hashes differ from the registry in datasets/__init__.py")
    if args.print_registry or not matches:
        sys.stdout.write(_registry_source(hashes))
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
