"""Input/output logs: the :class:`Log` record and the checked loader.

A log holds times ``t`` (N,), inputs ``u`` (N, n_inputs), measured outputs
``z`` (N, n_outputs) and, when they were measured, states ``x``
(N, n_states). Row ``k`` of every array is the sample taken at ``t[k]``.
:func:`load_log` reads CSV, NPZ, MATLAB and whitespace text files, checks
only the columns asked for and reports every problem it finds in one
:class:`~phcontrol.errors.DataError`. It never drops, fills or resamples a
value: a log is used as recorded or not at all.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_keywords
from .errors import DataError, DataWarning, ShapeError

__all__ = ["Log", "load_log"]

logger = logging.getLogger(__name__)

#: A time step may differ from the median step by this fraction before the
#: sampling counts as irregular.
IRREGULAR_RTOL = 0.01

# --------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Log:
    """One recorded experiment: times, inputs, measured outputs and states.

    The arrays are copied to float64 on construction, so a ``Log`` never
    shares memory with the arrays it was built from.

    Parameters
    ----------
    t : array_like, shape (N,)
        Sample times in seconds.
    u : array_like, shape (N, n_inputs)
        Inputs; ``n_inputs`` may be 0 for an autonomous system.
    z : array_like, shape (N, n_outputs)
        Measured outputs.
    x : array_like, shape (N, n_states), optional
        Measured states, when the log has them.
    input_names, output_names, state_names : tuple of str, optional
        Column names; when left empty they become ``u0, u1, ...``,
        ``z0, ...`` and ``x0, ...``.
    source : str, optional
        Where the log came from: a file path or a dataset name.
    dt : float, optional
        Nominal sample step in seconds. By default (NaN or None) the median
        of ``diff(t)``.

    Raises
    ------
    ShapeError
        If an array has the wrong number of dimensions or rows, holds
        non-real values, or a names tuple does not match its array.
    ValueError
        If ``dt`` is not a positive finite number, or cannot be inferred
        because the log has fewer than two samples.

    See Also
    --------
    load_log : Read and check a log from a file.

    Examples
    --------
    >>> import numpy as np
    >>> from phcontrol.data import Log
    >>> t = np.arange(6) * 0.5
    >>> log = Log(t=t, u=np.zeros((6, 1)), z=np.ones((6, 1)), source="demo")
    >>> len(log), log.n_inputs, log.n_outputs, log.dt
    (6, 1, 1, 0.5)
    >>> train, test = log.split(0.5)
    >>> len(train), float(test.t[0])
    (3, 1.5)
    """

    t: NDArray[np.float64]
    u: NDArray[np.float64]
    z: NDArray[np.float64]
    x: NDArray[np.float64] | None = None
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    source: str = ""
    dt: float = field(default=math.nan)

    def __post_init__(self) -> None:
        t = _real_array(self.t, "t", ndim=1)
        n = t.shape[0]
        u = _real_array(self.u, "u", ndim=2, n_rows=n)
        z = _real_array(self.z, "z", ndim=2, n_rows=n)
        x = None if self.x is None else _real_array(self.x, "x", ndim=2, n_rows=n)
        set_ = object.__setattr__
        set_(self, "t", t)
        set_(self, "u", u)
        set_(self, "z", z)
        set_(self, "x", x)
        set_(self, "input_names", _names_for(self.input_names, "input_names", u, "u"))
        set_(
            self, "output_names", _names_for(self.output_names, "output_names", z, "z")
        )
        n_states = 0 if x is None else x.shape[1]
        set_(
            self,
            "state_names",
            _names_for(self.state_names, "state_names", np.empty((0, n_states)), "x"),
        )
        set_(self, "source", str(self.source))
        set_(self, "dt", _nominal_step(self.dt, t))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def __repr__(self) -> str:
        parts = [
            f"{self.source!r}",
            f"{len(self)} samples",
            f"dt={self.dt:.6g}",
            f"inputs={self.input_names}",
            f"outputs={self.output_names}",
        ]
        if self.x is not None:
            parts.append(f"states={self.state_names}")
        return f"Log({', '.join(parts)})"

    @property
    def n_inputs(self) -> int:
        """Number of input columns, ``u.shape[1]``."""
        return int(self.u.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of measured-output columns, ``z.shape[1]``."""
        return int(self.z.shape[1])

    @property
    def n_states(self) -> int:
        """Number of measured-state columns, 0 when ``x`` is None."""
        return 0 if self.x is None else int(self.x.shape[1])

    def slice(self, start: int = 0, stop: int | None = None) -> Log:
        """Return the samples ``start:stop`` as a new log.

        Times are kept as recorded, so a slice starts at ``t[start]``, not
        at zero. Negative indices count from the end, as in Python.

        Parameters
        ----------
        start : int, default 0
            First sample kept.
        stop : int, optional
            One past the last sample kept; by default the end of the log.

        Returns
        -------
        Log
            The ``stop - start`` samples, with the same names, source and
            ``dt``.

        Raises
        ------
        ShapeError
            If the range falls outside the log or ends before it starts
            (Python would silently clip it; a log slice does not).

        Examples
        --------
        >>> import numpy as np
        >>> from phcontrol.data import Log
        >>> log = Log(t=np.arange(10.0), u=np.zeros((10, 0)), z=np.ones((10, 1)))
        >>> part = log.slice(2, 5)
        >>> len(part), part.t.tolist()
        (3, [2.0, 3.0, 4.0])
        """
        n = len(self)
        lo = operator.index(start)
        hi = n if stop is None else operator.index(stop)
        lo_abs = lo + n if lo < 0 else lo
        hi_abs = hi + n if hi < 0 else hi
        if not 0 <= lo_abs <= hi_abs <= n:
            raise ShapeError(
                f"slice [{start}:{stop}] is outside this log of {n} samples; "
                f"choose 0 <= start <= stop <= {n} (negative values count "
                "from the end)"
            )
        rows = slice(lo_abs, hi_abs)
        return replace(
            self,
            t=self.t[rows],
            u=self.u[rows],
            z=self.z[rows],
            x=None if self.x is None else self.x[rows],
        )

    def split(self, fraction: float) -> tuple[Log, Log]:
        """Split into a leading part and the final ``fraction`` of samples.

        The last part has ``round(fraction * N)`` samples (halves round
        up); the first part has the rest. Typical use: hold out the last
        20% of a training record for validation with ``log.split(0.2)``.

        Parameters
        ----------
        fraction : float
            Share of the samples that goes to the last part, in (0, 1).

        Returns
        -------
        first, last : Log
            Contiguous, non-overlapping parts that together make this log.

        Raises
        ------
        ValueError
            If ``fraction`` is not strictly between 0 and 1.
        ShapeError
            If the split would leave one of the parts empty.

        Examples
        --------
        >>> import numpy as np
        >>> from phcontrol.data import Log
        >>> log = Log(t=np.arange(10.0), u=np.zeros((10, 1)), z=np.zeros((10, 1)))
        >>> train, val = log.split(0.2)
        >>> len(train), len(val)
        (8, 2)
        """
        frac = float(fraction)
        if not 0.0 < frac < 1.0:
            raise ValueError(
                f"fraction must lie strictly between 0 and 1; got {fraction!r}"
            )
        n = len(self)
        n_last = math.floor(frac * n + 0.5)
        if n_last == 0 or n_last == n:
            raise ShapeError(
                f"split({fraction!r}) of a log with {n} samples leaves one part "
                "empty; use a longer log or a fraction nearer 0.5"
            )
        return self.slice(0, n - n_last), self.slice(n - n_last, n)


