"""CMD's losses for any set of modalities: MoCo InfoNCE per modality and the cross-modal
relational KL between every ordered pair (teacher ≠ student)."""

from __future__ import annotations

import torch
from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.losses import info_nce_from_similarities, relational_kl


def cmd_losses(queries: dict[str, Tensor], keys: dict[str, Tensor], queues: dict[str, Tensor],
               temperature: float, student_temperature: float, teacher_temperature: float,
               topk: int | None) -> dict[str, Tensor]:
    """``queries`` / ``keys`` ``{modality: (N, D)}`` (L2-normalised), ``queues`` ``{modality: (K, D)}``
    whose rows hold the keys of the same samples in every modality. Returns ``contrast_<m>``:
    InfoNCE of ``q_m`` against ``k_m`` and queue ``m``; ``cmd``: the sum over ordered pairs
    (teacher a, student b ≠ a) of ``KL(softmax(k_a · Q_aᵀ / τ_t) ‖ softmax(q_b · Q_bᵀ / τ_s))``,
    both restricted to the ``topk`` largest teacher similarities of each row (None: all K). Full
    precision (autocast off, bf16 upcast); one queue product per modality serves both losses."""
    if topk is not None and not 1 <= topk <= next(iter(queues.values())).shape[0]:
        raise ConfigError(f"cmd: topk must be in [1, {next(iter(queues.values())).shape[0]}] (the queue "
                          f"size), got {topk}")
    like = next(iter(queries.values()))
    with torch.autocast(device_type=like.device.type, enabled=False):  # full precision, as pcm3.losses
        dtype = torch.promote_types(like.dtype, torch.float32)  # bf16 -> fp32, fp64 stays
        q = {m: queries[m].to(dtype) for m in queries}
        queue = {m: queues[m].to(dtype) for m in queues}
        student_sims = {m: q[m] @ queue[m].T for m in q}  # one queue product per modality, both losses
        out = {f"contrast_{m}": info_nce_from_similarities((q[m] * keys[m].to(dtype)).sum(dim=1),
                                                           student_sims[m], temperature) for m in q}
        teachers = {}  # per teacher: its top similarities and their queue indices, selected once
        for a in keys:
            sims, index = (keys[a].to(dtype) @ queue[a].T).detach(), None
            if topk is not None and topk < sims.shape[1]:  # the order within the top k does not matter
                sims, index = sims.topk(topk, dim=1, sorted=False)
            teachers[a] = sims, index
        out["cmd"] = sum(relational_kl(student_sims[b] if index is None else student_sims[b].gather(1, index),
                                       sims, student_temperature, teacher_temperature)
                         for a, (sims, index) in teachers.items() for b in q if a != b)
    return out


__all__ = ["cmd_losses"]
