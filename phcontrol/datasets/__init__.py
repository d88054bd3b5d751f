"""Real measured logs shipped with phcontrol, with their benchmark protocols.

Four logs are bundled as compressed NPZ files, so they load offline:
``silverbox`` (an electronic Duffing oscillator), ``emps`` (a prismatic
robot joint), ``cascaded_tanks`` (two water tanks with overflow) and
``real_pendulum`` (a freely swinging pendulum, motion-tracked). Each comes
with the splits, initial-state window, metric and published results of its
protocol, and a note giving its origin, citation and terms of use. Every
array is checked against the SHA-256 recorded here before it is used.
Signals are in SI units as recorded (V, m, rad); ``unit_scale`` converts an
error to the unit the benchmark reports in.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.resources
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..data import Log
from ..errors import DataError

__all__ = ["Dataset", "load", "names"]

#: Silverbox sample step: 2**14 periods of its 10 MHz clock, 1.6384 ms.
SILVERBOX_DT = 2**14 / 10e6

# SHA-256 of each bundled array's float64 little-endian bytes (C order).
# Regenerate with ``python -m phcontrol.datasets._build DATA_DIR``.
_SHA256: dict[str, dict[str, str]] = {
    "silverbox": {
        "u": "6a809428f7729f6cfe07b0ddff3b01c424bb208a9295bff49f76d48791d55b2a",
        "y": "ee2426d9392a2a22cdaed471647cdc2b27ee30ae1650ae3ffb9fb2593a68013d",
    },
    "emps": {
        "train_t": "01ac14cb06feef354cad234345d6c155241651ef2bab63d5738ba4bcfe827bc9",
        "train_u": "3baac79835638a982131b4799c78f26793fe8e58152d6e2cd3864267c07ed1e8",
        "train_y": "bea00362b958c9c0edd913a9828a48da7d2a94994d96c32af07d8ca4d28a11ea",
        "test_t": "002346117e9653dead4f61a2ed936c37d44d1fbde40429fd904ed3e5f55c25e0",
        "test_u": "671f8d393b33f6e8a90ae56927f6065007e98e4edb9437f6c8f1a2b1e7b79477",
        "test_y": "15b8c7cb4506311c6fd693e7309c07dd317195250cce59314b77f485da2d37b2",
        "gtau": "b25d44ebe5dca2a68d82588b40de09756e049175dd5e8d11a5f88236de1bc4da",
        "kp": "51109d23d042df826f39c3bdcb3578a7f1bc2e87d1b5e85e96569ac76c255f95",
        "kv": "e71e979ce6f755ab6ca02a25b5f672faef5ca5e452d67c752bb918f911df4876",
    },
    "cascaded_tanks": {
        "train_u": "ffdca91e076b677313573217aeb237615763961a23901711658979e840554751",
        "train_y": "b0d315dc0d98be4d8ff21ebdda8e3bef3ceeab911849021c93dc228468ff9200",
        "test_u": "3fc2c421f1fd55d8fde1ba1f4448941cab0ab9e40f938dcde34509851fa305d0",
        "test_y": "fb13204645cb4330580555a803e101a659cc9dc7be868d09af6bde6c2c7be17d",
    },
    "real_pendulum": {
        "t": "6c511adf66c2f56f384f32b9aea816a0a4e0c99c7d62751d47ab2c6a57b459d7",
        "theta": "65178bac6384806453f8f45ec987ea598e2a3f723b50bd175e7edc15d237333e",
        "omega": "d356c1b95078fedb464dc2897f34a32891c99500f8bee7d89b1bef66a4fdb943",
    },
}

_DATA_DIR: Any = importlib.resources.files(__name__)

_CITATIONS = {
    "silverbox": (
        'T. Wigren and J. Schoukens, "Three free data sets for development and '
        'benchmarking in nonlinear system identification", European Control '
        "Conference (ECC), Zurich, 2013, pp. 2933-2938."
    ),
    "emps": (
        'A. Janot, M. Gautier and M. Brunot, "Data set and reference models of '
        'EMPS", Workshop on Nonlinear System Identification Benchmarks, '
        "Eindhoven, 2019."
    ),
    "cascaded_tanks": (
        'M. Schoukens, P. Mattsson, T. Wigren and J.-P. Noel, "Cascaded tanks '
        'benchmark combining soft and hard nonlinearities", Workshop on '
        "Nonlinear System Identification Benchmarks, Brussels, 2016, pp. 20-23."
    ),
    "real_pendulum": (
        'M. Schmidt and H. Lipson, "Distilling free-form natural laws from '
        'experimental data", Science 324(5923):81-85, 2009, supplementary data.'
    ),
}


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A bundled log with the protocol it is benchmarked on.

    Parameters
    ----------
    name : str
        The name :func:`load` knows it by.
    log : Log
        The whole training record; for ``silverbox`` and ``real_pendulum``,
        the whole recording, which the splits are cut from.
    splits : dict of str to Log
        ``"train"``, ``"val"`` (except ``real_pendulum``) and the test sets.
        Each split keeps its recorded times; its ``source`` is
        ``"<name>:<split>"``.
    test_sets : tuple of str
        The keys of ``splits`` that are official test sets.
    init_window : int
        Leading samples of a test set (inputs and outputs) that may be used
        to set the initial state; the metric skips them.
    metric : str
        ``"rmse"``: simulation RMSE of the outputs after ``init_window``;
        ``"energy_mse"`` for ``real_pendulum`` (see its note).
    unit : str
        Unit the benchmark reports the metric in (``"mV"``, ``"mm"``,
        ``"V"``; empty for the pendulum's energy MSE).
    unit_scale : float
        Factor from the log's SI unit to ``unit``: multiply an RMSE computed
        on the log by it (1000 for mV and mm).
    citation : str
        The reference to cite when using the data.
    source_note : str
        Origin, citation, terms and split, as Markdown.
    published : dict of str to dict of str to float
        Published results on this protocol, ``published[test_set][method]``,
        in ``unit``.
    metadata : dict of str to Any
        Other facts about the log, such as the EMPS drive gain ``gtau``.

    Examples
    --------
    >>> from phcontrol import datasets
    >>> tanks = datasets.load("cascaded_tanks")
    >>> len(tanks.splits["test"]), tanks.init_window, tanks.unit
    (1024, 50, 'V')
    """

    name: str
    log: Log
    splits: dict[str, Log]
    test_sets: tuple[str, ...]
    init_window: int
    metric: str
    unit: str
    unit_scale: float
    citation: str
    source_note: str
    published: dict[str, dict[str, float]]
    metadata: dict[str, Any]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{key}={len(log)}" for key, log in self.splits.items())
        return f"Dataset({self.name!r}, splits: {sizes})"