def _real_array(
    value: ArrayLike, name: str, *, ndim: int, n_rows: int | None = None
) -> NDArray[np.float64]:
    """Copy ``value`` to a float64 array, checking dimensions and rows."""
    if np.iscomplexobj(value):
        raise ShapeError(f"`{name}` must be real; got complex values")
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as err:
        raise ShapeError(f"`{name}` must be an array of numbers; {err}") from err
    expected = "(N,)" if ndim == 1 else f"(N, n_{_COUNT_NAME[name]})"
    if array.ndim != ndim:
        hint = " (reshape one column with .reshape(-1, 1))" if ndim == 2 else ""
        raise ShapeError(
            f"`{name}` must have shape {expected}; got shape {array.shape}{hint}"
        )
    if n_rows is not None and array.shape[0] != n_rows:
        raise ShapeError(
            f"`{name}` must have one row per time in `t` ({n_rows} rows); "
            f"got shape {array.shape}"
        )
    return array


_COUNT_NAME = {"u": "inputs", "z": "outputs", "x": "states", "t": "samples"}


def _names_for(
    names: Sequence[str] | str, field_name: str, array: np.ndarray, prefix: str
) -> tuple[str, ...]:
    """Return ``names`` as a tuple matching the columns of ``array``."""
    given = (names,) if isinstance(names, str) else tuple(names)
    n_cols = array.shape[1]
    if not given:
        return tuple(f"{prefix}{k}" for k in range(n_cols))
    if not all(isinstance(name, str) for name in given):
        raise ShapeError(f"`{field_name}` must hold strings; got {given!r}")
    if len(given) != n_cols:
        raise ShapeError(
            f"`{field_name}` has {len(given)} names but `{prefix}` has {n_cols} "
            f"columns; give one name per column"
        )
    return given


