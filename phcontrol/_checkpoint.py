"""Checkpoints of a running fit, and stopping a fit cleanly on a signal.

A checkpoint is one ``.safetensors`` file: the model's current and best
parameters, the optimiser's moment tensors and the random generator's state
as tensors; the stage, step counts, history, learning rate and a
fingerprint of the data and options as JSON metadata, all under a SHA-256
checksum. Nothing is pickled, and every write goes through a temporary file
and a rename, so a crash leaves either the old checkpoint or the new one.

:class:`StopRequest` turns SIGINT and SIGTERM into a request that the
fitting loops honour at the next step boundary; a second SIGINT interrupts
at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import safetensors.torch
from torch import Tensor

from .errors import ModelFileError
from .io import _atomic_write, _checksum

__all__: list[str] = []

logger = logging.getLogger(__name__)

FORMAT = "phcontrol-fit-checkpoint"
FORMAT_VERSION = 1


@dataclass
class FitState:
    """Where a fit stands: enough to continue it exactly.

    ``stage`` is ``"lbfgs"``, ``"adam"`` or ``"done"``; ``stage_step`` the
    steps of that stage already taken.
    """

    stage: str
    stage_step: int
    step: int
    best_val: float
    history: list[dict[str, Any]]
    events: list[dict[str, Any]]
    current: dict[str, Tensor]
    best: dict[str, Tensor]
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    generator: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fingerprint(arrays: list[np.ndarray], options: Mapping[str, Any]) -> str:
    """SHA-256 of the data and the options that define a fit."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dict(options), sort_keys=True, default=str).encode())
    for array in arrays:
        a = np.ascontiguousarray(array, dtype=np.float64)
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def save_checkpoint(path: Path, state: FitState, fingerprint_: str) -> None:
    """Write ``state`` to ``path`` atomically (parents are created)."""
    tensors: dict[str, Tensor] = {}
    for prefix, entries in (("current.", state.current), ("best.", state.best)):
        for key, value in entries.items():
            tensors[prefix + key] = value.detach().to("cpu").contiguous().clone()
    optim_meta = None
    if state.optimizer is not None:
        slots: dict[str, dict[str, Any]] = {}
        for index, slot in state.optimizer["state"].items():
            plain: dict[str, Any] = {}
            for key, value in slot.items():
                if isinstance(value, Tensor):
                    name = f"optim.{index}.{key}"
                    tensors[name] = value.detach().to("cpu").contiguous().clone()
                    plain[key] = {"tensor": name}
                else:
                    plain[key] = value
            slots[str(index)] = plain
        optim_meta = {"state": slots, "param_groups": state.optimizer["param_groups"]}
    if state.generator is not None:
        tensors["generator"] = state.generator.clone()
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "fingerprint": fingerprint_,
        "progress": _json(
            {
                "stage": state.stage,
                "stage_step": state.stage_step,
                "step": state.step,
                "best_val": state.best_val,
                "history": state.history,
                "events": state.events,
                "extra": state.extra,
            }
        ),
        "optimizer": _json(optim_meta),
        "scheduler": _json(state.scheduler),
    }
    meta["checksum"] = _checksum(tensors, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, safetensors.torch.save(tensors, metadata=meta))
    logger.debug("checkpoint %s: %s step %d", path, state.stage, state.stage_step)


def _refuse(path: Path, message: str) -> ModelFileError:
    return ModelFileError(f"cannot resume from {str(path)!r}: {message}")


def load_checkpoint(path: Path, fingerprint_: str) -> FitState:
    """Read and check a checkpoint written by :func:`save_checkpoint`."""
    from .io import _read_header

    if not path.is_file():
        raise FileNotFoundError(
            f"`checkpoint` {str(path)!r} does not exist, so there is nothing to "
            "resume; run without resume to start a new fit"
        )
    data = path.read_bytes()
    header = _read_header(path, data)  # refuses pickles, zips and truncation
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise _refuse(
            path, f"it is not a fit checkpoint (format {meta.get('format')!r})"
        )
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise _refuse(
            path,
            f"its format version {meta.get('format_version')!r} is not "
            f"{FORMAT_VERSION}; start a new fit without resume",
        )
    try:
        tensors = safetensors.torch.load(data)
    except Exception as err:  # the Rust parser's own error type
        raise _refuse(path, f"its tensors cannot be read ({err})") from err
    if _checksum(tensors, meta) != meta.get("checksum"):
        raise _refuse(
            path, "checksum mismatch: the file was changed after it was written"
        )
    if meta.get("fingerprint") != fingerprint_:
        raise _refuse(
            path,
            "it belongs to a fit of other data or other options; resume with the "
            "same log and options, or start a new fit without resume",
        )
    progress = json.loads(meta["progress"])
    optim = json.loads(meta["optimizer"])
    optimizer = None
    if optim is not None:
        state: dict[int, dict[str, Any]] = {}
        for index, slot in optim["state"].items():
            state[int(index)] = {
                k: tensors[v["tensor"]] if isinstance(v, dict) else v
                for k, v in slot.items()
            }
        optimizer = {"state": state, "param_groups": optim["param_groups"]}

    def group(prefix: str) -> dict[str, Tensor]:
        return {
            k.removeprefix(prefix): v
            for k, v in tensors.items()
            if k.startswith(prefix)
        }

    return FitState(
        stage=progress["stage"],
        stage_step=int(progress["stage_step"]),
        step=int(progress["step"]),
        best_val=float(progress["best_val"]),
        history=progress["history"],
        events=progress["events"],
        current=group("current."),
        best=group("best."),
        optimizer=optimizer,
        scheduler=json.loads(meta["scheduler"]),
        generator=tensors.get("generator"),
        extra=progress.get("extra", {}),
    )


class StopRequest:
    """Catch SIGINT and SIGTERM while a fit runs; the loops poll :attr:`reason`.

    Handlers are installed only in the main thread (Python allows no
    other) and restored on exit. The first SIGINT or SIGTERM sets
    :attr:`reason`; a second SIGINT raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name
        logger.warning(
            "%s received: stopping at the end of this step (press Ctrl-C again "
            "to stop at once)",
            self.reason,
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._saved[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover - embedded Pythons
                    pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a checkpoint file if it exists."""
    Path(path).unlink(missing_ok=True)
