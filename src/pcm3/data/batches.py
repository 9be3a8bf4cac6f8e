"""Raw-clip batches from a store: one sorted memory-map read per batch, no per-sample Python.

Views, masks and mixing are made later on the device, in batch. The order is a function of
``(seed, epoch)`` only, so a resumed run reads exactly the batches it would have read; in a
distributed run every rank reads a disjoint shard of each epoch's permutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pcm3.data.store import SkeletonStore


@dataclass
class ClipBatch:
    """``x (B, C, T, V, M)`` float32, ``lengths (B,)`` valid frames, ``index (B,)`` store rows."""

    x: torch.Tensor
    lengths: torch.Tensor
    index: torch.Tensor

    def to(self, device: torch.device | str) -> ClipBatch:
        nb = torch.device(device).type == "cuda"
        return ClipBatch(self.x.to(device, non_blocking=nb), self.lengths.to(device, non_blocking=nb),
                         self.index)


class ClipBatches:
    """Iterates an epoch of batches of ``batch_size`` clips (per rank) from ``store``.

    ``max_frames`` trims the padded time axis to what the batch needs (the longest clip in it).
    """

    def __init__(
        self,
        store: SkeletonStore,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.store = store
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.store)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        per_rank = n // self.world_size  # equal shards: DDP needs the same number of steps
        return order[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __len__(self) -> int:
        per_rank = len(self.store) // self.world_size
        full, rest = divmod(per_rank, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[ClipBatch]:
        """The batches of ``epoch``, starting after the first ``skip`` (to resume mid-epoch)."""
        order = self._order(epoch)
        for b in range(skip, len(self)):
            rows = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.read(rows)

    def read(self, rows: np.ndarray) -> ClipBatch:
        sort = np.argsort(rows, kind="stable")
        lengths = self.store.lengths[rows]
        t = int(lengths.max())
        x = np.empty((len(rows), *self.store.x.shape[1:]), dtype=np.float32)
        x[sort] = self.store.x[rows[sort]]  # one sorted read of the memory map
        return ClipBatch(torch.from_numpy(np.ascontiguousarray(x[:, :, :t])),
                         torch.from_numpy(lengths.astype(np.int64)), torch.from_numpy(rows))