def _nominal_step(dt: float | None, t: np.ndarray) -> float:
    """Return ``dt``, or the median step of ``t`` when ``dt`` is NaN."""
    if isinstance(dt, bool):
        raise ValueError(f"dt must be a positive number of seconds; got {dt!r}")
    step = math.nan if dt is None else float(dt)
    if math.isnan(step):
        if t.shape[0] < 2:
            raise ValueError(
                "dt cannot be inferred from fewer than 2 samples; pass dt= explicitly"
            )
        step = float(np.median(np.diff(t)))
    if not (math.isfinite(step) and step > 0):
        raise ValueError(
            f"dt must be a positive, finite step in seconds; got {step!r} (when "
            "inferred, it is the median of diff(t), so check that t increases)"
        )
    return step


# --------------------------------------------------------------------------
# Problem collection
# --------------------------------------------------------------------------


class _Unreadable(Exception):
    """Raised by a reader when nothing more can be checked in the file."""


@dataclass
class _Problems:
    """Every problem found in one file, in the order found."""

    label: str
    items: list[tuple[str | None, str]] = field(default_factory=list)
    own_remedy: bool = False
    no_rows: bool = False

    def add(self, text: str, column: str | None = None) -> None:
        """Record ``text``; with ``column``, it reads "column 'c' <text>"."""
        self.items.append((column, text))

    def columns(self) -> set[str]:
        """Columns that have at least one problem."""
        return {column for column, _ in self.items if column is not None}

    def full(self) -> list[str]:
        """One self-contained sentence per problem."""
        return [
            f"{self.label}: column {column!r} {text}"
            if column is not None
            else f"{self.label}: {text}"
            for column, text in self.items
        ]

    def error(self) -> DataError:
        """Build the exception: one summary line plus the full list."""
        parts: list[str] = []
        seen: dict[str, int] = {}
        for column, text in self.items:
            if column is None:
                parts.append(text)
            elif column in seen:
                parts[seen[column]] += f" and {text}"
            else:
                seen[column] = len(parts)
                parts.append(f"column {column!r} {text}")
        count = len(self.items)
        noun = "problem" if count == 1 else "problems"
        summary = f"{self.label}: {count} {noun}: " + "; ".join(parts)
        if not self.own_remedy:
            summary += "; fix the log or choose other columns"
        return DataError(summary, self.full())

    def fail(self, text: str) -> DataError:
        """Build the exception for a file that cannot be read at all."""
        self.own_remedy = True
        self.add(text)
        return self.error()


