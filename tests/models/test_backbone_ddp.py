"""Every registered backbone under DDP: two CPU processes with gloo (as ``torchrun`` starts
them), each training on its own data for a few steps, end with identical parameters and
BatchNorm step counts. One pair of processes runs every backbone in turn."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from pcm3 import distributed
from pcm3.layouts import KINECT_V1_20
from pcm3.models.encoder import EncoderSpec, build_encoder

from .test_backbone_contract import VARIANT_IDS, VARIANTS

STEPS = 3


class Features(torch.nn.Module):
    """DDP calls ``forward``: the backbone's sequence and dense features (the contract's API)."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return (self.backbone.forward_features(x, lengths).square().mean()
                + self.backbone.forward_dense(x, lengths).square().mean())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    rank, _, _ = distributed.init_distributed_from_env(backend="gloo")
    try:
        states = {}
        for vid, (name, options) in zip(VARIANT_IDS, VARIANTS, strict=True):
            torch.manual_seed(0)  # the same initial weights on both ranks
            spec = EncoderSpec(name, options, 3, 2, KINECT_V1_20)
            backbone = build_encoder(spec).backbone.train()
            initial = {k: v.detach().clone() for k, v in backbone.state_dict().items()}
            model = torch.nn.parallel.DistributedDataParallel(Features(backbone))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            data = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
            for _ in range(STEPS):
                x = torch.randn(4, 3, 16, 20, 2, generator=data)
                lengths = torch.randint(8, 17, (4,), generator=data)
                loss = model(x, lengths)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            states[vid] = {"initial": initial, "final": backbone.state_dict()}
        torch.save(states, Path(out) / f"rank{rank}.pt")
    finally:
        distributed.cleanup()


def test_two_ranks_keep_every_backbone_in_sync(tmp_path, spawnable):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert set(r0) == set(r1) == set(VARIANT_IDS)
    for vid in VARIANT_IDS:
        a, b = r0[vid]["final"], r1[vid]["final"]
        for key, value in a.items():
            if "running_" in key:
                continue  # BatchNorm statistics: DDP broadcasts rank 0's, then each rank updates its own
            torch.testing.assert_close(value, b[key], msg=f"{vid}: {key}")
        initial = r0[vid]["initial"]
        assert any(not torch.equal(v, initial[k]) for k, v in a.items() if "running_" not in k), vid
