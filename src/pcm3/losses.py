"""Pre-training losses as pure functions on tensors: InfoNCE against a MoCo queue, relational
KL distillation (CMD / PCM3), and MSE over masked coordinates.

Conventions:
- Embeddings are ``(N, D)`` and assumed L2-normalised by the caller; the queue is ``(K, D)``
  (one key per row, the layout of :class:`pcm3.methods.queue.MoCoQueue`; the official code
  stores its transpose ``(D, K)``).
- AMP: every loss upcasts half / bfloat16 inputs to float32 and runs with autocast disabled,
  so the similarity matmuls, softmax, log-softmax and cross-entropy are computed in float32
  even inside a ``torch.autocast(dtype=torch.bfloat16)`` region. float64 inputs stay float64
  (used by the gradient checks). Results are float32 (or float64) scalars / tensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from pcm3.errors import ConfigError, Pcm3Error

__all__ = [
    "info_nce",
    "info_nce_from_similarities",
    "info_nce_logits",
    "masked_mse",
    "relational_kl",
    "relational_kl_from_embeddings",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


@contextmanager
def _full_precision(like: Tensor) -> Iterator[None]:
    """Disable autocast on ``like``'s device for the enclosed computation."""
    with torch.autocast(device_type=like.device.type, enabled=False):
        yield


def _upcast(t: Tensor) -> Tensor:
    """Half / bfloat16 -> float32; other dtypes unchanged."""
    return t.float() if t.dtype in _LOW_PRECISION else t


def _check_temperature(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def _check_embeddings(name: str, x: Tensor, dim: int | None = None) -> None:
    if x.dim() != 2:
        raise Pcm3Error(f"{name} must be 2-D (rows, D), got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise Pcm3Error(f"{name} must have D = {dim} columns, got shape {tuple(x.shape)}")


def _queue_similarities(x: Tensor, queue: Tensor) -> Tensor:
    """``x (N, D)``, ``queue (K, D)`` -> ``x · queueᵀ (N, K)``, full precision."""
    return _upcast(x) @ _upcast(queue).transpose(0, 1)


def info_nce_logits(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.07) -> Tensor:
    """MoCo logits ``[⟨q, k⟩, q · Qᵀ] / τ``: the positive in column 0, then the K negatives.

    ``query (N, D)``, ``key (N, D)``, ``queue (K, D)`` -> ``(N, 1 + K)``. Nothing is detached
    here: the caller computes ``key`` under ``no_grad`` and passes a queue snapshot.
    """
    _check_temperature("temperature", temperature)
    _check_embeddings("query", query)
    _check_embeddings("key", key, query.shape[1])
    _check_embeddings("queue", queue, query.shape[1])
    if key.shape[0] != query.shape[0]:
        raise Pcm3Error(
            f"query and key must have the same number of rows, got {query.shape[0]} and "
            f"{key.shape[0]}"
        )
    with _full_precision(query):
        q = _upcast(query)
        positive = (q * _upcast(key).to(q.dtype)).sum(dim=1, keepdim=True)
        negatives = _queue_similarities(q, queue.to(q.dtype))
        return torch.cat([positive, negatives], dim=1) / temperature


def info_nce_from_similarities(
    positive: Tensor, negatives: Tensor, temperature: float = 0.07, reduction: str = "mean"
) -> Tensor:
    """InfoNCE from precomputed similarities: ``positive (N,)`` = ⟨q, k⟩, ``negatives (N, K)`` =
    q · Qᵀ. ``reduction="none"`` gives the ``(N,)`` per-row losses (callers that stack several
    query sets against one queue product split them afterwards)."""
    _check_temperature("temperature", temperature)
    with _full_precision(negatives):
        negatives = _upcast(negatives)
        logits = torch.cat([_upcast(positive).to(negatives.dtype).unsqueeze(1), negatives], dim=1)
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits / temperature, target, reduction=reduction)


def info_nce(query: Tensor, key: Tensor, queue: Tensor, temperature: float = 0.07) -> Tensor:
    """InfoNCE: cross-entropy of :func:`info_nce_logits` with target index 0, mean over N."""
    logits = info_nce_logits(query, key, queue, temperature)
    with _full_precision(logits):
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits, target)


