r"""Save and load phcontrol models as one ``.safetensors`` file.

A model file holds two groups of tensors and a few strings of metadata:

* ``state.<name>``: every entry of the module's ``state_dict``;
* ``init.<path>``: tensors passed to the constructors (see
  :func:`phcontrol._config.to_spec`);
* ``format`` (``"phcontrol-model"``), ``format_version``, ``config`` (the
  JSON tree that rebuilds the module), ``user`` (optional JSON metadata),
  ``default_dtype``, ``phcontrol_version`` and ``checksum``.

The checksum is a SHA-256 over every metadata entry but itself and every
tensor (name, dtype, shape, little-endian bytes), in sorted order, so any
edited byte is detected. Loading never unpickles: the safetensors header is
JSON and the data are raw numbers, and classes are rebuilt only from
phcontrol's closed registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor, nn

from ._config import Configurable, from_spec, to_spec
from ._validation import check_device
from .errors import ModelFileError

__all__ = ["save", "load", "read_metadata", "FORMAT", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

FORMAT = "phcontrol-model"
"""Value of the ``format`` metadata entry of every phcontrol model file."""

FORMAT_VERSION = 1
"""Newest model-file format version this phcontrol reads and the one it writes."""

_SUFFIX = ".safetensors"
_MAX_HEADER = 100_000_000
_FLOAT_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
_HINT_SAVE = "write it with phcontrol.save"


def _checksum(tensors: Mapping[str, Tensor], metadata: Mapping[str, str]) -> str:
    """Return the SHA-256 hex digest of a model file's content.

    Every field is length-prefixed so that no two different contents share
    one byte stream; the ``checksum`` entry itself is left out.
    """
    digest = hashlib.sha256()

    def field(data: bytes) -> None:
        digest.update(struct.pack("<Q", len(data)))
        digest.update(data)

    field(FORMAT.encode())
    for key in sorted(metadata):
        if key == "checksum":
            continue
        field(b"metadata")
        field(key.encode())
        field(metadata[key].encode())
    for key in sorted(tensors):
        t = tensors[key].detach().to("cpu").contiguous()
        field(b"tensor")
        field(key.encode())
        field(str(t.dtype).removeprefix("torch.").encode())
        field(json.dumps(list(t.shape)).encode())
        raw = t.reshape(-1).view(torch.uint8)
        if sys.byteorder == "big" and t.element_size() > 1:
            raw = raw.reshape(-1, t.element_size()).flip(-1).reshape(-1)
        field(raw.numpy().tobytes())
    return digest.hexdigest()


def _count_tensor_refs(spec: Any) -> int:
    if isinstance(spec, dict):
        own = 1 if set(spec) == {"tensor"} else 0
        return own + sum(_count_tensor_refs(v) for v in spec.values())
    if isinstance(spec, list):
        return sum(_count_tensor_refs(v) for v in spec)
    return 0


def _check_suffix(path: Path, action: str) -> None:
    if path.suffix != _SUFFIX:
        raise ValueError(
            f"cannot {action} {str(path)!r}: a phcontrol model file must end with "
            f"'{_SUFFIX}'; found {path.suffix or 'no suffix'!r}. Use "
            f"{str(path.with_suffix(_SUFFIX))!r}."
        )


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _build_dtype(model: nn.Module) -> torch.dtype:
    """Return the default dtype ``model`` was most likely built under.

    That is the one floating dtype of its parameters (or, lacking
    parameters, of its buffers); the session's default when they disagree.
    """
    for tensors in (list(model.parameters()), list(model.buffers())):
        kinds = {t.dtype for t in tensors if t.is_floating_point()}
        if len(kinds) == 1:
            (dtype,) = kinds
            if dtype in _FLOAT_DTYPES.values():
                return dtype
        if kinds:
            break
    return torch.get_default_dtype()


def save(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Save a phcontrol module to one ``.safetensors`` file.

    Parameters
    ----------
    model : nn.Module
        Any module built from phcontrol classes (it inherits ``Configurable``):
        :class:`~phcontrol.PortHamiltonian`, :class:`~phcontrol.NeuralODE`,
        :class:`~phcontrol.HNN`, a part such as an energy, or a wrapper.
    path : str or os.PathLike
        Target file; must end with ``.safetensors``. Its directory must
        exist. An existing file is replaced.
    metadata : mapping, optional
        Extra information (JSON-serialisable, string keys) kept under the
        ``user`` entry; :func:`read_metadata` returns it.

    Raises
    ------
    ValueError
        If ``path`` does not end with ``.safetensors``, or ``metadata``
        holds a value JSON cannot store (NaN, infinity).
    TypeError
        If ``model`` is not a phcontrol module, a constructor argument has a
        type a model file cannot store, or ``metadata`` is not JSON-able.

    Notes
    -----
    The write is atomic: the bytes go to a temporary file in the same
    directory, which is synced to disk and then renamed over ``path``. If
    anything fails, ``path`` is left as it was and no temporary file
    remains.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> import phcontrol as phc
    >>> from phcontrol.io import save, load
    >>> model = phc.HNN(2, hidden=(8,))
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save(model, folder / "hnn.safetensors", metadata={"plant": "pendulum"})
    >>> again = load(folder / "hnn.safetensors")
    >>> x = torch.randn(4, 2)
    >>> bool((again.vector_field(x) == model.vector_field(x)).all())
    True
    """
    path = Path(path)
    _check_suffix(path, "save")
    if not (isinstance(model, nn.Module) and isinstance(model, Configurable)):
        raise TypeError(
            f"`model` must be a phcontrol module (an nn.Module built from phcontrol "
            f"classes); found {type(model).__name__}. Plain torch modules cannot be "
            "rebuilt from a model file; wrap their parts in phcontrol classes."
        )
    init: dict[str, Tensor] = {}
    spec = to_spec(model, init)
    if _count_tensor_refs(spec) != len(init):
        raise ValueError(
            "two constructor tensors of this model map to the same name in a model "
            "file (a dict key that contains '.'); rename the key"
        )
    tensors = {key: t.clone() for key, t in init.items()}
    for key, t in model.state_dict().items():
        tensors[f"state.{key}"] = t.detach().to("cpu").contiguous().clone()

    from . import __version__

    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(spec, sort_keys=True),
        "default_dtype": str(_build_dtype(model)).removeprefix("torch."),
        "phcontrol_version": __version__,
    }
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(
                f"`metadata` must be a mapping with string keys; found "
                f"{type(metadata).__name__}"
            )
        try:
            meta["user"] = json.dumps(dict(metadata), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"`metadata` must be JSON-serialisable (str keys; str, number, bool, "
                f"None, lists and dicts of them; finite numbers): {err}"
            ) from err
    meta["checksum"] = _checksum(tensors, meta)
    data = safetensors.torch.save(tensors, metadata=meta)
    _atomic_write(path, data)
    logger.debug("saved %s (%d tensors, %d bytes)", path, len(tensors), len(data))


