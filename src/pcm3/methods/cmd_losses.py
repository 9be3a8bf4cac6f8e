"""CMD's losses for any set of modalities: MoCo InfoNCE per modality and the cross-modal
relational KL between every ordered pair (teacher ≠ student)."""

from __future__ import annotations

from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.losses import info_nce, relational_kl


def cmd_losses(queries: dict[str, Tensor], keys: dict[str, Tensor], queues: dict[str, Tensor],
               temperature: float, student_temperature: float, teacher_temperature: float,
               topk: int | None) -> dict[str, Tensor]:
    """``queries`` / ``keys`` ``{modality: (N, D)}`` (L2-normalised), ``queues`` ``{modality: (K, D)}``
    whose rows hold the keys of the same samples in every modality. Returns ``contrast_<m>``:
    InfoNCE of ``q_m`` against ``k_m`` and queue ``m``; ``cmd``: the sum over ordered pairs
    (teacher a, student b ≠ a) of ``KL(softmax(k_a · Q_aᵀ / τ_t) ‖ softmax(q_b · Q_bᵀ / τ_s))``,
    both restricted to the ``topk`` largest teacher similarities of each row (None: all K)."""
    out = {f"contrast_{m}": info_nce(queries[m], keys[m], queues[m], temperature) for m in queries}
    student_sims = {m: queries[m] @ queues[m].T for m in queries}
    teachers = {}  # per teacher: its similarities and their queue indices, selected once for every student
    for a in keys:
        sims = (keys[a] @ queues[a].T).detach()
        index = None
        if topk is not None and not 1 <= topk <= sims.shape[1]:
            raise ConfigError(f"cmd: topk must be in [1, {sims.shape[1]}] (the queue size), got {topk}")
        if topk is not None and topk < sims.shape[1]:  # the order within the top k does not matter
            sims, index = sims.topk(topk, dim=1, sorted=False)
        teachers[a] = sims, index
    out["cmd"] = sum(relational_kl(student_sims[b] if index is None else student_sims[b].gather(1, index),
                                   sims, student_temperature, teacher_temperature)
                     for a, (sims, index) in teachers.items() for b in queries if a != b)
    return out


__all__ = ["cmd_losses"]