def names() -> tuple[str, ...]:
    """Return the names of the bundled datasets.

    Returns
    -------
    tuple of str
        Names accepted by :func:`load`.

    Examples
    --------
    >>> from phcontrol import datasets
    >>> datasets.names()
    ('silverbox', 'emps', 'cascaded_tanks', 'real_pendulum')
    """
    return tuple(_BUILDERS)


def load(name: str) -> Dataset:
    """Load a bundled dataset and its protocol.

    Parameters
    ----------
    name : str
        One of :func:`names`.

    Returns
    -------
    Dataset
        The log, its splits, metric and published results.

    Raises
    ------
    ValueError
        If ``name`` is not a bundled dataset; the message lists them.
    DataError
        If a bundled file is missing or damaged, or an array's SHA-256
        differs from the one recorded in this module.

    Examples
    --------
    >>> from phcontrol import datasets
    >>> silverbox = datasets.load("silverbox")
    >>> silverbox.test_sets
    ('test_multisine', 'test_arrow_full', 'test_arrow_no_extrapolation')
    >>> len(silverbox.splits["test_arrow_full"])
    40475
    """
    if name not in _BUILDERS:
        close = difflib.get_close_matches(str(name), _BUILDERS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"no bundled dataset is called {name!r}; {hint}available: "
            + ", ".join(map(repr, _BUILDERS))
        )
    arrays = _read_bundle(name)
    note = (_DATA_DIR / f"{name}.md").read_text(encoding="utf-8")
    return _BUILDERS[name](arrays, note)


