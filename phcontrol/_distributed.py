r"""Data parallelism over processes started by ``torchrun``.

``torchrun --nproc_per_node=N`` starts ``N`` copies of a program with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. :func:`init`
joins them into one process group (gloo for CPU tensors, nccl for CUDA
tensors); the collectives below then sum tensors over the processes, so
that every process holds the same totals and takes the same decisions.

Without those variables (a plain ``python`` run) nothing is initialised and
every helper is a no-op: ``rank() == 0``, ``world_size() == 1``, sums
return their argument.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from datetime import timedelta

import torch
from torch import Tensor, nn

__all__: list[str] = []

TIMEOUT_ENV = "PHCONTROL_DIST_TIMEOUT"
"""Environment variable overriding :data:`DEFAULT_TIMEOUT`, in seconds."""

DEFAULT_TIMEOUT = 300.0
"""Seconds a process waits in a collective (and for its peers to join)
before it gives up with an error. The processes do equal work between
collectives, so a wait this long means that a peer has died or hangs; the
timeout turns that into an error instead of a job that runs until the
scheduler's limit."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def world_size() -> int:
    """Number of processes: the group's size, else ``WORLD_SIZE``, else 1."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return max(_env_int("WORLD_SIZE", 1), 1)


def rank() -> int:
    """This process's rank: the group's, else ``RANK``, else 0."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0)


def local_rank() -> int:
    """Rank of this process on its node (``LOCAL_RANK``), else 0."""
    return _env_int("LOCAL_RANK", 0)


def is_main() -> bool:
    """True for the process that writes files and prints (rank 0)."""
    return rank() == 0


def backend_for(device: str | torch.device) -> str:
    """Collective backend for tensors on ``device``: nccl for CUDA, gloo else."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init(device: str | torch.device = "cpu", timeout: float | None = None) -> bool:
    """Join the process group that ``torchrun`` prepared, once.

    Parameters
    ----------
    device : str or torch.device, default "cpu"
        Where the tensors to be reduced live; picks the backend.
    timeout : float, optional
        Seconds to wait for peers in any collective; default
        ``$PHCONTROL_DIST_TIMEOUT`` or :data:`DEFAULT_TIMEOUT`.

    Returns
    -------
    bool
        True when running with more than one process.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if _env_int("WORLD_SIZE", 1) <= 1:
        return False
    if not dist.is_available():
        from .errors import NotSupportedError

        raise NotSupportedError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for several processes, "
            "but this torch build has no torch.distributed; run one process "
            "(unset WORLD_SIZE) or install a torch build with distributed support"
        )
    if timeout is None:
        timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    atexit.register(_close)
    return dist.get_world_size() > 1


def _close() -> None:
    dist = torch.distributed
    if dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    if world_size() == 1:
        return False
    # An internal invariant: every entry point calls init() first.
    assert torch.distributed.is_initialized(), "call _distributed.init() first"
    return True


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Return the sum of ``tensor`` over the processes (same on every one).

    The argument is left unchanged; in one process it is returned as is.
    """
    if not _active():
        return tensor
    total = tensor.detach().clone().contiguous()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total


def all_reduce_sums(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Return the sums over the processes of several tensors of one dtype.

    One reduction carries them all; in one process they are returned as is.
    """
    if not _active():
        return tensors
    flat = all_reduce_sum(torch.cat([t.reshape(-1) for t in tensors]))
    out, i = [], 0
    for t in tensors:
        out.append(flat[i : i + t.numel()].view_as(t))
        i += t.numel()
    return tuple(out)


def all_reduce_max(tensor: Tensor) -> Tensor:
    """Return the elementwise maximum of ``tensor`` over the processes."""
    if not _active():
        return tensor
    top = tensor.detach().clone().contiguous()
    torch.distributed.all_reduce(top, op=torch.distributed.ReduceOp.MAX)
    return top


def any_true(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any of them."""
    if not _active():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)])).item() > 0)


def all_reduce_grads(params: Iterable[nn.Parameter]) -> None:
    """Replace each parameter's gradient by its sum over the processes.

    Every process reduces the same list (the parameters that require a
    gradient), a missing gradient counting as zeros; one that is missing on
    every process stays ``None``. One reduction carries all of them.
    """
    if not _active():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor(
        [float(p.grad is not None) for p in params], dtype=grads[0].dtype
    )
    flat = all_reduce_sum(torch.cat([*(g.reshape(-1) for g in grads), present]))
    i = 0
    for p, seen in zip(params, flat[-len(params) :], strict=True):
        k = p.numel()
        p.grad = flat[i : i + k].view_as(p).clone() if seen > 0 else None
        i += k


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy the parameters and buffers of rank ``src``'s module to every rank."""
    if not _active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        data = tensor.detach()
        buffer = data if data.is_contiguous() else data.contiguous()
        torch.distributed.broadcast(buffer, src)
        if buffer is not data:
            data.copy_(buffer)


def barrier() -> None:
    """Wait until every process has arrived here."""
    if _active():
        torch.distributed.barrier()


def is_comm_error(err: BaseException) -> bool:
    """True when ``err`` comes from a collective (a peer died or timed out)."""
    dist_error = getattr(torch.distributed, "DistError", None)
    return dist_error is not None and isinstance(err, dist_error)
