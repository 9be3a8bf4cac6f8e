"""Tests for pcm3.distributed: single-process no-ops, and two gloo CPU processes on loopback
whose MoCo queues stay identical and receive both ranks' keys in rank order."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from pcm3 import distributed
from pcm3.errors import ConfigError
from pcm3.methods.queue import MoCoQueue

WORLD = 2
QUEUE_SIZE, DIM, BATCH, STEPS = 8, 4, 2, 3


def rank_keys(rank: int, step: int) -> torch.Tensor:
    """(BATCH, DIM) unit keys, distinct for every (rank, step, row)."""
    keys = torch.full((BATCH, DIM), float(rank + 1))
    for row in range(BATCH):
        keys[row, (rank * BATCH + row) % DIM] += 3.0 * (step + 1)
    keys[:, DIM - 1] *= -1.0 if step % 2 else 1.0
    return F.normalize(keys, dim=1)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)
    got_rank, got_world, device = distributed.init_distributed_from_env(backend="gloo")
    try:
        gathered = distributed.all_gather_tensor(torch.full((1, 3), float(rank)))
        queue = MoCoQueue(QUEUE_SIZE, DIM, generator=torch.Generator().manual_seed(0))
        initial = queue.keys.clone()
        for step in range(STEPS):
            queue.enqueue(rank_keys(rank, step))
        distributed.barrier()
        torch.save(
            {
                "rank": got_rank,
                "world": got_world,
                "device": str(device),
                "is_distributed": distributed.is_distributed(),
                "gathered": gathered,
                "initial": initial,
                "keys": queue.keys.clone(),
                "ptr": int(queue.ptr),
            },
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        distributed.cleanup()


def test_two_gloo_processes_keep_queues_in_sync(tmp_path, spawnable):
    mp.spawn(worker, args=(free_loopback_port(), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # Reference: one python ring buffer fed with rank 0's batch then rank 1's, step by step.
    rows = results[0]["initial"].tolist()
    ptr = 0
    for step in range(STEPS):
        for r in range(WORLD):
            for key in rank_keys(r, step).tolist():
                rows[ptr] = key
                ptr = (ptr + 1) % QUEUE_SIZE

    for r, res in enumerate(results):
        assert (res["rank"], res["world"], res["device"]) == (r, WORLD, "cpu")
        assert res["is_distributed"]
        torch.testing.assert_close(res["gathered"], torch.tensor([[0.0] * 3, [1.0] * 3]))
        torch.testing.assert_close(res["keys"], torch.tensor(rows), rtol=0, atol=0)
        assert res["ptr"] == ptr == (STEPS * WORLD * BATCH) % QUEUE_SIZE
    torch.testing.assert_close(results[0]["keys"], results[1]["keys"], rtol=0, atol=0)


def test_single_process_helpers_are_no_ops(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1
    t = torch.randn(3, 2)
    assert distributed.all_gather_tensor(t) is t
    rank, world, device = distributed.init_distributed_from_env(backend="gloo")
    assert (rank, world, device) == (0, 1, torch.device("cpu"))
    assert not distributed.is_distributed()
    distributed.barrier()
    distributed.cleanup()


def test_init_from_env_reports_bad_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        distributed.init_distributed_from_env(backend="gloo")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="RANK"):
        distributed.init_distributed_from_env(backend="gloo")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        distributed.init_distributed_from_env(backend="gloo")
    with pytest.raises(ConfigError, match="backend"):
        distributed.init_distributed_from_env(backend="mpi")
    assert not distributed.is_distributed()
