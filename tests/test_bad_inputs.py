"""The catalogue of bad inputs, each met through the API and the command line.

Every case must give one clear error that names the file, column, row or
argument, the rule and the fix; on the command line exit status 2, a
single ``phcontrol: error:`` line and no output left behind. Command-line
cases fail before any fitting starts, so each takes milliseconds.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import phcontrol as phc
from phcontrol.cli import EXIT_USAGE, main
from phcontrol.data import Log, load_log
from phcontrol.errors import DataError, DataWarning, ModelFileError, ShapeError

GOOD = "t,u,y\n" + "".join(f"{0.1 * k:.1f},{k % 3},{k % 5}\n" for k in range(40))


@dataclass(frozen=True)
class LogCase:
    """One bad log: how to write it and what the error must say."""

    name: str
    write: Callable[[Path], Path]
    match: str
    strict: bool = False


def csv(text: str, name: str = "log.csv") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_text(text)
        return path

    return write


def npz(**arrays: np.ndarray) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "log.npz"
        np.savez(path, **arrays)
        return path

    return write


def mat(**arrays: np.ndarray) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / "log.mat"
        scipy.io.savemat(path, arrays)
        return path

    return write


LOG_CASES = [
    LogCase("empty file", csv(""), r"file is empty \(0 bytes\); a log needs a header"),
    LogCase("header only", csv("t,u,y\n"), r"has a header but no data rows"),
    LogCase(
        "non-numeric cell",
        csv("t,u,y\n0,1,2\n0.1,abc,3\n0.2,1,4\n"),
        r"column 'u' has 1 non-numeric cell \(first at row 1: 'abc'\)",
    ),
    LogCase(
        "nan",
        csv("t,u,y\n0,1,2\n0.1,1,nan\n0.2,1,4\n"),
        r"column 'y' has 1 non-finite value \(first at row 1\)",
    ),
    LogCase(
        "inf",
        csv("t,u,y\n0,1,2\n0.1,1,2\n0.2,-inf,4\n"),
        r"column 'u' has 1 non-finite value \(first at row 2\)",
    ),
    LogCase(
        "unsorted times",
        csv("t,u,y\n0,1,2\n0.2,1,3\n0.1,1,4\n"),
        r"column 't' is not increasing \(first at row 2",
    ),
    LogCase(
        "duplicate times",
        csv("t,u,y\n0,1,2\n0.1,1,3\n0.1,1,4\n0.2,1,4\n"),
        r"column 't' has 1 duplicate time \(first at row 2\)",
    ),
    LogCase(
        "irregular sampling, strict",
        csv("t,u,y\n0,1,2\n0.1,1,3\n0.5,1,4\n0.6,1,4\n"),
        r"column 't' is irregularly sampled.* ending at row 2.*Log\.slice",
        strict=True,
    ),
    LogCase(
        "mismatched lengths",
        npz(t=np.arange(5.0), u=np.ones(4), y=np.ones(5)),
        r"column 'u' has 4 samples but 't' has 5 \(first unmatched row 4\)",
    ),
    LogCase(
        "missing column",
        csv("t,u\n0,1\n0.1,1\n"),
        r"column 'y' not found; available: 't', 'u'",
    ),
    LogCase(
        "single row",
        csv("t,u,y\n0,1,2\n"),
        r"has 1 sample; at least 2 are needed",
    ),
    LogCase(
        ".mat without the named variables",
        mat(t=np.arange(5.0), u=np.ones(5)),
        r"column 'y' not found; available: 't', 'u'",
    ),
    LogCase(
        "ragged csv row",
        csv("t,u,y\n0,1,2\n0.1,1,2,7\n"),
        r"could not be read as CSV .*line 3",
    ),
]
IDS = [case.name for case in LOG_CASES]


def single_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("case", LOG_CASES, ids=IDS)
def test_api_refuses_bad_log(tmp_path: Path, case: LogCase) -> None:
    path = case.write(tmp_path)
    with pytest.raises(DataError, match=case.match) as info:
        load_log(path, time="t", inputs=["u"], outputs=["y"], strict=case.strict)
    message = single_line(str(info.value))
    assert message.startswith(f"{path}: ")  # the file comes first
    assert info.value.problems and all(str(path) in p for p in info.value.problems)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def assert_nothing_written(folder: Path, keep: set[str]) -> None:
    left = {p.name for p in folder.iterdir()} - keep
    assert not left, f"left behind: {sorted(left)}"


@pytest.mark.parametrize("case", LOG_CASES, ids=IDS)
def test_cli_refuses_bad_log(
    tmp_path: Path, case: LogCase, capsys: pytest.CaptureFixture[str]
) -> None:
    path = case.write(tmp_path)
    args = ["identify", str(path), "--time", "t", "--inputs", "u", "--outputs", "y"]
    args += ["--out", str(tmp_path / "out")] + (["--strict"] if case.strict else [])
    code, err = run_cli(args, capsys)
    assert code == EXIT_USAGE
    line = single_line(err)
    assert line.startswith(f"phcontrol: error: {path}: ")
    assert pytest.importorskip("re").search(case.match, line), line
    assert_nothing_written(tmp_path, {path.name})


def test_api_warns_about_irregular_sampling_by_default(tmp_path: Path) -> None:
    path = csv("t,u,y\n0,1,2\n0.1,1,3\n0.5,1,4\n0.6,1,4\n")(tmp_path)
    with pytest.warns(DataWarning, match=r"log\.csv: column 't' is irregularly"):
        log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    assert len(log) == 4


def test_cli_warns_about_irregular_sampling_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The log is also too short for the window, so the fit never starts.
    path = csv("t,u,y\n0,1,2\n0.1,1,3\n0.5,1,4\n0.6,1,4\n")(tmp_path)
    args = ["identify", str(path), "--time", "t", "--inputs", "u", "--outputs", "y"]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code, err = run_cli([*args, "--out", str(tmp_path / "out")], capsys)
    warning, error = err.strip().splitlines()
    assert warning.startswith("phcontrol: warning:") and "irregularly" in warning
    assert code == EXIT_USAGE and "window" in error
    assert_nothing_written(tmp_path, {path.name})


def test_api_refuses_a_log_too_short_for_the_window() -> None:
    log = Log(t=np.arange(60.0), u=np.zeros((60, 1)), z=np.ones((60, 1)), source="s")
    with pytest.raises(
        DataError,
        match=r"^s: the log has 60 samples but identify needs at least 453: the "
        r"last val_fraction=0\.2 .* n_past \+ window \+ 1 = 91 samples\. Use a "
        r"longer log, or shorten `window` \(now 80\)$",
    ):
        phc.identify(log, window=80)


@pytest.mark.parametrize("n", [1, 2])
def test_api_refuses_a_one_row_log_by_its_length(n: int) -> None:
    log = Log(t=np.arange(n) * 0.1, u=np.zeros((n, 1)), z=np.ones((n, 1)), dt=0.1,
              source="one.csv")  # fmt: skip
    plural = "s" if n > 1 else ""
    with pytest.raises(DataError, match=rf"one\.csv: the log has {n} sample{plural} "):
        phc.identify(log)


def test_the_length_rule_matches_the_split() -> None:
    # 453 samples for window=80 is the least that leaves 91 in each part.
    def log(n: int) -> Log:
        return Log(t=np.arange(n * 1.0), u=np.zeros((n, 1)), z=np.ones((n, 1)))

    from phcontrol._validation import check_fit_settings

    check_fit_settings(log(453), n_past=10, window=80, val_fraction=0.2)
    train, val = log(453).split(0.2)
    assert min(len(train), len(val)) == 91
    with pytest.raises(DataError, match="the log has 452 samples"):
        check_fit_settings(log(452), n_past=10, window=80, val_fraction=0.2)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"window": 0}, r"`window` must be at least 1; found 0"),
        ({"n_past": 0}, r"`n_past` must be at least 1; found 0"),
        ({"val_fraction": 0.0}, r"`val_fraction` must lie strictly between 0 and 1"),
        ({"val_fraction": 1.0}, r"`val_fraction` must lie strictly between 0 and 1"),
        ({"n_past": 2.5}, r"`n_past` must be an integer; found 2\.5"),
    ],
)
def test_api_refuses_bad_window_settings(option: dict, match: str) -> None:
    log = Log(t=np.arange(60.0), u=np.zeros((60, 1)), z=np.ones((60, 1)))
    with pytest.raises((ValueError, TypeError), match=match):
        phc.identify(log, **option)


def test_cli_refuses_a_log_too_short_for_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv(GOOD)(tmp_path)
    args = ["identify", str(path), "--time", "t", "--inputs", "u", "--outputs", "y"]
    code, err = run_cli(
        [*args, "--window", "500", "--out", str(tmp_path / "o")], capsys
    )
    assert code == EXIT_USAGE
    line = single_line(err)
    assert f"{path}: the log has 40 samples but identify needs at least 2553" in line
    assert "shorten --window (now 500)" in line  # the CLI names its flag
    assert_nothing_written(tmp_path, {path.name})


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (1, "has 1 sample; at least 2 are needed"),
        (5, "the log has 5 samples but identify needs at least 693"),
    ],
)
def test_cli_refuses_a_too_short_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: int, says: str
) -> None:
    path = csv("t,u,y\n" + "".join(f"{0.1 * k:.1f},1,2\n" for k in range(rows)))(
        tmp_path
    )
    args = ["identify", str(path), "--time", "t", "--inputs", "u", "--outputs", "y"]
    code, err = run_cli([*args, "--out", str(tmp_path / "o")], capsys)
    assert code == EXIT_USAGE
    line = single_line(err)
    assert line.startswith(f"phcontrol: error: {path}: ")
    assert says in line
    assert_nothing_written(tmp_path, {path.name})


def test_api_refuses_a_file_over_the_size_limit(tmp_path: Path) -> None:
    path = csv(GOOD)(tmp_path)
    size = path.stat().st_size
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(path))}: 1 problem: file is {size} bytes, "
        r"over the limit of 64 bytes; raise the limit if you trust "
        r"the file \(max_bytes= in Python, --max-bytes on the command line\) or "
        r"split it into shorter logs$",
    ):
        load_log(path, time="t", outputs=["y"], max_bytes=64)


def test_cli_refuses_a_huge_file_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sparse file: 2 GiB and a byte by its size, a few bytes on disk.
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.write(b"t,u,y\n")
        fh.truncate(2**31 + 1)
    args = ["identify", str(path), "--time", "t", "--outputs", "y"]
    code, err = run_cli([*args, "--out", str(tmp_path / "o")], capsys)
    assert code == EXIT_USAGE
    line = single_line(err)
    assert line.startswith(
        f"phcontrol: error: {path}: 1 problem: file is 2147483649 bytes (2 GiB)"
    )
    assert "over the limit of 2147483648 bytes (2 GiB)" in line
    assert "--max-bytes" in line and "split it" in line
    assert_nothing_written(tmp_path, {path.name})
    small = csv(GOOD)(tmp_path)
    args = ["identify", str(small), "--time", "t", "--outputs", "y", "--max-bytes"]
    code, err = run_cli([*args, "10", "--out", str(tmp_path / "o")], capsys)
    assert code == EXIT_USAGE and "over the limit of 10 bytes" in err
    assert_nothing_written(tmp_path, {path.name, small.name})


def test_csv_read_in_chunks_equals_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phcontrol import data

    path = csv(GOOD)(tmp_path)
    whole = load_log(path, time="t", inputs=["u"], outputs=["y"])
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 7)  # 40 rows: six chunks
    chunked = load_log(path, time="t", inputs=["u"], outputs=["y"])
    for name in ("t", "u", "z"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))


def test_csv_chunks_still_refuse_a_ragged_row_late_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phcontrol import data

    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 7)
    path = csv(GOOD + "4.0,1,2,3\n")(tmp_path)
    with pytest.raises(DataError, match=r"Expected 3 fields in line 42, saw 4"):
        load_log(path, time="t", inputs=["u"], outputs=["y"])


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------

QUAD = phc.PortHamiltonian(phc.QuadraticHamiltonian(2), phc.CanonicalJ(2))

ARGUMENT_CASES = [
    (
        "log with a 1-D input",
        lambda: Log(t=np.arange(3.0), u=np.zeros(3), z=np.zeros((3, 1))),
        ShapeError,
        r"`u` must have shape \(N, n_inputs\); got shape \(3,\).*reshape",
    ),
    (
        "log with too few output rows",
        lambda: Log(t=np.arange(3.0), u=np.zeros((3, 0)), z=np.zeros((2, 1))),
        ShapeError,
        r"`z` must have one row per time in `t` \(3 rows\); got shape \(2, 1\)",
    ),
    (
        "state of the wrong width",
        lambda: phc.simulate(QUAD, torch.zeros(3), None, 0.1, steps=2),
        ShapeError,
        r"`x0` must have shape \(batch, 2\); found shape \(1, 3\).*Stack states",
    ),
    (
        "energy matrix of the wrong shape",
        lambda: phc.QuadraticHamiltonian(2, Q=torch.ones(2, 3)),
        ShapeError,
        r"`Q` must have shape \(2, 2\); found \(2, 3\)",
    ),
    (
        "equilibrium of the wrong length",
        lambda: phc.to_state_space(QUAD, x_eq=np.zeros(3)),
        ShapeError,
        r"`x_eq` must have shape \(2,\); found \(3,\)",
    ),
    (
        "unknown keyword of identify",
        lambda: phc.identify("cascaded_tanks", windw=20),
        TypeError,
        r"identify\(\) got an unexpected keyword argument 'windw'.*'window'",
    ),
    (
        "unknown keyword of load_log",
        lambda: load_log("x.csv", time="t", outputs=["y"], input=["u"]),
        TypeError,
        r"load_log\(\) got an unexpected keyword argument 'input'.*'inputs'",
    ),
    (
        "unknown keyword of simulate",
        lambda: phc.simulate(QUAD, torch.zeros(2), None, 0.1, steps=2, methd="avf"),
        TypeError,
        r"simulate\(\) got an unexpected keyword argument 'methd'.*'method'",
    ),
    (
        "unknown keyword of check_passivity",
        lambda: phc.check_passivity(QUAD, tolerance=1e-6),
        TypeError,
        r"check_passivity\(\) got an unexpected keyword argument 'tolerance'",
    ),
]


@pytest.mark.parametrize(
    ("call", "kind", "match"),
    [case[1:] for case in ARGUMENT_CASES],
    ids=[case[0] for case in ARGUMENT_CASES],
)
def test_api_refuses_bad_arguments(call, kind, match) -> None:
    with pytest.raises(kind, match=match) as info:
        call()
    single_line(str(info.value))


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--windw", "20"], r"unrecognized arguments: --windw 20 \(see"),
        (["--window", "0"], r"--window: expected a positive integer, got '0'"),
        (["--dt", "-1"], r"--dt: expected a positive number, got '-1'"),
        (["--inputs", "u,,v"], r"--inputs: expected comma-separated column names"),
        (["--model", "quadratic"], r"--model: invalid choice: 'quadratic'"),
    ],
)
def test_cli_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    path = csv(GOOD)(tmp_path)
    args = ["identify", str(path), "--time", "t", "--outputs", "y"]
    code, err = run_cli([*args, *extra, "--out", str(tmp_path / "o")], capsys)
    assert code == EXIT_USAGE
    assert pytest.importorskip("re").search(match, single_line(err)), err
    assert_nothing_written(tmp_path, {path.name})


# --------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------

PASSIVE = {"A": [[-1.0]], "B": [[1.0]], "C": [[1.0]], "D": [[0.0]]}

SYSTEM_CASES = [
    (
        "non-square A",
        {"A": [[-1.0, 0.0]]},
        r"`A` must be square; `A` has shape \(1, 2\)",
    ),
    (
        "B with other rows than A",
        {"B": [[1.0], [2.0]]},
        r"`B` must have 1 rows to match `A` \(1, 1\); found \(2, 1\)",
    ),
    (
        "C with other columns than A",
        {"C": [[1.0, 2.0]]},
        r"`C` must have 1 columns to match `A` \(1, 1\); found \(1, 2\)",
    ),
    (
        "D inconsistent with B and C",
        {"D": [[0.0, 1.0]]},
        r"`D` must have shape \(1, 1\) to match `C` \(1, 1\) and `B` \(1, 1\)",
    ),
    ("non-finite A", {"A": [[float("nan")]]}, r"`A`.*finite"),
]


@pytest.mark.parametrize(
    ("change", "match"),
    [case[1:] for case in SYSTEM_CASES],
    ids=[case[0] for case in SYSTEM_CASES],
)
def test_api_refuses_bad_systems(change: dict, match: str) -> None:
    system = {**PASSIVE, **change}
    matrices = tuple(np.array(system[k], dtype=float) for k in "ABCD")
    with pytest.raises(ValueError, match=match) as info:
        phc.check_passivity(matrices)
    single_line(str(info.value))
    with pytest.raises(ValueError, match=match):
        phc.from_state_space(matrices)


@pytest.mark.parametrize(
    ("change", "match"),
    [case[1:] for case in SYSTEM_CASES],
    ids=[case[0] for case in SYSTEM_CASES],
)
def test_cli_refuses_bad_systems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, match: str
) -> None:
    path = tmp_path / "system.json"
    path.write_text(json.dumps({**PASSIVE, **change}).replace("NaN", '"nan"'))
    if "nan" in path.read_text():  # JSON has no NaN: store it as .npz instead
        path = tmp_path / "system.npz"
        np.savez(
            path, **{k: np.array(v, float) for k, v in {**PASSIVE, **change}.items()}
        )
    code, err = run_cli(["check", str(path)], capsys)
    assert code == EXIT_USAGE
    line = single_line(err)
    assert line.startswith(f"phcontrol: error: '{path}': ")
    assert pytest.importorskip("re").search(match, line), line


# --------------------------------------------------------------------------
# Model files on the command line (the API cases are in test_io.py)
# --------------------------------------------------------------------------


class Payload:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def test_cli_refuses_a_pickle_renamed_to_a_model_without_running_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Payload(marker)))
    code, err = run_cli(["check", str(path)], capsys)
    assert code == EXIT_USAGE
    assert "looks like a pickle" in single_line(err)
    assert not marker.exists()


def test_cli_refuses_a_truncated_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.safetensors"
    phc.save(QUAD, path)
    path.write_bytes(path.read_bytes()[:-5])
    code, err = run_cli(["check", str(path)], capsys)
    assert code == EXIT_USAGE and "truncated" in single_line(err)


def test_cli_refuses_a_model_of_a_newer_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import safetensors.torch

    from phcontrol.io import _checksum

    path = tmp_path / "model.safetensors"
    phc.save(QUAD, path)
    tensors = safetensors.torch.load_file(str(path))
    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        meta = json.loads(fh.read(size))["__metadata__"]
    meta["format_version"] = "99"
    meta["checksum"] = _checksum(tensors, meta)
    safetensors.torch.save_file(tensors, str(path), metadata=meta)
    code, err = run_cli(["check", str(path)], capsys)
    assert code == EXIT_USAGE and "format version 99" in single_line(err)


def test_api_model_errors_are_model_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(os.urandom(64))
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        phc.load(path)