def relational_kl(
    student_sim: Tensor,
    teacher_sim: Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.05,
    topk: int | None = None,
) -> Tensor:
    """Relational distillation ``KL(p_t ‖ p_s)``, mean over the batch ("batchmean").

    ``p_t = softmax(teacher_sim / τ_t)``, ``p_s = softmax(student_sim / τ_s)`` over the K queue
    entries; ``student_sim, teacher_sim (N, K)`` -> scalar ≥ 0. The teacher is detached here,
    so no gradient ever reaches it. ``topk`` (CMD style) restricts both distributions to each
    row's k largest teacher similarities; ``None`` uses all K (PCM3).
    """
    _check_temperature("student_temperature", student_temperature)
    _check_temperature("teacher_temperature", teacher_temperature)
    _check_embeddings("student_sim", student_sim)
    if teacher_sim.shape != student_sim.shape:
        raise Pcm3Error(
            f"student_sim and teacher_sim must have the same shape (N, K), got "
            f"{tuple(student_sim.shape)} and {tuple(teacher_sim.shape)}"
        )
    with _full_precision(student_sim):
        student = _upcast(student_sim)
        teacher = _upcast(teacher_sim.detach()).to(student.dtype)
        if topk is not None:
            num_keys = student.shape[1]
            if not 1 <= topk <= num_keys:
                raise ConfigError(f"topk must be in [1, {num_keys}] (the queue size), got {topk}")
            teacher, index = teacher.topk(topk, dim=1)
            student = student.gather(1, index)
        log_p_teacher = F.log_softmax(teacher / teacher_temperature, dim=1)
        log_p_student = F.log_softmax(student / student_temperature, dim=1)
        return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)


def relational_kl_from_embeddings(
    student: Tensor,
    teacher: Tensor,
    queue: Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.05,
    topk: int | None = None,
) -> Tensor:
    """:func:`relational_kl` of ``student · Qᵀ`` against ``teacher · Qᵀ``.

    ``student (N, D)``, ``teacher (N, D)``, ``queue (K, D)`` -> scalar. The teacher
    similarities are computed without gradient.
    """
    _check_embeddings("student", student)
    _check_embeddings("teacher", teacher, student.shape[1])
    _check_embeddings("queue", queue, student.shape[1])
    with _full_precision(student):
        student_sim = _queue_similarities(student, queue)
        with torch.no_grad():
            teacher_sim = _queue_similarities(teacher, queue)
    return relational_kl(student_sim, teacher_sim, student_temperature, teacher_temperature, topk)


def masked_mse(prediction: Tensor, target: Tensor, visible_mask: Tensor) -> Tensor:
    """Mean squared error over the masked (hidden) coordinates only.

    ``Σ (prediction − target)² · (1 − m) / Σ (1 − m)`` where ``visible_mask`` m (1 = visible,
    0 = masked; bool or float) broadcasts to ``prediction``'s shape and the count is taken over
    the broadcast shape, i.e. per coordinate. Returns 0 (not NaN, finite gradients) when
    nothing is masked.
    """
    if prediction.shape != target.shape:
        raise Pcm3Error(
            f"prediction and target must have the same shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )
    try:
        broadcast = torch.broadcast_shapes(visible_mask.shape, prediction.shape)
    except RuntimeError:
        broadcast = None
    if broadcast != prediction.shape:
        raise Pcm3Error(
            f"visible_mask of shape {tuple(visible_mask.shape)} does not broadcast to the "
            f"prediction shape {tuple(prediction.shape)}"
        )
    with _full_precision(prediction):
        pred = _upcast(prediction)
        hidden = (1 - visible_mask.to(pred.dtype)).expand(pred.shape)
        squared = (pred - _upcast(target).to(pred.dtype)).square()
        total = (squared * hidden).sum()
        count = hidden.sum()
        return total / torch.where(count > 0, count, torch.ones_like(count))
