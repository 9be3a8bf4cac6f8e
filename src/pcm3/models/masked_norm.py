"""BatchNorm whose train-mode statistics come from valid rows only.

A padded batch (clips of different lengths, zeros past each length) fed through a train-mode
``nn.BatchNorm1d`` normalises every frame with statistics partly taken from the padding: with
PCM3++'s masked clips, 48 of 64 frames can be zeros. :func:`masked_batch_norm` computes the
batch mean and (biased) variance over the rows marked valid, updates the running statistics
as ``nn.BatchNorm1d`` does (momentum, unbiased variance, ``num_batches_tracked``), and
normalises every row with them. In eval mode, or without a mask, it is the module's own forward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_batch_norm(norm: nn.BatchNorm1d, x: Tensor, valid: Tensor | None) -> Tensor:
    """``(R, C) -> (R, C)``: ``norm`` applied to ``x``, train-mode statistics from the rows where
    ``valid`` ``(R,)`` (bool) is true. ``valid=None`` or eval mode: exactly ``norm(x)``."""
    if valid is None or not norm.training:
        return norm(x)
    keep = valid.reshape(-1, 1).to(x.dtype)
    count = keep.sum()  # a tensor: no host sync on the GPU (every clip has >= 1 valid frame)
    stats_dtype = torch.promote_types(x.dtype, torch.float32)  # bf16/fp16 -> fp32 statistics
    xs, keep = x.to(stats_dtype), keep.to(stats_dtype)
    mean = (xs * keep).sum(dim=0) / count
    var = (((xs - mean) ** 2) * keep).sum(dim=0) / count
    if norm.track_running_stats and norm.running_mean is not None and norm.running_var is not None:
        # through .data, as the native kernel does: an earlier BatchNorm call of this step saved the
        # running buffers for its backward, and a visible in-place update would invalidate it
        with torch.no_grad():
            tracked = norm.num_batches_tracked.data  # type: ignore[union-attr]
            tracked.add_(1)
            factor = 1.0 / float(tracked) if norm.momentum is None else norm.momentum
            norm.running_mean.data.lerp_(mean.to(norm.running_mean.dtype), factor)
            unbiased = var * count / (count - 1).clamp(min=1)  # one valid row: the biased variance (0)
            norm.running_var.data.lerp_(unbiased.to(norm.running_var.dtype), factor)
    y = (xs - mean) * torch.rsqrt(var + norm.eps)
    if norm.affine:
        y = y * norm.weight + norm.bias
    return y.to(x.dtype)


__all__ = ["masked_batch_norm"]
