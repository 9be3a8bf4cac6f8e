"""Two CPU processes with gloo: DDP keeps the ranks' weights identical and the MoCo queue
receives the keys of both ranks (reference DESIGN.md §5)."""

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

from ..conftest import TINY_MODEL

STEPS, BATCH = 3, 4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, store_path: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)
    rank, world, device = distributed.init_distributed_from_env(backend="gloo")
    try:
        cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"batch_size={BATCH}", f"max_steps={STEPS}"])
        store = open_store(store_path).split("xsub/train")
        torch.manual_seed(cfg.seed)
        method = build_method(cfg, store.layout, 3, 2)
        seen = []
        trainer = Trainer(
            cfg,
            method,
            store,
            Path(out) / "run",
            device,
            rank,
            world,
            on_step=lambda step, _: seen.append(step),
        )
        first_batch = next(trainer.batches.epoch(0)).index
        trainer.fit()
        torch.save(
            {"state": method.state_dict(), "first_batch": first_batch, "steps": seen},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        distributed.cleanup()


def test_two_ranks_stay_in_sync(tiny_store_path, tmp_path, spawnable):
    mp.spawn(_worker, args=(_free_port(), str(tiny_store_path), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["steps"] == r1["steps"] == [1, 2, 3]
    assert not set(r0["first_batch"].tolist()) & set(r1["first_batch"].tolist())  # disjoint shards
    for key, value in r0["state"].items():
        if "running_" in key or "num_batches" in key:
            continue  # BatchNorm statistics: DDP broadcasts rank 0's at each forward; rank 0 saves
        torch.testing.assert_close(value, r1["state"][key], msg=key)
    ptr = next(v for k, v in r0["state"].items() if k.endswith("queue.ptr"))
    assert int(ptr) == STEPS * BATCH * 2  # every step enqueued both ranks' keys