# --------------------------------------------------------------------------
# Readers: each returns (available names, {wanted name: raw array})
# --------------------------------------------------------------------------

_Reader = Callable[
    [Path, Sequence[str], _Problems], tuple[list[str], dict[str, np.ndarray]]
]


CSV_CHUNK_ROWS = 100_000
"""Rows a CSV is read in at a time: the text of the whole file is never held."""


def _read_csv(
    path: Path, wanted: Sequence[str], problems: _Problems
) -> tuple[list[str], dict[str, np.ndarray]]:
    import pandas as pd

    # Every cell is read as text, so that a bad cell in a column nobody asked
    # for cannot fail the read; a row with more fields than the header can.
    # The file is streamed in chunks of CSV_CHUNK_ROWS rows and only the
    # wanted columns of each chunk are kept, so a large log costs the memory
    # of those columns, not of the whole table.
    options = {"dtype": str, "na_filter": False, "skipinitialspace": True}
    parts: dict[str, list[np.ndarray]] = {}
    n_rows = 0
    try:
        header = pd.read_csv(path, nrows=0, index_col=False, **options)
        available = [str(name) for name in header.columns]
        use = [name for name in wanted if name in available]
        parts = {name: [] for name in use}
        with pd.read_csv(
            path, index_col=False, chunksize=CSV_CHUNK_ROWS, **options
        ) as chunks:
            for frame in chunks:
                n_rows += len(frame)
                for name in use:
                    parts[name].append(frame[name].to_numpy(dtype=str))
    except pd.errors.EmptyDataError as err:
        raise _Unreadable(
            "has no header line; the first line must name the columns"
        ) from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise _Unreadable(f"could not be read as CSV ({_first_line(err)})") from err
    if n_rows == 0:
        problems.no_rows = True
        problems.add("has a header but no data rows")
    return available, {
        name: np.concatenate(chunks) if chunks else np.empty(0, dtype=str)
        for name, chunks in parts.items()
    }


def _read_text(
    path: Path, wanted: Sequence[str], problems: _Problems
) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise _Unreadable(f"could not be read as text ({_first_line(err)})") from err
    header = lines[0].strip() if lines else ""
    if not header.startswith(("%", "#")):
        raise _Unreadable(
            "has no header; its first line must be '%' or '#' followed by the "
            "column names, for example '% t theta omega'"
        )
    names = header[1:].split()
    if not names:
        raise _Unreadable("has a header line that names no columns")
    rows = [
        line.split()
        for line in lines[1:]
        if line.strip() and not line.lstrip().startswith(("%", "#"))
    ]
    if not rows:
        problems.no_rows = True
        problems.add("has a header but no data rows")
        return names, {name: np.empty(0, dtype=str) for name in wanted if name in names}
    width = len(rows[0])
    if width == len(names) + 2:
        names = ["trial", "t", *names]
    elif width != len(names):
        raise _Unreadable(
            f"has {width} fields in its first data row but its header names "
            f"{len(names)} columns; rows must have {len(names)} fields, or "
            f"{len(names) + 2} with 'trial t' first"
        )
    ragged = [k for k, row in enumerate(rows) if len(row) != width]
    if ragged:
        raise _Unreadable(
            f"has {len(ragged)} rows with other than {width} fields (first at "
            f"row {ragged[0]}: {len(rows[ragged[0]])} fields)"
        )
    table = np.array(rows, dtype=str)
    index = {name: k for k, name in enumerate(names)}
    return names, {name: table[:, index[name]] for name in wanted if name in index}