def _refuse(path: Path, message: str) -> ModelFileError:
    return ModelFileError(f"cannot load {str(path)!r}: {message}")


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    """Parse and check the safetensors header without touching the tensor data."""
    if data[:4] == b"PK\x03\x04":
        raise _refuse(
            path,
            "it is a zip archive (as torch.save writes), not a safetensors file; "
            f"phcontrol never unpickles files. Rebuild the model and {_HINT_SAVE}.",
        )
    # A pickle starts with 0x80, but so does a valid file whose header length
    # is 128 modulo 256: judge by the header before calling it a pickle.
    looks_like_header = len(data) >= 9 and data[8:9] == b"{"
    if data[:1] == b"\x80" and not looks_like_header:
        raise _refuse(
            path,
            "it looks like a pickle, not a safetensors file; phcontrol never "
            f"unpickles files. Rebuild the model and {_HINT_SAVE}.",
        )
    if len(data) < 8:
        raise _refuse(
            path,
            f"it has {len(data)} bytes, too few for a safetensors header; the file "
            "is truncated or not a model file. Save the model again.",
        )
    (size,) = struct.unpack("<Q", data[:8])
    if size > _MAX_HEADER or data[8:9] != b"{":
        raise _refuse(
            path,
            "it is not a safetensors file (no valid header). Save the model with "
            "phcontrol.save.",
        )
    if 8 + size > len(data):
        raise _refuse(
            path,
            f"the file is truncated: the header declares {size} bytes but only "
            f"{len(data) - 8} follow. Copy the file again or save the model again.",
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _refuse(
            path,
            "its safetensors header is not valid UTF-8 JSON; the file is damaged "
            "or not a model file. Save the model again.",
        ) from err
    if not isinstance(header, dict):
        raise _refuse(path, "its safetensors header is not a JSON object")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            _, stop = entry["data_offsets"]
            end = max(end, int(stop))
        except (TypeError, KeyError, ValueError) as err:
            raise _refuse(path, f"its header entry {key!r} is malformed") from err
    available = len(data) - 8 - size
    if end > available:
        raise _refuse(
            path,
            f"the file is truncated: its tensors need {end} bytes of data but only "
            f"{available} are present. Copy the file again or save the model again.",
        )
    return header


def _read(
    path: str | os.PathLike[str],
) -> tuple[Path, dict[str, str], dict[str, Tensor]]:
    """Read, parse and verify a model file; return its metadata and tensors."""
    path = Path(path)
    if not path.is_file():
        raise _refuse(
            path,
            "no such file. Check the path, or create the file with phcontrol.save.",
        )
    if path.suffix != _SUFFIX:
        raise _refuse(
            path,
            f"a phcontrol model file must end with '{_SUFFIX}'; found "
            f"{path.suffix or 'no suffix'!r}. Rename it only if it was written by "
            "phcontrol.save.",
        )
    data = path.read_bytes()
    header = _read_header(path, data)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _refuse(path, "its metadata is not a mapping of strings")
    if meta.get("format") != FORMAT:
        raise _refuse(
            path,
            f"its 'format' metadata is {meta.get('format')!r}, not {FORMAT!r}: it is "
            f"a safetensors file but not a phcontrol model. Save the model with "
            "phcontrol.save.",
        )
    version_text = meta.get("format_version", "")
    try:
        version = int(version_text)
    except ValueError:
        version = -1
    if version < 1:
        raise _refuse(
            path,
            f"its 'format_version' is {version_text!r}, not a positive integer; the "
            "file is damaged. Save the model again.",
        )
    if version > FORMAT_VERSION:
        raise _refuse(
            path,
            f"it has format version {version}, newer than the {FORMAT_VERSION} this "
            "phcontrol reads. Upgrade phcontrol to load it.",
        )
    try:
        tensors = safetensors.torch.load(data)
    except Exception as err:  # the Rust parser's own error type
        raise _refuse(
            path, f"its tensors cannot be read ({err}); the file is damaged"
        ) from err
    expected = meta.get("checksum")
    if expected is None:
        raise _refuse(path, "it has no 'checksum' metadata. Save the model again.")
    found = _checksum(tensors, meta)
    if found != expected:
        raise _refuse(
            path,
            f"checksum mismatch (stored {expected[:12]}..., computed {found[:12]}...): "
            "the file was modified after it was saved. Use the original file or "
            "save the model again.",
        )
    stray = sorted(k for k in tensors if not k.startswith(("state.", "init.")))
    if stray:
        raise _refuse(
            path,
            f"it holds tensors outside 'state.' and 'init.' ({stray[0]!r}); it was "
            "not written by phcontrol.save",
        )
    return path, meta, tensors


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _describe_mismatch(module: nn.Module, state: Mapping[str, Tensor]) -> str | None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(
        k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)
    )
    if missing:
        return (
            f"the rebuilt model has {len(missing)} entries the file lacks, "
            f"first {missing[0]!r}"
        )
    if extra:
        return (
            f"the file has {len(extra)} entries the rebuilt model lacks, "
            f"first {extra[0]!r}"
        )
    if wrong:
        key = wrong[0]
        return (
            f"{len(wrong)} entries have the wrong shape, first {key!r}: file "
            f"{tuple(state[key].shape)}, rebuilt model {tuple(own[key].shape)}"
        )
    return None


