"""The MoCo queue of negative keys: a ring buffer of L2-normalised embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcm3.distributed import all_gather_tensor
from pcm3.errors import ConfigError, Pcm3Error

__all__ = ["MoCoQueue"]


class MoCoQueue(nn.Module):
    """A ring buffer of ``size`` keys of dimension ``dim``.

    Buffers (saved in ``state_dict``): ``keys (K, D)`` float32, one key per row, initialised
    with standard-normal rows normalised to unit length (the official code normalises the
    columns of its ``(D, K)`` transpose: the same thing); ``ptr`` () long, the next row to
    write. Under DDP every rank enqueues the keys of all ranks, in rank order, so the queues
    stay identical provided they start identical (same seed, or broadcast from rank 0).
    """

    keys: Tensor
    ptr: Tensor

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ConfigError(f"queue size and dim must be >= 1, got size={size}, dim={dim}")
        keys = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.register_buffer("keys", keys)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        """K, the number of keys held."""
        return self.keys.shape[0]

    @property
    def dim(self) -> int:
        """D, the key dimension."""
        return self.keys.shape[1]

    def snapshot(self) -> Tensor:
        """The current keys ``(K, D)`` as a detached CLONE.

        Take it before :meth:`enqueue` and give it to the losses: they then use the pre-update
        queue (as MoCo does), and the later in-place enqueue cannot invalidate tensors that
        autograd saved for the backward pass.
        """
        return self.keys.detach().clone()

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys (B, D)`` (and, under DDP, every other rank's batch) at the pointer.

        The gathered batch ``(W·B, D)`` goes to rows ``ptr, ptr+1, ... (mod K)``, wrapping
        around the end; the pointer becomes ``(ptr + W·B) mod K``. If ``W·B > K`` only the last
        K keys survive, as with one-by-one writes. Keys are stored as given (normalise them
        first), cast to the queue's device and dtype. The pointer stays on the device (no
        host sync).
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise Pcm3Error(
                f"keys to enqueue must have shape (B, {self.dim}), got {tuple(keys.shape)}"
            )
        batch = all_gather_tensor(keys.detach()).to(self.keys.device, self.keys.dtype)
        count = batch.shape[0]
        first = max(count - self.size, 0)
        offsets = torch.arange(first, count, device=self.keys.device)
        rows = (self.ptr + offsets) % self.size
        self.keys.index_copy_(0, rows, batch[first:])
        self.ptr.copy_((self.ptr + count) % self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
