"""Model files: exact round trips and refusal of every damaged or foreign file."""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import Tensor, nn

import phcontrol.io as phio
from phcontrol._config import Configurable
from phcontrol.errors import ModelFileError
from phcontrol.hamiltonians import (
    MechanicalHamiltonian,
    MLPHamiltonian,
    MLPPotential,
    PolynomialPotential,
    QuadraticHamiltonian,
    QuadraticPotential,
)
from phcontrol.io import load, read_metadata, save
from phcontrol.models import HNN, NeuralODE, PortHamiltonian
from phcontrol.structure import (
    CanonicalJ,
    CholeskyDissipation,
    InputMatrix,
    SkewSymmetric,
)


class IOTestWrapper(nn.Module, Configurable):
    """A generic wrapper of the kind identification builds: a model plus values."""

    def __init__(
        self,
        system: PortHamiltonian,
        gain: float,
        offsets: list[float],
        label: str = "plant",
        table: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.system = system
        self.gain = gain
        self.label = label
        self.register_buffer("offsets", torch.tensor(offsets))
        self.register_buffer("table", torch.zeros(2) if table is None else table)


def randomise(module: nn.Module, seed: int = 7) -> nn.Module:
    """Overwrite every floating parameter with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def ph_quadratic() -> nn.Module:
    return PortHamiltonian(
        H=QuadraticHamiltonian(
            3, Q=torch.diag(torch.tensor([1.0, 2.0, 3.0])), learn_equilibrium=True
        ),
        J=SkewSymmetric(3, init=torch.arange(9.0).reshape(3, 3)),
        R=CholeskyDissipation(3, mask=[True, False, True]),
        G=InputMatrix(3, 2, mask=torch.tensor([[1, 0], [1, 1], [0, 1]])),
    )


def ph_mlp_state_dependent() -> nn.Module:
    return PortHamiltonian(
        H=MLPHamiltonian(4, hidden=(8, 8), floor=0.05),
        J=SkewSymmetric(4, state_dependent=True, hidden=(6,)),
        R=CholeskyDissipation(4, state_dependent=True, mask=[0, 1, 1, 0], hidden=(5,)),
        G=InputMatrix(4, 1, state_dependent=True, hidden=(3,)),
    )


def ph_mechanical() -> nn.Module:
    pots = [
        PolynomialPotential(
            2, degree=4, coefficients=torch.tensor([[0, -1, 0, 1.0], [0, 1, 0, 2.0]])
        ),
        MLPPotential(2, hidden=(8,), out_scale=0.5),
        QuadraticPotential(torch.eye(2), q0=torch.tensor([0.5, -0.5])),
    ]
    return PortHamiltonian(
        H=MechanicalHamiltonian(
            2, potential=pots, mass=torch.tensor([[2.0, 0.3], [0.3, 1.0]])
        ),
        J=CanonicalJ(4),
        R=CholeskyDissipation(4, mask=[False, False, True, True], init_scale=0.3),
        G=InputMatrix(4, 2, mask=torch.tensor([[0, 0], [0, 0], [1, 0], [0, 1]])),
    )


def ph_mechanical_state_mass() -> nn.Module:
    return PortHamiltonian(
        H=MechanicalHamiltonian(
            1,
            potential=PolynomialPotential(1, degree=2),
            state_dependent_mass=True,
        ),
        J=CanonicalJ(2),
        R=CholeskyDissipation(2, mask=[False, True]),
        G=InputMatrix(2, 1, init=torch.tensor([[0.0], [1.0]])),
    )


def ph_mechanical_fixed_mass() -> nn.Module:
    return PortHamiltonian(
        H=MechanicalHamiltonian(
            1, potential=MLPPotential(1, hidden=(4, 4)), learn_mass=False
        ),
        J=SkewSymmetric(2),
    )


def wrapper() -> nn.Module:
    return IOTestWrapper(
        ph_quadratic(), 2.5, [0.1, -3.0], label="bench", table=torch.ones(3)
    )


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "ph_quadratic": ph_quadratic,
    "ph_mlp_state_dependent": ph_mlp_state_dependent,
    "ph_mechanical": ph_mechanical,
    "ph_mechanical_state_mass": ph_mechanical_state_mass,
    "ph_mechanical_fixed_mass": ph_mechanical_fixed_mass,
    "neural_ode": lambda: NeuralODE(3, 2, hidden=(8, 8)),
    "hnn": lambda: HNN(4, hidden=(8,)),
    "hnn_dissipative": lambda: HNN(2, hidden=(8,), dissipation=True),
    "energy_only": lambda: MLPHamiltonian(3, hidden=(4,)),
    "wrapper": wrapper,
}


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


def outputs(model: nn.Module, x: Tensor, u: Tensor) -> list[Tensor]:
    """Everything a model computes, for bitwise comparison."""
    with torch.no_grad():
        if isinstance(model, IOTestWrapper):
            model = model.system
        if isinstance(model, PortHamiltonian):
            return [
                model.vector_field(x, u),
                model.energy(x),
                model.grad_energy(x),
                model.output(x),
            ]
        if isinstance(model, NeuralODE):
            return [model.vector_field(x, u)]
        return [model(x), model.grad(x)]  # an energy


def sample_inputs(model: nn.Module) -> tuple[Tensor, Tensor]:
    inner = model.system if isinstance(model, IOTestWrapper) else model
    n = inner.n_states
    m = getattr(inner, "n_inputs", 0)
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, n, generator=gen), torch.randn(6, m, generator=gen)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A file holding a randomised mechanical model."""
    path = tmp_path / "model.safetensors"
    save(randomise(ph_mechanical()), path, metadata={"plant": "arm"})
    return path


def rewrite(
    path: Path,
    *,
    meta: Callable[[dict[str, str]], None] | None = None,
    tensors: Callable[[dict[str, Tensor]], None] | None = None,
    rehash: bool = False,
) -> None:
    """Edit a model file's metadata or tensors, optionally fixing its checksum."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    content = safetensors.torch.load(data)
    if meta is not None:
        meta(metadata)
    if tensors is not None:
        tensors(content)
    if rehash:
        metadata["checksum"] = phio._checksum(content, metadata)
    path.write_bytes(safetensors.torch.save(content, metadata=metadata))


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    def apply(meta: dict[str, str]) -> None:
        config = json.loads(meta["config"])
        change(config)
        meta["config"] = json.dumps(config)

    rewrite(path, meta=apply)


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_round_trip_is_bitwise_exact(kind: str, tmp_path: Path) -> None:
    model = randomise(BUILDERS[kind]())
    path = tmp_path / f"{kind}.safetensors"
    save(model, path)
    again = load(path)
    assert type(again) is type(model)
    assert_same_state(model, again)
    x, u = sample_inputs(model)
    for a, b in zip(outputs(model, x, u), outputs(again, x, u), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_saving_a_loaded_model_gives_the_same_content(
    kind: str, tmp_path: Path
) -> None:
    # The checksum covers every tensor (with its dtype) and every metadata
    # entry; the bytes themselves may differ, since safetensors does not fix
    # the order of metadata entries.
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save(randomise(BUILDERS[kind]()), first, metadata={"k": [1, 2]})
    save(load(first), second, metadata={"k": [1, 2]})
    assert read_metadata(first)["checksum"] == read_metadata(second)["checksum"]


def test_round_trip_keeps_constructor_values(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save(wrapper(), path)
    again = load(path)
    assert isinstance(again, IOTestWrapper)
    assert again.gain == 2.5 and again.label == "bench"
    assert isinstance(again.system.H, QuadraticHamiltonian)
    assert again.system.R is not None
    assert torch.equal(again.system.R.mask, torch.tensor([1.0, 0.0, 1.0]))


def test_round_trip_keeps_float32_parameters(tmp_path: Path) -> None:
    model = randomise(ph_mechanical()).float()
    path = tmp_path / "f32.safetensors"
    save(model, path)
    again = load(path)
    assert_same_state(model, again)
    assert again.H.potentials[0].lower.dtype == torch.float32
    x = torch.randn(3, 4, dtype=torch.float32)
    assert torch.equal(model.energy(x), again.energy(x))


def test_model_built_in_float32_loads_in_a_float64_session(tmp_path: Path) -> None:
    torch.set_default_dtype(torch.float32)
    try:
        model = randomise(ph_mlp_state_dependent())
    finally:
        torch.set_default_dtype(torch.float64)
    path = tmp_path / "built32.safetensors"
    save(model, path)
    assert read_metadata(path)["default_dtype"] == "float32"
    again = load(path)
    assert torch.get_default_dtype() == torch.float64
    assert_same_state(model, again)


def test_loading_leaves_the_random_stream_alone(saved: Path) -> None:
    torch.manual_seed(5)
    expected = torch.randn(4)
    torch.manual_seed(5)
    load(saved)
    assert torch.equal(torch.randn(4), expected)


def test_load_moves_to_map_location(saved: Path) -> None:
    again = load(saved, map_location=torch.device("cpu"))
    assert all(p.device.type == "cpu" for p in again.parameters())


def test_loaded_model_trains_in_place(saved: Path) -> None:
    model = load(saved)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model.energy(torch.randn(5, 4)).sum().backward()
    optimiser.step()
    assert not torch.equal(model.H.L, load(saved).H.L)


def test_load_to_a_missing_cuda_device_names_map_location(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the check, torch failed deep inside Module.to with
    # "AssertionError: Torch not compiled with CUDA enabled".
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=r"`map_location`='cuda' asks for a CUDA"):
        load(saved, map_location="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"CUDA device 1, but torch finds 1"):
        load(saved, map_location="cuda:1")
    with pytest.raises(ValueError, match=r"must name a torch device.*'gpu'"):
        load(saved, map_location="gpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_to_cuda_keeps_values(saved: Path) -> None:
    model = load(saved)
    on_gpu = load(saved, map_location="cuda")
    assert all(t.device.type == "cuda" for t in on_gpu.state_dict().values())
    for key, value in model.state_dict().items():
        assert torch.equal(on_gpu.state_dict()[key].cpu(), value), key


def test_read_metadata_returns_config_and_user_metadata(saved: Path) -> None:
    info = read_metadata(saved)
    assert info["format"] == "phcontrol-model"
    assert info["format_version"] == phio.FORMAT_VERSION
    assert info["config"]["class"] == "PortHamiltonian"
    assert info["config"]["args"]["J"] == {
        "class": "CanonicalJ",
        "args": {"n_states": 4},
    }
    assert info["user"] == {"plant": "arm"}
    assert isinstance(info["phcontrol_version"], str)
    assert len(info["checksum"]) == 64


def test_read_metadata_without_user_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save(HNN(2, hidden=(4,)), path)
    assert read_metadata(path)["user"] is None


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save(NeuralODE(2, hidden=(4,)), path)
    save(HNN(2, hidden=(4,)), path)
    assert isinstance(load(path), HNN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_file_holds_state_and_init_tensors_and_no_code(saved: Path) -> None:
    data = saved.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    names = [k for k in header if k != "__metadata__"]
    assert names and all(k.startswith(("state.", "init.")) for k in names)
    assert "init.H.mass" in names
    assert set(header["__metadata__"]) == {
        "format",
        "format_version",
        "config",
        "default_dtype",
        "phcontrol_version",
        "user",
        "checksum",
    }


# --------------------------------------------------------------------------
# Failed saves leave nothing behind
# --------------------------------------------------------------------------


def test_unsupported_argument_fails_before_anything_is_written(tmp_path: Path) -> None:
    model = SkewSymmetric(2, init=np.eye(2))  # type: ignore[arg-type]
    path = tmp_path / "bad.safetensors"
    with pytest.raises(TypeError, match=r"cannot store an argument of type ndarray"):
        save(model, path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    save(HNN(2, hidden=(4,)), path)
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(phio.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save(NeuralODE(2, hidden=(4,)), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_failed_first_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(phio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        save(HNN(2, hidden=(4,)), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["model.pt", "model.safetensor", "model"])
def test_save_refuses_wrong_extension(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end with '\.safetensors'.*Use"):
        save(HNN(2, hidden=(4,)), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_plain_torch_module(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"`model` must be a phcontrol module"):
        save(nn.Linear(2, 2), tmp_path / "m.safetensors")


@pytest.mark.parametrize(
    ("metadata", "kind"),
    [({"f": object()}, TypeError), ({"x": float("nan")}, ValueError), ([1], TypeError)],
)
def test_save_refuses_metadata_json_cannot_hold(
    metadata: Any, kind: type[Exception], tmp_path: Path
) -> None:
    with pytest.raises(kind, match=r"`metadata` must be"):
        save(HNN(2, hidden=(4,)), tmp_path / "m.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Refused files
# --------------------------------------------------------------------------


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"absent\.safetensors'.*no such file"):
        load(tmp_path / "absent.safetensors")


def test_load_refuses_wrong_extension(saved: Path) -> None:
    renamed = saved.rename(saved.with_suffix(".pt"))
    with pytest.raises(ModelFileError, match=r"must end with '\.safetensors'"):
        load(renamed)


@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_flipped_data_byte_is_refused(saved: Path, where: float) -> None:
    data = bytearray(saved.read_bytes())
    (size,) = struct.unpack("<Q", data[:8])
    start = 8 + size
    index = start + int(where * (len(data) - start - 1))
    data[index] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"model\.safetensors'.*checksum mismatch"):
        load(saved)
    with pytest.raises(ModelFileError, match=r"checksum mismatch"):
        read_metadata(saved)


def test_edited_tensor_is_refused(saved: Path) -> None:
    def nudge(content: dict[str, Tensor]) -> None:
        content["state.R.L"] = content["state.R.L"] * 2.0

    rewrite(saved, tensors=nudge)
    with pytest.raises(ModelFileError, match=r"checksum mismatch.*modified"):
        load(saved)


def test_edited_config_is_refused(saved: Path) -> None:
    def change(config: dict[str, Any]) -> None:
        config["args"]["H"]["args"]["eps"] = 0.5

    edit_config(saved, change)
    with pytest.raises(ModelFileError, match=r"checksum mismatch"):
        load(saved)


def test_edited_user_metadata_is_refused(saved: Path) -> None:
    rewrite(saved, meta=lambda m: m.update(user=json.dumps({"plant": "other"})))
    with pytest.raises(ModelFileError, match=r"checksum mismatch"):
        read_metadata(saved)


def test_config_that_does_not_fit_the_tensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ode.safetensors"
    save(NeuralODE(2, 1, hidden=(8,)), path)

    def widen(meta: dict[str, str]) -> None:
        config = json.loads(meta["config"])
        config["args"]["hidden"] = {"list": [9]}
        meta["config"] = json.dumps(config)

    rewrite(path, meta=widen, rehash=True)
    with pytest.raises(ModelFileError, match=r"do not fit .* wrong shape"):
        load(path)


def test_missing_state_entry_is_refused(saved: Path) -> None:
    rewrite(saved, tensors=lambda t: t.pop("state.R.L"), rehash=True)
    with pytest.raises(ModelFileError, match=r"do not fit .* 'R\.L'"):
        load(saved)


def test_config_naming_an_unknown_class_is_refused(saved: Path) -> None:
    def rename(meta: dict[str, str]) -> None:
        meta["config"] = meta["config"].replace('"CanonicalJ"', '"os.system"')

    rewrite(saved, meta=rename, rehash=True)
    with pytest.raises(ModelFileError, match=r"unknown class 'os\.system'"):
        load(saved)


def test_config_with_bad_arguments_is_refused(saved: Path) -> None:
    def odd(meta: dict[str, str]) -> None:
        config = json.loads(meta["config"])
        config["args"]["J"]["args"]["n_states"] = 3
        meta["config"] = json.dumps(config)

    rewrite(saved, meta=odd, rehash=True)
    with pytest.raises(ModelFileError, match=r"does not rebuild a model.*ShapeError"):
        load(saved)


@pytest.mark.parametrize("keep", [0.99, 0.6, 0.2, 16, 4, 0])
def test_truncated_file_is_refused(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    cut = int(keep * len(data)) if isinstance(keep, float) else keep
    saved.write_bytes(data[:cut])
    with pytest.raises(ModelFileError, match=r"truncated"):
        load(saved)


def test_newer_format_version_is_refused(saved: Path) -> None:
    rewrite(saved, meta=lambda m: m.update(format_version="2"), rehash=True)
    with pytest.raises(ModelFileError, match=r"format version 2, newer .* Upgrade"):
        load(saved)


@pytest.mark.parametrize("version", ["0", "one", ""])
def test_malformed_format_version_is_refused(saved: Path, version: str) -> None:
    rewrite(saved, meta=lambda m: m.update(format_version=version), rehash=True)
    with pytest.raises(ModelFileError, match=r"'format_version' is .* not a positive"):
        load(saved)


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(ModelFileError, match=r"not a phcontrol model"):
        load(path)


class Payload:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_renamed_is_refused_without_running_it(
    tmp_path: Path, protocol: int
) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    with pytest.raises(ModelFileError, match=r"not a safetensors file"):
        load(path)
    with pytest.raises(ModelFileError, match=r"not a safetensors file"):
        read_metadata(path)
    assert not marker.exists()


def test_torch_save_archive_renamed_is_refused_without_running_it(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran.txt"
    path = tmp_path / "model.safetensors"
    torch.save({"state": HNN(2, hidden=(4,)).state_dict(), "x": Payload(marker)}, path)
    with pytest.raises(ModelFileError, match=r"zip archive \(as torch\.save writes\)"):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"hello", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!"],
)
def test_garbage_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"model\.safetensors'"):
        load(path)


def test_refusals_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load(tmp_path / "absent.safetensors")


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dir.safetensors"
    os.mkdir(folder)
    with pytest.raises(ModelFileError, match=r"no such file"):
        load(folder)


def test_file_whose_header_length_starts_with_0x80_is_not_taken_for_a_pickle(
    tmp_path,
):
    # A pickle starts with byte 0x80; so does a valid file whose header length
    # is 128 modulo 256. Pad the user metadata until that happens.
    model = PortHamiltonian(QuadraticHamiltonian(2), CanonicalJ(2))
    path = tmp_path / "m.safetensors"
    for pad in range(300):
        save(model, path, metadata={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    else:  # pragma: no cover - the loop always finds one within 256 pads
        pytest.fail("no padding gave a header length of 128 modulo 256")
    loaded = load(path)
    x = torch.randn(3, 2)
    assert torch.equal(loaded.energy(x), model.energy(x))