def load(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Load a model saved by :func:`save`, after checking the file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by :func:`save`.
    map_location : str or torch.device, default "cpu"
        Device the returned module's parameters and buffers live on.

    Returns
    -------
    nn.Module
        The rebuilt module, of the class that was saved, with bitwise the
        same parameters and buffers (same dtypes) as at saving time.

    Raises
    ------
    ValueError
        If ``map_location`` is not a device, or is a CUDA device this
        machine does not have (checked before the file is read).
    ModelFileError
        If the file is missing, does not end with ``.safetensors``, is not a
        safetensors file (a pickle or a ``torch.save`` archive is refused
        without being executed), is truncated, is not a phcontrol model, has
        a newer format version, fails its checksum, or its configuration
        rebuilds a model whose parameters do not fit the stored ones.

    Notes
    -----
    Nothing in the file is executed: the header is JSON, the tensors are raw
    numbers, and classes come only from phcontrol's registry. The model is
    built under the default dtype in force when it was saved (the caller's
    default is restored afterwards) and with a forked random state, so
    loading does not change the caller's random stream.

    Like every new ``nn.Module`` the result is in training mode, and its
    parameters require gradients; phcontrol's modules behave the same in
    ``eval()`` mode. Call ``requires_grad_(False)`` again on parts that were
    frozen before saving.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> import phcontrol as phc
    >>> from phcontrol.io import save, load
    >>> H = phc.QuadraticHamiltonian(2)
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "energy.safetensors"
    >>> save(H, target)
    >>> type(load(target)).__name__
    'QuadraticHamiltonian'
    """
    device = check_device(map_location, "map_location")
    path, meta, tensors = _read(path)
    try:
        spec = json.loads(meta.get("config", ""))
    except json.JSONDecodeError as err:
        raise _refuse(
            path, f"its 'config' metadata is not valid JSON ({err.msg})"
        ) from err
    dtype = _FLOAT_DTYPES.get(meta.get("default_dtype", "float32"))
    if dtype is None:
        raise _refuse(
            path,
            f"its 'default_dtype' {meta.get('default_dtype')!r} is not a float type",
        )
    init = {k: v for k, v in tensors.items() if k.startswith("init.")}
    state = {
        k.removeprefix("state."): v
        for k, v in tensors.items()
        if k.startswith("state.")
    }
    try:
        with torch.random.fork_rng(devices=[]), _default_dtype(dtype):
            module = from_spec(spec, init)
    except ModelFileError as err:
        raise _refuse(
            path, f"{err}. Save the model again with this phcontrol."
        ) from err
    except Exception as err:
        raise _refuse(
            path,
            f"its 'config' does not rebuild a model ({type(err).__name__}: {err}). "
            "Save the model again with this phcontrol.",
        ) from err
    if not isinstance(module, nn.Module):
        raise _refuse(path, "its 'config' does not describe a phcontrol module")
    problem = _describe_mismatch(module, state)
    if problem is not None:
        raise _refuse(
            path,
            f"the stored parameters do not fit the model its config builds: {problem}. "
            "The config or the tensors were changed; save the model again.",
        )
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise _refuse(
            path, f"the stored parameters do not fit the model its config builds: {err}"
        ) from err
    return module.to(device)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the metadata of a model file without rebuilding the model.

    The file is checked as by :func:`load` (format, version, checksum), so
    what is returned is what :func:`save` wrote.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by :func:`save`.

    Returns
    -------
    dict
        ``format`` (str), ``format_version`` (int), ``phcontrol_version``
        (str), ``default_dtype`` (str), ``checksum`` (str), ``config`` (the
        parsed JSON tree that rebuilds the model, whose ``"class"`` names the
        top-level class) and ``user`` (the ``metadata`` passed to
        :func:`save`, or None).

    Raises
    ------
    ModelFileError
        For the same reasons as :func:`load`, except a mismatch between the
        config and the stored parameters, which only rebuilding reveals.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import phcontrol as phc
    >>> from phcontrol.io import save, read_metadata
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "ode.safetensors"
    >>> save(phc.NeuralODE(2, 1, hidden=(4,)), target, metadata={"run": 7})
    >>> info = read_metadata(target)
    >>> info["config"]["class"], info["user"]
    ('NeuralODE', {'run': 7})
    """
    path, meta, _ = _read(path)
    try:
        config = json.loads(meta.get("config", ""))
        user = json.loads(meta["user"]) if "user" in meta else None
    except json.JSONDecodeError as err:
        raise _refuse(path, f"its metadata is not valid JSON ({err.msg})") from err
    return {
        "format": meta["format"],
        "format_version": int(meta["format_version"]),
        "phcontrol_version": meta.get("phcontrol_version"),
        "default_dtype": meta.get("default_dtype"),
        "checksum": meta["checksum"],
        "config": config,
        "user": user,
    }