def _array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's float64 little-endian bytes in C order."""
    data = np.ascontiguousarray(array, dtype="<f8")
    return hashlib.sha256(data.tobytes()).hexdigest()


def _read_bundle(name: str) -> dict[str, np.ndarray]:
    """Read ``<name>.npz`` and check every array against the registry."""
    file = f"{name}.npz"
    remedy = (
        "reinstall phcontrol, or rebuild the file with "
        "`python -m phcontrol.datasets._build DATA_DIR`"
    )
    try:
        with (_DATA_DIR / file).open("rb") as stream:
            with np.load(stream, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError as err:
        raise DataError(f"bundled file {file} is missing; {remedy}") from err
    except Exception as err:  # damaged bytes surface as many exception types
        raise DataError(f"bundled file {file} is damaged ({err}); {remedy}") from err
    expected = _SHA256[name]
    problems = [
        f"{file}: array {key!r} is missing" for key in expected if key not in arrays
    ]
    problems += [
        f"{file}: array {key!r} is not in the registry"
        for key in arrays
        if key not in expected
    ]
    for key, array in arrays.items():
        if key not in expected:
            continue
        if array.dtype != np.float64:
            problems.append(f"{file}: array {key!r} is {array.dtype}, not float64")
        elif _array_sha256(array) != expected[key]:
            problems.append(f"{file}: array {key!r} fails its SHA-256 check")
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise DataError(
            f"bundled file {file} is corrupted ({count}: {problems[0]}); {remedy}",
            problems,
        )
    return arrays


def _split_logs(name: str, logs: dict[str, Log]) -> dict[str, Log]:
    return {key: replace(log, source=f"{name}:{key}") for key, log in logs.items()}


def _silverbox(arrays: dict[str, np.ndarray], note: str) -> Dataset:
    n = arrays["u"].shape[0]
    log = Log(
        t=np.arange(n) * SILVERBOX_DT,
        u=arrays["u"][:, None],
        z=arrays["y"][:, None],
        input_names=("u",),
        output_names=("y",),
        source="silverbox",
        dt=SILVERBOX_DT,
    )
    block_start, block_stop, n_estimation = 40650, 127400, 65062
    train, val = log.slice(block_start, block_start + n_estimation).split(0.2)
    arrow = log.slice(100, 40575)
    splits = {
        "train": train,
        "val": val,
        "test_multisine": log.slice(block_start + n_estimation, block_stop),
        "test_arrow_full": arrow,
        "test_arrow_no_extrapolation": arrow.slice(0, 32000),
    }
    return Dataset(
        name="silverbox",
        log=log,
        splits=_split_logs("silverbox", splits),
        test_sets=("test_multisine", "test_arrow_full", "test_arrow_no_extrapolation"),
        init_window=50,
        metric="rmse",
        unit="mV",
        unit_scale=1000.0,
        citation=_CITATIONS["silverbox"],
        source_note=note,
        published={
            "test_multisine": {
                "linear state space": 6.96,
                "polynomial NARX": 0.640,
                "LSTM": 1.50,
                "GP-NARX": 0.301,
                "SUBNET": 0.36,
            },
            "test_arrow_full": {
                "linear state space": 14.4,
                "polynomial NARX": 2.25,
                "LSTM": 2.68,
                "GP-NARX": 0.60,
                "SUBNET": 1.4,
            },
            "test_arrow_no_extrapolation": {
                "linear state space": 6.58,
                "polynomial NARX": 0.571,
                "LSTM": 0.960,
                "GP-NARX": 0.259,
                "SUBNET": 0.32,
            },
        },
        metadata={"sampling_frequency_hz": 1.0 / SILVERBOX_DT, "noise_floor_mV": 0.21},
    )


def _emps(arrays: dict[str, np.ndarray], note: str) -> Dataset:
    step = 1e-3
    records = {
        split: Log(
            t=arrays[f"{split}_t"],
            u=arrays[f"{split}_u"][:, None],
            z=arrays[f"{split}_y"][:, None],
            input_names=("u",),
            output_names=("y",),
            source="emps",
            dt=step,
        )
        for split in ("train", "test")
    }
    train, val = records["train"].split(0.2)
    return Dataset(
        name="emps",
        log=records["train"],
        splits=_split_logs(
            "emps", {"train": train, "val": val, "test": records["test"]}
        ),
        test_sets=("test",),
        init_window=20,
        metric="rmse",
        unit="mm",
        unit_scale=1000.0,
        citation=_CITATIONS["emps"],
        source_note=note,
        published={
            "test": {
                "linear state space": 5.53,
                "polynomial NARX": 5.17,
                "CT SUBNET": 4.61,
                "dynoNet": 2.64,
            }
        },
        metadata={
            "gtau": float(arrays["gtau"].item()),
            "kp": float(arrays["kp"].item()),
            "kv": float(arrays["kv"].item()),
        },
    )


def _cascaded_tanks(arrays: dict[str, np.ndarray], note: str) -> Dataset:
    step = 4.0
    records = {}
    for split in ("train", "test"):
        n = arrays[f"{split}_u"].shape[0]
        records[split] = Log(
            t=np.arange(n) * step,
            u=arrays[f"{split}_u"][:, None],
            z=arrays[f"{split}_y"][:, None],
            input_names=("u",),
            output_names=("y",),
            source="cascaded_tanks",
            dt=step,
        )
    train, val = records["train"].split(0.2)
    splits = {"train": train, "val": val, "test": records["test"]}
    return Dataset(
        name="cascaded_tanks",
        log=records["train"],
        splits=_split_logs("cascaded_tanks", splits),
        test_sets=("test",),
        init_window=50,
        metric="rmse",
        unit="V",
        unit_scale=1.0,
        citation=_CITATIONS["cascaded_tanks"],
        source_note=note,
        published={
            "test": {
                "linear state space": 0.588,
                "polynomial NARX": 0.413,
                "SUBNET": 0.37,
                "CT SUBNET": 0.306,
                "stable pHNN (median of 20 seeds)": 0.321,
                "grey-box with overflow model": 0.191,
            }
        },
        metadata={"sensor_saturation_V": 10.0},
    )


def _real_pendulum(arrays: dict[str, np.ndarray], note: str) -> Dataset:
    states = np.column_stack([arrays["theta"], arrays["omega"]])
    n = states.shape[0]
    log = Log(
        t=arrays["t"],
        u=np.empty((n, 0)),
        z=states,
        x=states,
        output_names=("theta", "omega"),
        state_names=("theta", "omega"),
        source="real_pendulum",
        dt=1.0 / 6.0,
    )
    # Cut where the HNN split puts its test block, so that the test slice's
    # forward differences are exactly that paper's test points.
    cut = int(0.8 * (n - 1))
    splits = {"train": log.slice(0, cut), "test": log.slice(cut, n)}
    return Dataset(
        name="real_pendulum",
        log=log,
        splits=_split_logs("real_pendulum", splits),
        test_sets=("test",),
        init_window=1,
        metric="energy_mse",
        unit="",
        unit_scale=1.0,
        citation=_CITATIONS["real_pendulum"],
        source_note=note,
        published={"test": {"HNN": 1.45e-2, "baseline MLP": 3.86e-1, "DGNet": 4.92e-4}},
        metadata={
            "energy": "H = 2.4 (1 - cos theta) + omega**2",
            "energy_coefficient": 2.4,
            "published_derivative_mse": {"HNN": 5.96e-3, "baseline MLP": 2.19e-3},
        },
    )


_BUILDERS = {
    "silverbox": _silverbox,
    "emps": _emps,
    "cascaded_tanks": _cascaded_tanks,
    "real_pendulum": _real_pendulum,
}
