"""Every registered method under DDP (two gloo CPU processes, as ``torchrun`` starts them, each on
its own shard): after a few steps the ranks hold identical trainable weights, EMA copies and
queues, and every queue has received the keys of both ranks. One pair of processes runs every
method in turn."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from pcm3 import distributed
from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method
from pcm3.methods.base import MomentumMethod
from pcm3.methods.registry import known_methods

from .every_method import tiny_method

STEPS, BATCH = 2, 4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, store_path: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    rank, world, device = distributed.init_distributed_from_env(backend="gloo")
    try:
        results = {}
        for name in known_methods():
            cfg = load_config(PretrainConfig, None, [*tiny_method(name), f"batch_size={BATCH}",
                                                     f"max_steps={STEPS}"])
            store = open_store(store_path).split("xsub/train")
            torch.manual_seed(cfg.seed)
            method = build_method(cfg, store.layout, 3, 2)
            Trainer(cfg, method, store, Path(out) / name, device, rank, world).fit()
            queues = method.queues() if isinstance(method, MomentumMethod) else {}
            results[name] = {"state": method.state_dict(),
                             "queue_ptrs": {k: q.ptr.clone() for k, q in queues.items()},
                             "queue_sizes": {k: torch.tensor(q.size) for k, q in queues.items()}}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


def test_two_ranks_stay_in_sync_for_every_method(tiny_store_path, tmp_path, spawnable):
    mp.spawn(_worker, args=(_free_port(), str(tiny_store_path), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert set(r0) == set(r1) == set(known_methods())
    for name in r0:
        a, b = r0[name]["state"], r1[name]["state"]
        for key, value in a.items():
            if "running_" in key or "num_batches" in key:
                continue  # BatchNorm statistics: each rank's own (DDP broadcasts rank 0's buffers)
            torch.testing.assert_close(value, b[key], rtol=0, atol=0, msg=f"{name}: {key}")
        for key, ptr in r0[name]["queue_ptrs"].items():  # both ranks' keys went into every queue
            expected = STEPS * BATCH * 2 % int(r0[name]["queue_sizes"][key])
            assert int(ptr) == int(r1[name]["queue_ptrs"][key]) == expected, (name, key)
