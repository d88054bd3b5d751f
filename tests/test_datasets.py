"""Tests for phcontrol.datasets: the bundled logs and their protocols."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _paths import SHARED_DATA

from phcontrol import datasets
from phcontrol.data import Log
from phcontrol.datasets import _build
from phcontrol.errors import DataError

PACKAGE_DIR = Path(datasets.__file__).parent


def test_names_lists_the_four_bundled_logs() -> None:
    assert datasets.names() == ("silverbox", "emps", "cascaded_tanks", "real_pendulum")


@pytest.mark.parametrize("name", datasets.names())
def test_each_dataset_loads_with_its_protocol(name: str) -> None:
    data = datasets.load(name)
    assert data.name == name
    assert isinstance(data.log, Log)
    assert set(data.test_sets) <= set(data.splits)
    assert set(data.published) <= set(data.test_sets)
    assert data.init_window >= 1
    assert data.unit_scale > 0
    assert data.citation.split(",")[0] in data.source_note
    assert "Origin" in data.source_note and "Terms" in data.source_note
    for key, split in data.splits.items():
        assert split.source == f"{name}:{key}"
        assert split.dt == data.log.dt
        assert np.isfinite(split.z).all() and np.isfinite(split.u).all()
        assert np.all(np.diff(split.t) > 0)


def test_silverbox_splits_follow_the_protocol() -> None:
    data = datasets.load("silverbox")
    splits = data.splits
    sizes = {key: len(log) for key, log in splits.items()}
    assert sizes == {
        "train": 52050,
        "val": 13012,
        "test_multisine": 21688,
        "test_arrow_full": 40475,
        "test_arrow_no_extrapolation": 32000,
    }
    dt = 2**14 / 10e6
    assert data.log.dt == dt and len(data.log) == 131072
    starts = {key: round(log.t[0] / dt) for key, log in splits.items()}
    assert starts == {
        "train": 40650,
        "val": 40650 + 52050,
        "test_multisine": 40650 + 65062,
        "test_arrow_full": 100,
        "test_arrow_no_extrapolation": 100,
    }
    assert round(splits["test_multisine"].t[-1] / dt) == 127400 - 1
    np.testing.assert_array_equal(splits["test_arrow_full"].z, data.log.z[100:40575])
    assert data.test_sets == (
        "test_multisine",
        "test_arrow_full",
        "test_arrow_no_extrapolation",
    )
    assert (data.init_window, data.metric, data.unit, data.unit_scale) == (
        50,
        "rmse",
        "mV",
        1000.0,
    )
    assert data.published["test_arrow_full"]["linear state space"] == 14.4
    assert data.published["test_multisine"]["polynomial NARX"] == 0.640


@pytest.mark.parametrize(
    ("split", "std_mV"),
    [
        ("test_arrow_full", 53.48),
        ("test_multisine", 54.30),
        ("test_arrow_no_extrapolation", 43.0),
    ],
)
def test_silverbox_test_outputs_match_the_documented_statistics(
    split: str, std_mV: float
) -> None:
    data = datasets.load("silverbox")
    y = data.splits[split].z[data.init_window :, 0] * data.unit_scale
    # The source note prints these to 3 or 4 significant digits.
    np.testing.assert_allclose(y.std(), std_mV, rtol=2e-3, atol=0.0)


def test_emps_has_train_val_test_and_its_drive_gain() -> None:
    data = datasets.load("emps")
    sizes = {key: len(log) for key, log in data.splits.items()}
    assert sizes == {"train": 19873, "val": 4968, "test": 24841}
    assert len(data.log) == 24841
    assert (data.init_window, data.unit, data.unit_scale) == (20, "mm", 1000.0)
    np.testing.assert_allclose(data.metadata["gtau"], 35.1507, rtol=1e-5, atol=0.0)
    np.testing.assert_allclose(data.log.z.mean(), 0.123764, rtol=1e-5, atol=0.0)
    assert data.log.dt == 1e-3
    assert data.published["test"]["dynoNet"] == 2.64


def test_cascaded_tanks_has_train_val_test() -> None:
    data = datasets.load("cascaded_tanks")
    sizes = {key: len(log) for key, log in data.splits.items()}
    assert sizes == {"train": 819, "val": 205, "test": 1024}
    assert data.log.dt == 4.0
    assert (data.init_window, data.unit, data.unit_scale) == (50, "V", 1.0)
    assert data.log.z.max() == 10.0
    np.testing.assert_allclose(data.splits["test"].u.mean(), 2.8, rtol=1e-4, atol=0.0)


def test_real_pendulum_is_autonomous_with_measured_states() -> None:
    data = datasets.load("real_pendulum")
    log = data.log
    assert len(log) == 556 and log.n_inputs == 0
    assert log.x is not None
    np.testing.assert_array_equal(log.x, log.z)
    assert log.state_names == ("theta", "omega")
    assert (log.t[0], log.t[-1]) == (5.0, 99.5)
    steps = np.diff(log.t)
    assert steps.max() == pytest.approx(0.5)  # the known gaps are kept
    train, test = data.splits["train"], data.splits["test"]
    assert (len(train), len(test)) == (444, 112)
    assert len(test) - 1 == int(0.2 * (len(log) - 1))
    np.testing.assert_allclose(log.x[:, 0].mean(), 0.01798, rtol=1e-3, atol=0.0)
    assert data.metric == "energy_mse"
    assert data.published["test"]["HNN"] == 1.45e-2


def test_loaded_arrays_are_private_copies() -> None:
    first = datasets.load("cascaded_tanks")
    first.log.z[:] = 0.0
    assert datasets.load("cascaded_tanks").log.z.max() == 10.0


def test_unknown_name_lists_the_names_and_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'cascaded_tanks'") as info:
        datasets.load("cascaded-tanks")
    for name in datasets.names():
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="available: 'silverbox'"):
        datasets.load("wiener")


@pytest.fixture
def bundle_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for file in ("cascaded_tanks.npz", "cascaded_tanks.md"):
        shutil.copy(PACKAGE_DIR / file, tmp_path / file)
    monkeypatch.setattr(datasets, "_DATA_DIR", tmp_path)
    return tmp_path / "cascaded_tanks.npz"


def test_an_intact_copy_loads(bundle_copy: Path) -> None:
    assert len(datasets.load("cascaded_tanks").log) == 1024


def test_a_changed_array_is_refused(bundle_copy: Path) -> None:
    with np.load(bundle_copy) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["test_y"][500] += 1e-12
    np.savez_compressed(bundle_copy, **arrays)
    with pytest.raises(DataError, match="'test_y' fails its SHA-256 check") as info:
        datasets.load("cascaded_tanks")
    assert len(info.value.problems) == 1


def test_missing_extra_and_retyped_arrays_are_refused(bundle_copy: Path) -> None:
    with np.load(bundle_copy) as archive:
        arrays = {key: archive[key] for key in archive.files}
    del arrays["train_u"]
    arrays["train_y"] = arrays["train_y"].astype(np.float32)
    arrays["extra"] = np.zeros(3)
    np.savez_compressed(bundle_copy, **arrays)
    with pytest.raises(DataError, match="corrupted") as info:
        datasets.load("cascaded_tanks")
    text = "\n".join(info.value.problems)
    assert "'train_u' is missing" in text
    assert "'extra' is not in the registry" in text
    assert "'train_y' is float32" in text


def test_damaged_bytes_are_refused(bundle_copy: Path) -> None:
    data = bytearray(bundle_copy.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    bundle_copy.write_bytes(bytes(data))
    with pytest.raises(DataError, match="cascaded_tanks.npz is (damaged|corrupted)"):
        datasets.load("cascaded_tanks")


def test_a_missing_bundle_file_is_refused(bundle_copy: Path) -> None:
    bundle_copy.unlink()
    with pytest.raises(DataError, match="cascaded_tanks.npz is missing; reinstall"):
        datasets.load("cascaded_tanks")


def test_registry_covers_every_bundled_file() -> None:
    bundled = sorted(path.stem for path in PACKAGE_DIR.glob("*.npz"))
    assert bundled == sorted(datasets.names())
    assert sorted(path.stem for path in PACKAGE_DIR.glob("*.md")) == bundled


def test_source_tables_are_parsed_for_hashes(tmp_path: Path) -> None:
    (tmp_path / "SOURCE.md").write_text(
        "| file | bytes | sha256 |\n|---|---:|---|\n"
        f"| a.mat | 1,024 | {'ab' * 32} |\n| notes | x | y |\n"
    )
    assert _build._listed_hashes(tmp_path) == {"a.mat": "ab" * 32}


@pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="the original benchmark files are not here"
)
def test_build_from_the_originals_reproduces_the_registry(tmp_path: Path) -> None:
    assert _build.build(SHARED_DATA, tmp_path) == datasets._SHA256
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{name}.npz" for name in datasets.names()
    )


def test_build_refuses_a_file_whose_hash_differs(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.mat").write_bytes(b"changed")
    (folder / "SOURCE.md").write_text(f"| a.mat | 7 | {'0' * 64} |\n")
    with pytest.raises(DataError, match="not the original file"):
        _build._verified(folder, "a.mat")
    with pytest.raises(DataError, match="no SHA-256 listed for 'b.mat'"):
        _build._verified(folder, "b.mat")