def _read_npz(
    path: Path, wanted: Sequence[str], problems: _Problems
) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise _Unreadable(f"could not be read as NPZ ({_first_line(err)})") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _Unreadable(
            "holds a single array, not an NPZ archive of named arrays; save "
            "it with numpy.savez(path, t=..., u=...)"
        )
    raw: dict[str, np.ndarray] = {}
    with archive:
        available = list(archive.files)
        for name in wanted:
            if name not in available:
                continue
            try:
                raw[name] = archive[name]
            except Exception as err:  # damaged bytes surface as many types
                if isinstance(err, ValueError) and "allow_pickle" in str(err):
                    problems.add(
                        "is an object array, which is not loaded (it would "
                        "need pickle); store plain numbers",
                        name,
                    )
                    continue
                raise _Unreadable(
                    f"has a damaged member {name!r} ({_first_line(err)})"
                ) from err
    return available, raw


def _read_mat(
    path: Path, wanted: Sequence[str], problems: _Problems
) -> tuple[list[str], dict[str, np.ndarray]]:
    import scipy.io

    try:
        available = [entry[0] for entry in scipy.io.whosmat(str(path))]
        use = [name for name in wanted if name in available]
        contents = scipy.io.loadmat(str(path), variable_names=use) if use else {}
    except NotImplementedError as err:
        raise _Unreadable(
            "is a MATLAB v7.3 (HDF5) file, which this loader does not read; "
            "re-save it in MATLAB with save(name, '-v7') or export a CSV"
        ) from err
    except Exception as err:  # scipy raises many kinds on a damaged file
        raise _Unreadable(
            f"could not be read as a MATLAB file ({_first_line(err)})"
        ) from err
    return available, {name: contents[name] for name in use}


_READERS: dict[str, _Reader] = {
    ".csv": _read_csv,
    ".txt": _read_text,
    ".dat": _read_text,
    ".npz": _read_npz,
    ".mat": _read_mat,
}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


# --------------------------------------------------------------------------
# Column checks
# --------------------------------------------------------------------------


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _column_values(
    name: str, raw: np.ndarray, problems: _Problems
) -> NDArray[np.float64] | None:
    """Convert one raw column to float64, recording every bad cell."""
    vector = _as_vector(raw)
    if vector is None:
        problems.add(
            f"has shape {raw.shape}; expected a vector: (N,), (1, N) or (N, 1)",
            name,
        )
        return None
    kind = vector.dtype.kind
    if kind in "US":
        values, empty, text = _parse_strings(vector)
        if empty.any():
            rows = np.flatnonzero(empty)
            problems.add(
                f"has {_count(rows.size, 'empty cell')} (first at row {rows[0]})",
                name,
            )
        if text.any():
            rows = np.flatnonzero(text)
            problems.add(
                f"has {_count(rows.size, 'non-numeric cell')} (first at row "
                f"{rows[0]}: {str(vector[rows[0]]).strip()[:20]!r})",
                name,
            )
        checked = ~(empty | text)
    elif kind in "biuf":
        values = vector.astype(np.float64)
        checked = np.ones(values.shape, dtype=bool)
    elif kind == "c":
        problems.add("holds complex numbers; store the real signal", name)
        return None
    else:
        problems.add(
            f"is not numeric (dtype {vector.dtype}); store plain numbers", name
        )
        return None
    bad = np.flatnonzero(checked & ~np.isfinite(values))
    if bad.size:
        problems.add(
            f"has {_count(bad.size, 'non-finite value')} (first at row {bad[0]})",
            name,
        )
    return values


