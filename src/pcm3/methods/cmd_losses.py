"""CMD's losses for any set of modalities: MoCo InfoNCE per modality and the cross-modal
relational KL between every ordered pair (teacher ≠ student)."""

from __future__ import annotations

from torch import Tensor

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
    teacher_sims = {m: (keys[m] @ queues[m].T).detach() for m in keys}
    out["cmd"] = sum(relational_kl(student_sims[b], teacher_sims[a], student_temperature, teacher_temperature,
                                   topk)
                     for a in keys for b in queries if a != b)
    return out


__all__ = ["cmd_losses"]
