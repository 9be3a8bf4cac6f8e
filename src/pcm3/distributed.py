"""Small helpers around ``torch.distributed`` that are no-ops in a single process.

One machine runs one process; more run under ``torchrun`` (gloo on CPU, NCCL on GPU), which
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

from pcm3.errors import ConfigError

__all__ = [
    "all_gather_tensor",
    "barrier",
    "cleanup",
    "init_distributed_from_env",
    "is_distributed",
    "rank",
    "world_size",
]


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def all_gather_tensor(t: Tensor) -> Tensor:
    """Concatenate ``t (B, ...)`` from every rank along dim 0, in rank order -> ``(W·B, ...)``.

    Every rank must pass the same shape and dtype. The result carries no gradient (use it for
    keys computed under ``no_grad``). The identity (``t`` itself) when not distributed or when
    the world has one process.
    """
    world = world_size()
    if world == 1:
        return t
    t = t.detach().contiguous()
    if dist.get_backend() == dist.Backend.NCCL:
        out = t.new_empty((world * t.shape[0], *t.shape[1:]))
        dist.all_gather_into_tensor(out, t)
        return out
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t)
    return torch.cat(parts, dim=0)


def all_reduce_max(value: float, device: torch.device) -> float:
    """The largest ``value`` over the processes (``value`` itself when not distributed)."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is not set (torchrun sets it)")
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed_from_env(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group described by torchrun's environment variables.

    Returns ``(rank, world_size, device)``. Without ``WORLD_SIZE`` (or with 1) nothing is
    initialised and the result is ``(0, 1, cuda:0 or cpu)``. ``backend`` defaults to ``nccl``
    when CUDA is available and ``gloo`` otherwise; the device is ``cuda:LOCAL_RANK`` for NCCL
    and ``cpu`` for gloo. Calling it again once initialised returns the current values.
    """
    use_cuda = torch.cuda.is_available()
    world = _env_int("WORLD_SIZE", default=1)
    if world < 1:
        raise ConfigError(f"WORLD_SIZE must be >= 1, got {world}")
    if backend is None:
        backend = "nccl" if use_cuda else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"distributed backend must be 'nccl' or 'gloo', got {backend!r}")
    if backend == "nccl" and not use_cuda:
        raise ConfigError("backend 'nccl' needs CUDA, which is not available; use 'gloo'")
    if world == 1 and not is_distributed():
        return 0, 1, torch.device("cuda:0" if use_cuda else "cpu")
    local_rank = _env_int("LOCAL_RANK", default=0)
    device = torch.device(f"cuda:{local_rank}" if backend == "nccl" else "cpu")
    if backend == "nccl":
        torch.cuda.set_device(device)
    if not is_distributed():
        global_rank = _env_int("RANK")
        if not 0 <= global_rank < world:
            raise ConfigError(f"RANK must be in [0, {world}), got {global_rank}")
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ConfigError(f"environment variable {name} is not set (torchrun sets it)")
        dist.init_process_group(
            backend=backend, init_method="env://", rank=global_rank, world_size=world
        )
    return rank(), world_size(), device


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (no-op when not distributed)."""
    if is_distributed():
        dist.destroy_process_group()