def _parse_strings(
    raw: np.ndarray,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Parse text cells: values, mask of empty cells, mask of non-numbers."""
    strings = np.char.strip(raw.astype(str))
    empty = strings == ""
    text = np.zeros(strings.shape, dtype=bool)
    try:
        return strings.astype(np.float64), empty, text
    except ValueError:
        pass
    values = np.full(strings.shape, np.nan)
    for k, cell in enumerate(strings.tolist()):
        if not cell:
            continue
        try:
            values[k] = float(cell)
        except ValueError:
            text[k] = True
    return values, empty, text


def _as_vector(raw: np.ndarray) -> np.ndarray | None:
    """Return a (N,), (1, N), (N, 1) or scalar array as (N,); else None."""
    if raw.ndim <= 1:
        return raw.reshape(-1)
    if raw.ndim == 2 and 1 in raw.shape:
        return raw.reshape(-1)
    return None


def _check_time(name: str, t: np.ndarray, problems: _Problems) -> None:
    steps = np.diff(t)
    back = np.flatnonzero(steps < 0) + 1
    same = np.flatnonzero(steps == 0) + 1
    if back.size:
        problems.add(
            f"is not increasing (first at row {back[0]}; "
            f"{_count(back.size, 'step')} back in time)",
            name,
        )
    if same.size:
        problems.add(
            f"has {_count(same.size, 'duplicate time')} (first at row {same[0]})",
            name,
        )


def _irregularity(name: str, t: np.ndarray) -> str | None:
    """Describe irregular sampling of ``t``, or return None if regular."""
    if t.shape[0] < 3:
        return None
    steps = np.diff(t)
    median = float(np.median(steps))
    off = np.abs(steps - median) > IRREGULAR_RTOL * median
    if not off.any():
        return None
    longest = int(np.argmax(steps))
    shortest = int(np.argmin(steps))
    text = (
        f"column {name!r} is irregularly sampled: {int(off.sum())} of "
        f"{steps.size} steps differ from the median step {median:.6g} s by "
        f"more than {IRREGULAR_RTOL:.0%}; the largest gap is "
        f"{steps[longest]:.6g} s, ending at row {longest + 1}"
    )
    if off[shortest]:
        text += f", the shortest step {steps[shortest]:.6g} s, at row {shortest + 1}"
    return text + (
        "; a model with one fixed dt is wrong across such steps, so check the "
        "log or cut it into regular pieces with Log.slice"
    )


# --------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------


@check_keywords
def load_log(
    path: str | os.PathLike[str],
    *,
    time: str | None = None,
    dt: float | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    states: Sequence[str] = (),
    strict: bool = False,
    min_samples: int = 2,
    max_bytes: int = 2**31,
) -> Log:
    """Read an input/output log from a file and check the columns asked for.

    Only the named columns are checked, so unrelated columns (an empty
    trailing column, a scalar stored in the first row only) never get in
    the way. All problems are collected before anything is raised.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` file whose header names the columns; an ``.npz`` archive
        or a MATLAB ``.mat`` file (v4 to v7) whose variables are the
        columns, as vectors of shape (N,), (1, N) or (N, 1); or a
        whitespace ``.txt``/``.dat`` file whose first line is ``%`` or ``#``
        followed by the column names. In a text file whose rows have two
        more fields than the header names, the first two are named
        ``trial`` and ``t`` (the layout of the Schmidt and Lipson logs).
    time : str, optional
        Name of the time column, in seconds. Give exactly one of ``time``
        and ``dt``.
    dt : float, optional
        Fixed step in seconds, for logs without a time column; then
        ``t = arange(N) * dt``.
    inputs : sequence of str, default ()
        Input columns, in order; empty for an autonomous system.
    outputs : sequence of str, default ()
        Measured-output columns. At least one of ``outputs`` and ``states``
        must name a column; with no outputs, the states are also the
        measured outputs (``z`` equals ``x``).
    states : sequence of str, default ()
        Measured-state columns, when the log has the full state.

    Returns
    -------
    Log
        ``t`` (N,), ``u`` (N, len(inputs)), ``z`` (N, len(outputs)) and
        ``x`` (N, len(states)) or None; ``source`` is ``path`` and ``dt``
        the median step.

    Other Parameters
    ----------------
    strict : bool, default False
        Raise a :class:`~phcontrol.errors.DataError` instead of warning
        about irregular sampling.
    min_samples : int, default 2
        Fewest samples accepted; at least 2.
    max_bytes : int, default 2**31
        Files larger than this (2 GiB by default) are refused before they
        are read, with their size in the message. A CSV below it is read in
        chunks of ``CSV_CHUNK_ROWS`` rows, keeping only the wanted columns.

    Raises
    ------
    DataError
        If the file is missing, too large, unreadable, empty or has only a
        header; or if an asked-for column is missing, holds empty,
        non-numeric or non-finite cells, differs in length from the others;
        or if the times are not increasing or repeat; or if there are fewer
        than ``min_samples`` samples. The message is one summary line; the
        ``problems`` attribute lists every problem with its file, column and
        first bad row.
    TypeError
        If neither or both of ``time`` and ``dt`` are given, or a name is
        not a string.
    ValueError
        If ``dt``, ``min_samples`` or ``max_bytes`` is out of range, no
        output or state column is named, or a column is named twice.

    Warns
    -----
    DataWarning
        If the sampling is irregular, that is, a step differs from the
        median step by more than 1% (``IRREGULAR_RTOL``); the warning names
        the largest gap and its row. ``strict=True`` makes this an error
        with the same text.

    Notes
    -----
    Rows are counted from 0 at the first data row (line 2 of a CSV file,
    sample 0 of a MATLAB or NPZ vector). Nothing is dropped, filled or
    resampled: a log with a problem is refused, not repaired.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from phcontrol.data import load_log
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = path.write_text("t,u,y,note,\\n0.0,1.0,0.0,first,\\n0.5,1.0,0.4,,\\n")
    >>> log = load_log(path, time="t", inputs=["u"], outputs=["y"])
    >>> log.u.shape, log.z.shape, log.dt
    ((2, 1), (2, 1), 0.5)
    """
    input_cols = _column_names(inputs, "inputs")
    output_cols = _column_names(outputs, "outputs")
    state_cols = _column_names(states, "states")
    _check_arguments(time, dt, output_cols, state_cols, min_samples, max_bytes)
    label = os.fspath(path)
    file = Path(label)
    problems = _Problems(label)
    wanted = list(dict.fromkeys([*([time] if time else []), *input_cols]))
    wanted = list(dict.fromkeys([*wanted, *output_cols, *state_cols]))

    raw = _read_file(file, wanted, problems, max_bytes)
    values = {name: _column_values(name, raw[name], problems) for name in raw}
    n = _check_lengths(values, problems)
    if n is not None and n < min_samples and not problems.no_rows:
        problems.add(
            f"has {_count(n, 'sample')}; at least {min_samples} are needed "
            "(min_samples)"
        )
    irregular = None
    t_values = values.get(time) if time else None
    if time and t_values is not None:
        _check_time(time, t_values, problems)
        if time not in problems.columns():
            irregular = _irregularity(time, t_values)
    if irregular and strict:
        if not problems.items:
            text = f"{label}: {irregular}"
            raise DataError(text, [text])
        problems.add(irregular)
    if problems.items:
        raise problems.error()
    if irregular:
        warnings.warn(f"{label}: {irregular}", DataWarning, stacklevel=3)

    assert n is not None  # every wanted column was read, else an error was raised
    columns = {name: v for name, v in values.items() if v is not None}
    step = math.nan if dt is None else float(dt)
    t = columns[time] if time is not None else np.arange(n) * step
    x = np.column_stack([columns[c] for c in state_cols]) if state_cols else None
    if output_cols:
        z = np.column_stack([columns[c] for c in output_cols])
    else:
        assert x is not None  # _check_arguments asks for outputs or states
        z = x
    if input_cols:
        u = np.column_stack([columns[c] for c in input_cols])
    else:
        u = np.empty((n, 0))
    log = Log(
        t=t,
        u=u,
        z=z,
        x=x,
        input_names=input_cols,
        output_names=output_cols or state_cols,
        state_names=state_cols,
        source=label,
        dt=step,
    )
    logger.debug("loaded %r", log)
    return log


def _column_names(names: Sequence[str] | str, argument: str) -> tuple[str, ...]:
    given = (names,) if isinstance(names, str) else tuple(names)
    for name in given:
        if not isinstance(name, str):
            raise TypeError(f"{argument}= must be column names (strings); got {name!r}")
        if not name:
            raise ValueError(f"{argument}= holds an empty column name")
    repeated = sorted({name for name in given if given.count(name) > 1})
    if repeated:
        raise ValueError(f"{argument}= names {repeated} more than once")
    return given


def _check_arguments(
    time: str | None,
    dt: float | None,
    outputs: tuple[str, ...],
    states: tuple[str, ...],
    min_samples: int,
    max_bytes: int,
) -> None:
    if (time is None) == (dt is None):
        got = "neither" if time is None else "both"
        raise TypeError(
            "load_log() needs exactly one of time= (the name of the time "
            f"column) and dt= (the fixed step in seconds); got {got}"
        )
    if time is not None and not isinstance(time, str):
        raise TypeError(f"time= must be a column name (a string); got {time!r}")
    if dt is not None:
        if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)):
            raise TypeError(f"dt= must be a number of seconds; got {dt!r}")
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(
                f"dt= must be a positive, finite step in seconds; got {dt!r}"
            )
    if not outputs and not states:
        raise ValueError(
            "load_log() needs at least one measured column: name it in "
            "outputs= or states="
        )
    if isinstance(min_samples, bool) or operator.index(min_samples) < 2:
        raise ValueError(f"min_samples= must be an integer >= 2; got {min_samples!r}")
    if isinstance(max_bytes, bool) or operator.index(max_bytes) < 1:
        raise ValueError(f"max_bytes= must be a positive integer; got {max_bytes!r}")


def _size(n: int) -> str:
    """``n`` bytes, with binary units beside the count from 1 KiB up."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{n} bytes ({value:.3g} {unit})"


def _read_file(
    file: Path, wanted: list[str], problems: _Problems, max_bytes: int
) -> dict[str, np.ndarray]:
    """Read the wanted columns; raise at once if the file cannot be read."""
    if not file.exists():
        raise problems.fail(
            f"file not found (looked at {file.absolute()}); check the path"
        )
    if not file.is_file():
        raise problems.fail("is not a regular file; pass the path of a log file")
    size = file.stat().st_size
    if size > max_bytes:
        raise problems.fail(
            f"file is {_size(size)}, over the limit of {_size(max_bytes)}; "
            "raise the limit if you trust the file "
            "(max_bytes= in Python, --max-bytes on the command line) or split it "
            "into shorter logs"
        )
    if size == 0:
        raise problems.fail(
            "file is empty (0 bytes); a log needs a header line naming the "
            "columns, then one row per sample"
        )
    reader = _READERS.get(file.suffix.lower())
    if reader is None:
        raise problems.fail(
            f"has the unsupported extension {file.suffix!r}; use one of "
            + ", ".join(_READERS)
        )
    try:
        available, raw = reader(file, wanted, problems)
    except _Unreadable as err:
        raise problems.fail(str(err)) from err.__cause__
    missing = [name for name in wanted if name not in available]
    if missing:
        shown = [name for name in available if not name.startswith("Unnamed: ")]
        problems.add(
            f"{'column' if len(missing) == 1 else 'columns'} "
            f"{', '.join(map(repr, missing))} not found; available: "
            f"{', '.join(map(repr, shown)) or 'none'}"
        )
    return raw


def _check_lengths(
    values: dict[str, NDArray[np.float64] | None], problems: _Problems
) -> int | None:
    """Record columns whose length differs from the first; return that length."""
    lengths = {name: v.shape[0] for name, v in values.items() if v is not None}
    if not lengths:
        return None
    reference, n = next(iter(lengths.items()))
    for name, length in lengths.items():
        if length != n:
            problems.add(
                f"has {_count(length, 'sample')} but {reference!r} has {n} "
                f"(first unmatched row {min(length, n)})",
                name,
            )
    return n
