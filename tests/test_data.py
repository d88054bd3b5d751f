"""Tests for phcontrol.data: the Log record and the checked loader."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _paths import SHARED_DATA

from phcontrol.data import IRREGULAR_RTOL, Log, load_log
from phcontrol.errors import DataError, DataWarning, ShapeError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def regular_csv(n: int = 6, dt: float = 0.5) -> str:
    rows = [f"{k * dt},{k % 3},{0.1 * k}" for k in range(n)]
    return "t,u,y\n" + "\n".join(rows) + "\n"


# --------------------------------------------------------------------------
# Log
# --------------------------------------------------------------------------


def make_log(n: int = 10, **overrides: object) -> Log:
    fields: dict[str, object] = {
        "t": np.arange(n) * 0.25,
        "u": np.zeros((n, 1)),
        "z": np.ones((n, 2)),
    }
    fields.update(overrides)
    return Log(**fields)  # type: ignore[arg-type]


def test_log_copies_arrays_as_float64_and_infers_dt() -> None:
    u = np.zeros((10, 1), dtype=np.int64)
    log = make_log(u=u, source="demo")
    u[0, 0] = 7
    assert log.u.dtype == np.float64
    assert log.u[0, 0] == 0.0
    assert log.dt == 0.25
    assert isinstance(log.dt, float)
    assert (len(log), log.n_inputs, log.n_outputs, log.n_states) == (10, 1, 2, 0)


def test_log_names_default_to_symbol_and_index() -> None:
    log = make_log(x=np.zeros((10, 3)))
    assert log.input_names == ("u0",)
    assert log.output_names == ("z0", "z1")
    assert log.state_names == ("x0", "x1", "x2")


def test_log_keeps_an_explicit_dt() -> None:
    assert make_log(dt=0.3).dt == 0.3


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"t": np.zeros((10, 1))}, "`t`"),
        ({"u": np.zeros(10)}, "`u`"),
        ({"z": np.zeros((9, 2))}, "`z`"),
        ({"x": np.zeros((11, 2))}, "`x`"),
        ({"u": np.zeros((10, 1), dtype=complex)}, "`u`"),
        ({"z": [["a"] * 2] * 10}, "`z`"),
        ({"input_names": ("a", "b")}, "`input_names`"),
        ({"output_names": ("a",)}, "`output_names`"),
        ({"x": np.zeros((10, 2)), "state_names": ("q",)}, "`state_names`"),
        ({"output_names": (1, 2)}, "`output_names`"),
    ],
)
def test_log_rejects_bad_shapes_naming_the_field(
    overrides: dict[str, object], field_name: str
) -> None:
    with pytest.raises(ShapeError, match=re.escape(field_name)):
        make_log(**overrides)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"dt": 0.0}, "positive"),
        ({"dt": -1.0}, "positive"),
        ({"dt": float("inf")}, "positive"),
        ({"t": np.zeros(10)}, "check that t increases"),
    ],
)
def test_log_rejects_a_bad_dt(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_log(**overrides)


def test_log_of_one_sample_needs_an_explicit_dt() -> None:
    with pytest.raises(ValueError, match="fewer than 2 samples"):
        make_log(n=1)
    assert make_log(n=1, dt=0.1).dt == 0.1


def test_log_slice_keeps_recorded_times_names_and_dt() -> None:
    log = make_log(x=np.arange(20.0).reshape(10, 2), source="f.csv")
    part = log.slice(2, 5)
    assert part.t.tolist() == [0.5, 0.75, 1.0]
    assert part.x is not None
    assert part.x[:, 0].tolist() == [4.0, 6.0, 8.0]
    assert (part.source, part.dt, part.output_names) == ("f.csv", 0.25, ("z0", "z1"))
    assert len(log.slice(-3)) == 3
    assert len(log.slice(0, 0)) == 0


@pytest.mark.parametrize(("start", "stop"), [(0, 11), (5, 4), (-11, None), (3, -8)])
def test_log_slice_outside_the_log_is_an_error(start: int, stop: int | None) -> None:
    with pytest.raises(ShapeError, match="outside this log of 10 samples"):
        make_log().slice(start, stop)


@pytest.mark.parametrize(
    ("n", "fraction", "n_first", "n_last"),
    [
        (10, 0.2, 8, 2),
        (1024, 0.2, 819, 205),
        (65062, 0.2, 52050, 13012),
        (5, 0.5, 2, 3),
    ],
)
def test_log_split_puts_the_final_fraction_last(
    n: int, fraction: float, n_first: int, n_last: int
) -> None:
    first, last = make_log(n=n).split(fraction)
    assert (len(first), len(last)) == (n_first, n_last)
    assert last.t[0] == first.t[-1] + 0.25


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_log_split_rejects_a_fraction_outside_zero_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        make_log().split(fraction)


def test_log_split_that_leaves_a_part_empty_is_an_error() -> None:
    with pytest.raises(ShapeError, match="leaves one part empty"):
        make_log(n=3).split(0.1)


def test_log_repr_summarises_instead_of_printing_arrays() -> None:
    text = repr(make_log(n=1000, source="run.csv"))
    assert text.startswith("Log('run.csv', 1000 samples, dt=0.25")
    assert len(text) < 200


# --------------------------------------------------------------------------
# load_log: formats
# --------------------------------------------------------------------------


def test_load_csv_with_a_time_column(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", regular_csv())
    log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    assert log.u.shape == (6, 1) and log.z.shape == (6, 1) and log.x is None
    np.testing.assert_array_equal(log.t, np.arange(6) * 0.5)
    assert log.dt == 0.5
    assert (log.input_names, log.output_names) == (("u",), ("y",))
    assert log.source == str(path)


def test_load_with_dt_builds_the_time_axis(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", "u,y\n1,2\n3,4\n5,6\n")
    log = load_log(str(path), dt=0.01, inputs="u", outputs="y")
    np.testing.assert_array_equal(log.t, np.arange(3) * 0.01)
    assert log.dt == 0.01


def test_load_autonomous_log_with_states_only(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", "t,q,p\n0,1,0\n1,0,-1\n2,-1,0\n")
    log = load_log(path, time="t", states=["q", "p"])
    assert log.u.shape == (3, 0)
    assert log.x is not None and log.x.shape == (3, 2)
    np.testing.assert_array_equal(log.z, log.x)
    assert log.output_names == log.state_names == ("q", "p")


def test_load_npz(tmp_path: Path) -> None:
    path = tmp_path / "log.npz"
    np.savez(path, t=np.arange(4.0), u=np.ones(4), y=np.arange(4), other=np.eye(3))
    log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    assert log.z[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("oned_as", ["row", "column"])
def test_load_mat_row_and_column_vectors_alike(tmp_path: Path, oned_as: str) -> None:
    path = tmp_path / "log.mat"
    scipy.io.savemat(
        path,
        {"t": np.arange(5.0), "u": np.ones(5), "y": np.arange(5.0), "Ts": 1.0},
        oned_as=oned_as,
    )
    log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    assert log.u.shape == (5, 1)
    assert log.z[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


PENDULUM_ROWS = [
    "  0.0000000000000000e+000  5.0000000000000000e+000  1.13e+000  9.19e-001 ",
    "  0.0000000000000000e+000  5.1666666666666670e+000  1.27e+000  7.19e-001 ",
    "  0.0000000000000000e+000  5.3333333333333330e+000  1.38e+000  4.99e-001 ",
    "  0.0000000000000000e+000  5.8333333333333330e+000  1.44e+000  2.92e-001 ",
    "  0.0000000000000000e+000  6.0000000000000000e+000  1.40e+000  1.01e-001 ",
]


def test_load_text_with_trial_and_time_before_the_named_columns(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "pend.txt", "%o v\n" + "\n".join(PENDULUM_ROWS) + "\n")
    with pytest.warns(DataWarning, match=r"pend\.txt.*largest gap is 0\.5 s.*row 3"):
        log = load_log(path, time="t", states=["o", "v"])
    assert log.x is not None
    assert log.x[:, 0].tolist() == [1.13, 1.27, 1.38, 1.44, 1.40]
    np.testing.assert_array_equal(log.z, log.x)
    assert log.t[0] == 5.0


def test_load_text_whose_rows_match_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "log.dat", "# t u y\n0 1 2\n1 1 3\n\n2 1 4\n")
    log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    assert log.z[:, 0].tolist() == [2.0, 3.0, 4.0]


@pytest.mark.skipif(
    not (SHARED_DATA / "real-pendulum-schmidt-lipson").is_dir(),
    reason="the original pendulum log is not on this machine",
)
def test_load_the_original_pendulum_log_warns_about_its_gaps() -> None:
    path = SHARED_DATA / "real-pendulum-schmidt-lipson/extracted/real_pend_h_1.txt"
    with pytest.warns(DataWarning, match=r"largest gap is 0\.5 s, ending at row 74"):
        log = load_log(path, time="t", states=["o", "v"])
    assert len(log) == 556


# The opening lines of the bundled benchmarks' CSV files, byte for byte: a
# trailing comma gives an empty last column, and scalars sit in row 0 only.
SILVERBOX_CSV = '"V1","V2",\n0.0057756,0.0093978,\n0.0066102,0.012971,\n'
SCHROEDER_CSV = (
    '"Ovld2","Ovld1","V1","V2",\n0,0,0.005885,0.033315,\n,,0.0060811,0.040618,\n'
    ",,0.0065579,0.028894,\n"
)
TANKS_CSV = (
    '"uEst","uVal","yEst","yVal","Ts",\n3.2567,0.97619,5.205,4.9728,4,\n'
    "3.2466,0.99921,5.2154,4.9722,,\n3.2365,1.0221,5.2203,4.9715,,\n"
)


@pytest.mark.parametrize(
    ("text", "inputs", "outputs", "first_output"),
    [
        (SILVERBOX_CSV, ["V1"], ["V2"], 0.0093978),
        (SCHROEDER_CSV, ["V1"], ["V2"], 0.033315),
        (TANKS_CSV, ["uEst"], ["yEst"], 5.205),
    ],
)
def test_real_csv_quirks_load_when_not_asked_for(
    tmp_path: Path,
    text: str,
    inputs: list[str],
    outputs: list[str],
    first_output: float,
) -> None:
    path = write(tmp_path, "head.csv", text)
    log = load_log(path, dt=0.1, inputs=inputs, outputs=outputs)
    assert log.z[0, 0] == first_output
    assert np.isfinite(log.u).all()


@pytest.mark.parametrize(
    ("relative", "inputs", "outputs"),
    [
        ("silverbox/SNLS80mV.csv", ["V1"], ["V2"]),
        ("silverbox/Schroeder80mV.csv", ["V1"], ["V2"]),
        ("cascaded-tanks/dataBenchmark.csv", ["uVal"], ["yVal"]),
    ],
)
def test_real_csv_heads_load(
    tmp_path: Path, relative: str, inputs: list[str], outputs: list[str]
) -> None:
    source = SHARED_DATA / relative
    if not source.is_file():
        pytest.skip(f"{source} is not on this machine")
    with source.open() as stream:
        head = "".join(stream.readline() for _ in range(50))
    log = load_log(
        write(tmp_path, source.name, head), dt=1.0, inputs=inputs, outputs=outputs
    )
    assert len(log) == 49


def test_asking_for_a_first_row_only_scalar_reports_its_empty_cells(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "head.csv", TANKS_CSV)
    with pytest.raises(
        DataError, match=r"column 'Ts' has 2 empty cells \(first at row 1\)"
    ):
        load_log(path, dt=4.0, inputs=["uEst", "Ts"], outputs=["yEst"])


# --------------------------------------------------------------------------
# load_log: arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"outputs": ["y"]}, TypeError, "exactly one of time= .* got neither"),
        ({"time": "t", "dt": 0.1, "outputs": ["y"]}, TypeError, "got both"),
        ({"dt": 0.0, "outputs": ["y"]}, ValueError, "dt= must be a positive"),
        ({"dt": float("nan"), "outputs": ["y"]}, ValueError, "dt= must be a positive"),
        ({"dt": "0.1", "outputs": ["y"]}, TypeError, "dt= must be a number"),
        ({"time": 0, "outputs": ["y"]}, TypeError, "time= must be a column name"),
        ({"time": "t", "inputs": ["u"]}, ValueError, "outputs= or states="),
        ({"time": "t", "outputs": ["y", "y"]}, ValueError, "outputs= names"),
        ({"time": "t", "outputs": [3]}, TypeError, "outputs= must be column names"),
        ({"time": "t", "outputs": [""]}, ValueError, "empty column name"),
        ({"time": "t", "outputs": ["y"], "min_samples": 1}, ValueError, "min_samples"),
        ({"time": "t", "outputs": ["y"], "max_bytes": 0}, ValueError, "max_bytes"),
        ({"time": "t", "outputs": ["y"], "columns": ["y"]}, TypeError, "columns"),
    ],
)
def test_load_log_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    path = write(tmp_path, "log.csv", regular_csv())
    with pytest.raises(error, match=match):
        load_log(path, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# load_log: problems in the file
# --------------------------------------------------------------------------

BAD_CSVS = {
    "non-numeric": (
        "t,u,y\n0,1,2\n1,1,2\n2,oops,2\n3,1,2\n",
        "column 'u' has 1 non-numeric cell (first at row 2: 'oops')",
    ),
    "empty cell": (
        "t,u,y\n0,1,2\n1,,2\n2,1,2\n",
        "column 'u' has 1 empty cell (first at row 1)",
    ),
    "nan": (
        "t,u,y\n0,1,2\n1,1,nan\n2,1,NaN\n3,1,2\n",
        "column 'y' has 2 non-finite values (first at row 1)",
    ),
    "inf": (
        "t,u,y\n0,1,2\n1,1,2\n2,inf,2\n",
        "column 'u' has 1 non-finite value (first at row 2)",
    ),
    "time goes back": (
        "t,u,y\n0,1,2\n1,1,2\n2,1,2\n1.5,1,2\n3,1,2\n",
        "column 't' is not increasing (first at row 3",
    ),
    "repeated time": (
        "t,u,y\n0,1,2\n1,1,2\n1,1,2\n2,1,2\n",
        "column 't' has 1 duplicate time (first at row 2)",
    ),
    "missing column": (
        "t,u,z,\n0,1,2,\n1,1,2,\n",
        "column 'y' not found; available: 't', 'u', 'z'",
    ),
    "header only": ("t,u,y\n", "has a header but no data rows"),
    "too few samples": ("t,u,y\n0,1,2\n", "has 1 sample; at least 2 are needed"),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_load_csv_problem_names_file_column_and_row(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CSVS[case]
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=re.escape(expected)) as info:
        load_log(path, time="t", inputs=["u"], outputs=["y"])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: 1 problem: ")
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: {expected}")


def test_every_problem_is_collected_into_one_error(tmp_path: Path) -> None:
    rows = [f"{k},{k},{k}" for k in range(60)]
    rows[17] = "17,nan,17"
    rows[23] = "23,inf,23"
    rows[40] = "38.5,40,40"
    rows[50] = "50,50,abc"
    path = write(tmp_path, "data.csv", "t,u,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        load_log(path, time="t", inputs=["u"], outputs=["y", "w"])
    assert str(info.value) == (
        f"{path}: 4 problems: column 'w' not found; available: 't', 'u', 'y'; "
        "column 'u' has 2 non-finite values (first at row 17); "
        "column 'y' has 1 non-numeric cell (first at row 50: 'abc'); "
        "column 't' is not increasing (first at row 40; 1 step back in time); "
        "fix the log or choose other columns"
    )
    assert info.value.problems == [
        f"{path}: column 'w' not found; available: 't', 'u', 'y'",
        f"{path}: column 'u' has 2 non-finite values (first at row 17)",
        f"{path}: column 'y' has 1 non-numeric cell (first at row 50: 'abc')",
        f"{path}: column 't' is not increasing (first at row 40; 1 step back in time)",
    ]


def test_problems_of_one_column_share_its_summary_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", "t,y\n0,1\n1,\n2,x\n3,inf\n")
    with pytest.raises(DataError) as info:
        load_log(path, time="t", outputs=["y"])
    assert str(info.value) == (
        f"{path}: 3 problems: column 'y' has 1 empty cell (first at row 1) and "
        "has 1 non-numeric cell (first at row 2: 'x') and has 1 non-finite value "
        "(first at row 3); fix the log or choose other columns"
    )
    assert len(info.value.problems) == 3


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: 1 problem: file not found"):
        load_log(tmp_path / "nope.csv", time="t", outputs=["y"])


def test_a_folder_is_not_a_log(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a regular file"):
        load_log(tmp_path, time="t", outputs=["y"])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", b"", "file is empty"),
        ("blank.csv", b"\n\n", "no header line"),
        ("log.xlsx", b"PK", r"unsupported extension '\.xlsx'"),
        ("garbage.npz", b"not a zip archive at all", "could not be read as NPZ"),
        ("garbage.mat", b"MATLAB? no" * 20, "could not be read as a MATLAB file"),
        ("bad.csv", b"t,y\n0,1\n1,2,3,4\n", "could not be read as CSV"),
        ("bad.txt", b"t y\n0 1\n", "first line must be '%' or '#'"),
        ("bad.txt", b"%\n0 1\n", "names no columns"),
        ("bad.txt", b"% t y\n0 1 2\n", "3 fields in its first data row"),
        (
            "bad.txt",
            b"% t y\n0 1\n1 2\n2 3 4\n",
            r"1 rows with other than 2 fields .*row 2",
        ),
        ("bad.txt", b"% t y\n", "has a header but no data rows"),
        ("bad.csv", "t,y\n0,\u00e9\n".encode("latin-1"), "could not be read as CSV"),
    ],
)
def test_unreadable_files_are_data_errors(
    tmp_path: Path, name: str, content: bytes, match: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        load_log(path, time="t", outputs=["y"])
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_matlab_v73_file_gets_advice_to_resave(tmp_path: Path) -> None:
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116)
    path = tmp_path / "new.mat"
    path.write_bytes(header + bytes(8) + b"\x00\x02IM" + bytes(512))
    with pytest.raises(DataError, match=r"v7\.3 \(HDF5\).*'-v7'.*CSV"):
        load_log(path, time="t", outputs=["y"])


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", regular_csv())
    size = path.stat().st_size
    with pytest.raises(DataError, match=rf"file is {size} bytes, over the limit of 20"):
        load_log(path, time="t", outputs=["y"], max_bytes=20)
    assert len(load_log(path, time="t", outputs=["y"], max_bytes=size)) == 6


def test_mismatched_variable_lengths_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.npz"
    np.savez(path, t=np.arange(5.0), u=np.ones(4), y=np.ones(5))
    with pytest.raises(
        DataError,
        match=r"column 'u' has 4 samples but 't' has 5 \(first unmatched row 4\)",
    ):
        load_log(path, time="t", inputs=["u"], outputs=["y"])


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.ones((5, 2)), r"column 'u' has shape \(5, 2\); expected a vector"),
        (np.ones(5) * 1j, "column 'u' holds complex numbers"),
        (np.array([1, "a", 2, 3, 4], dtype=object), "column 'u' is an object array"),
        (
            np.array(["1", "2", "x", "4", "5"]),
            r"column 'u' has 1 non-numeric cell \(first at row 2",
        ),
        (np.zeros(5, dtype=[("a", float)]), "column 'u' is not numeric"),
    ],
)
def test_npz_variables_that_are_not_numeric_vectors(
    tmp_path: Path, value: np.ndarray, match: str
) -> None:
    path = tmp_path / "log.npz"
    np.savez(path, t=np.arange(5.0), u=value, y=np.ones(5))
    with pytest.raises(DataError, match=match):
        load_log(path, time="t", inputs=["u"], outputs=["y"])


def test_npz_holding_a_single_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.npz"
    with path.open("wb") as stream:
        np.save(stream, np.arange(5.0))
    with pytest.raises(DataError, match="single array, not an NPZ archive"):
        load_log(path, time="t", outputs=["y"])


def test_mat_cell_array_is_not_numeric(tmp_path: Path) -> None:
    cells = np.empty((1, 3), dtype=object)
    cells[0, :] = [1.0, "a", 2.0]
    path = tmp_path / "log.mat"
    scipy.io.savemat(path, {"t": np.arange(3.0), "y": cells})
    with pytest.raises(DataError, match=r"column 'y' is not numeric \(dtype object\)"):
        load_log(path, time="t", outputs=["y"])


# --------------------------------------------------------------------------
# load_log: sampling
# --------------------------------------------------------------------------


def irregular_csv() -> str:
    times = [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8]
    return "t,y\n" + "".join(f"{t},{k}\n" for k, t in enumerate(times))


def test_irregular_sampling_warns_with_file_gap_and_row(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", irregular_csv())
    with pytest.warns(DataWarning) as record:
        log = load_log(path, time="t", outputs=["y"])
    assert len(record) == 1
    text = str(record[0].message)
    assert text.startswith(f"{path}: column 't' is irregularly sampled")
    assert "largest gap is 0.3 s, ending at row 4" in text
    assert record[0].filename == __file__  # stacklevel points at the caller
    np.testing.assert_allclose(log.t, [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8])


def test_strict_turns_irregular_sampling_into_the_same_error(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", irregular_csv())
    with pytest.warns(DataWarning) as record:
        load_log(path, time="t", outputs=["y"])
    with pytest.raises(DataError) as info:
        load_log(path, time="t", outputs=["y"], strict=True)
    assert str(info.value) == str(record[0].message)
    assert info.value.problems == [str(record[0].message)]


def test_strict_lists_irregular_sampling_among_other_problems(tmp_path: Path) -> None:
    text = irregular_csv().replace("0.7,5", "0.7,nan")
    path = write(tmp_path, "log.csv", text)
    with pytest.raises(DataError, match="2 problems") as info:
        load_log(path, time="t", outputs=["y"], strict=True)
    assert any("irregularly sampled" in problem for problem in info.value.problems)


def test_jitter_within_tolerance_is_regular(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    times = np.arange(200) * 1e-3 + rng.uniform(-1, 1, 200) * 1e-3 * IRREGULAR_RTOL / 3
    path = tmp_path / "log.npz"
    np.savez(path, t=times, y=np.ones(200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(path, time="t", outputs=["y"], strict=True)
    assert abs(log.dt - 1e-3) < 1e-5


def test_logs_with_dt_are_never_irregular(tmp_path: Path) -> None:
    path = write(tmp_path, "log.csv", "y\n1\n2\n3\n")
    assert load_log(path, dt=0.2, outputs=["y"], strict=True).dt == 0.2


def test_uppercase_extension_and_path_objects_work(tmp_path: Path) -> None:
    path = write(tmp_path, "LOG.CSV", regular_csv())
    copy = tmp_path / "copy.CSV"
    shutil.copy(path, copy)
    assert len(load_log(copy, time="t", outputs=["y"])) == 6
