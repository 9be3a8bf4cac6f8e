"""Tests for pcm3.losses against hand-computed cases and slow per-sample references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.losses import (
    info_nce,
    info_nce_logits,
    masked_mse,
    relational_kl,
    relational_kl_from_embeddings,
)


def unit_rows(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


# ----------------------------------------------------------------------------- references


def reference_info_nce(q, k, queue, tau: float) -> float:
    """Per sample: −log(exp(q·k/τ) / (exp(q·k/τ) + Σ_j exp(q·Q_j/τ))), then the mean."""
    total = 0.0
    for n in range(q.shape[0]):
        pos = sum(float(q[n, d]) * float(k[n, d]) for d in range(q.shape[1])) / tau
        negs = [
            sum(float(q[n, d]) * float(queue[j, d]) for d in range(q.shape[1])) / tau
            for j in range(queue.shape[0])
        ]
        top = max([pos, *negs])
        denominator = math.exp(pos - top) + sum(math.exp(v - top) for v in negs)
        total += -(pos - top - math.log(denominator))
    return total / q.shape[0]


def softmax_list(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def reference_kl(student, teacher, tau_s: float, tau_t: float, topk: int | None = None) -> float:
    """Per row: Σ_j p_t log(p_t / p_s) over all (or the teacher's top-k) columns; batch mean."""
    total = 0.0
    for n in range(student.shape[0]):
        t_row = [float(v) for v in teacher[n]]
        s_row = [float(v) for v in student[n]]
        columns = sorted(range(len(t_row)), key=lambda j: -t_row[j])[: topk or len(t_row)]
        p_t = softmax_list([t_row[j] / tau_t for j in columns])
        p_s = softmax_list([s_row[j] / tau_s for j in columns])
        total += sum(a * math.log(a / b) for a, b in zip(p_t, p_s, strict=True) if a > 0)
    return total / student.shape[0]


# ----------------------------------------------------------------------------- InfoNCE


def test_info_nce_hand_computed_single_sample():
    # q = k = e1, queue = [e2, −e1], τ = 1: logits [1, 0, −1] -> loss = log(1 + e^−1 + e^−2).
    q = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    logits = info_nce_logits(q, q, queue, temperature=1.0)
    torch.testing.assert_close(logits, torch.tensor([[1.0, 0.0, -1.0]]))
    expected = math.log(1 + math.exp(-1) + math.exp(-2))
    assert info_nce(q, q, queue, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)
    # τ = 0.5 doubles the logits.
    torch.testing.assert_close(info_nce_logits(q, q, queue, 0.5), torch.tensor([[2.0, 0.0, -2.0]]))


@pytest.mark.parametrize("tau", [0.07, 0.2, 1.0])
def test_info_nce_matches_loop_reference(tau):
    q, k, queue = unit_rows(5, 4, seed=0), unit_rows(5, 4, seed=1), unit_rows(7, 4, seed=2)
    logits = info_nce_logits(q, k, queue, tau)
    assert logits.shape == (5, 8)
    for n in range(5):
        assert logits[n, 0].item() == pytest.approx(float(q[n] @ k[n]) / tau, rel=1e-5)
        for j in range(7):
            assert logits[n, 1 + j].item() == pytest.approx(
                float(q[n] @ queue[j]) / tau, rel=1e-5, abs=1e-6
            )
    assert info_nce(q, k, queue, tau).item() == pytest.approx(
        reference_info_nce(q, k, queue, tau), rel=1e-5
    )


def test_info_nce_gradcheck_float64():
    q = unit_rows(3, 4, seed=3, dtype=torch.float64).requires_grad_()
    k = unit_rows(3, 4, seed=4, dtype=torch.float64).requires_grad_()
    queue = unit_rows(5, 4, seed=5, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: info_nce(a, b, c, 0.3), (q, k, queue))


def test_info_nce_rejects_bad_shapes_and_temperature():
    q, queue = unit_rows(2, 4, seed=0), unit_rows(3, 4, seed=1)
    with pytest.raises(Pcm3Error, match="queue"):
        info_nce(q, q, unit_rows(4, 3, seed=2))  # (D, K) layout is not accepted
    with pytest.raises(Pcm3Error, match="same number of rows"):
        info_nce(q, q[:1], queue)
    with pytest.raises(ConfigError, match="temperature"):
        info_nce(q, q, queue, temperature=0.0)


# ----------------------------------------------------------------------------- relational KL


def test_relational_kl_hand_computed_2x3():
    # Default temperatures τ_t = 0.05, τ_s = 0.1; inputs scaled so that sim / τ is simple.
    # Row 0: teacher logits (0, ln 2, ln 3) -> p_t = (1/6, 2/6, 3/6); student uniform (1/3 each).
    #        KL = 1/6·ln(1/2) + 1/3·ln(1) + 1/2·ln(3/2).
    # Row 1: teacher uniform; student logits (0, 0, ln 2) -> p_s = (1/4, 1/4, 1/2).
    #        KL = 1/3·(ln(4/3) + ln(4/3) + ln(2/3)) = 1/3·ln(32/27).
    ln2, ln3 = math.log(2), math.log(3)
    teacher = 0.05 * torch.tensor([[0.0, ln2, ln3], [0.0, 0.0, 0.0]])
    student = 0.1 * torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, ln2]])
    row0 = math.log(0.5) / 6 + math.log(1.5) / 2
    row1 = math.log(32 / 27) / 3
    result = relational_kl(student, teacher)
    assert result.item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_relational_kl_topk_hand_computed():
    # Teacher top-2 columns of (3, 1, 2) are {0, 2}; τ = 1 for both.
    teacher = torch.tensor([[3.0, 1.0, 2.0]])
    student = torch.tensor([[0.0, 5.0, math.log(3)]])
    # p_t ∝ (e^3, e^2) = (e/(1+e), 1/(1+e)); p_s ∝ (1, 3) = (1/4, 3/4).
    e = math.e
    a, b = e / (1 + e), 1 / (1 + e)
    expected = a * math.log(a / 0.25) + b * math.log(b / 0.75)
    got = relational_kl(student, teacher, 1.0, 1.0, topk=2)
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("topk", [None, 1, 3, 6])
def test_relational_kl_matches_loop_reference(topk):
    g = torch.Generator().manual_seed(7)
    student, teacher = torch.rand(4, 6, generator=g) * 2 - 1, torch.rand(4, 6, generator=g) * 2 - 1
    got = relational_kl(student, teacher, 0.1, 0.05, topk=topk)
    assert got.item() == pytest.approx(reference_kl(student, teacher, 0.1, 0.05, topk), rel=1e-4)


def test_relational_kl_nonnegative_and_zero_at_temperature_ratio():
    g = torch.Generator().manual_seed(8)
    for _ in range(5):
        student, teacher = torch.randn(3, 9, generator=g), torch.randn(3, 9, generator=g)
        assert relational_kl(student, teacher).item() >= 0.0
    teacher = torch.randn(3, 9, generator=g)
    # student / τ_s == teacher / τ_t  <=>  student = teacher · τ_s / τ_t.
    student = teacher * (0.1 / 0.05)
    assert relational_kl(student, teacher, 0.1, 0.05).item() == pytest.approx(0.0, abs=1e-6)
    assert relational_kl(teacher, teacher, 0.1, 0.05).item() > 1e-3


def test_relational_kl_no_gradient_to_teacher():
    student = torch.randn(3, 5, requires_grad=True)
    teacher = torch.randn(3, 5, requires_grad=True)
    relational_kl(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0

    s_emb = unit_rows(3, 4, seed=1).requires_grad_()
    t_emb = unit_rows(3, 4, seed=2).requires_grad_()
    relational_kl_from_embeddings(s_emb, t_emb, unit_rows(6, 4, seed=3)).backward()
    assert t_emb.grad is None
    assert s_emb.grad is not None and s_emb.grad.abs().sum() > 0


def test_relational_kl_gradcheck_float64():
    g = torch.Generator().manual_seed(9)
    student = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(3, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s: relational_kl(s, teacher, 0.5, 0.3), (student,))
    assert torch.autograd.gradcheck(
        lambda s: relational_kl(s, teacher, 0.5, 0.3, topk=3), (student,)
    )


def test_relational_kl_from_embeddings_matches_similarities():
    s, t, queue = unit_rows(4, 3, seed=1), unit_rows(4, 3, seed=2), unit_rows(6, 3, seed=3)
    s_sim = [[float(s[n] @ queue[j]) for j in range(6)] for n in range(4)]
    t_sim = [[float(t[n] @ queue[j]) for j in range(6)] for n in range(4)]
    expected = reference_kl(torch.tensor(s_sim), torch.tensor(t_sim), 0.1, 0.05, topk=4)
    got = relational_kl_from_embeddings(s, t, queue, topk=4)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_relational_kl_rejects_bad_input():
    a = torch.randn(2, 4)
    with pytest.raises(Pcm3Error, match="same shape"):
        relational_kl(a, torch.randn(2, 5))
    with pytest.raises(ConfigError, match="topk"):
        relational_kl(a, a, topk=5)
    with pytest.raises(ConfigError, match="teacher_temperature"):
        relational_kl(a, a, teacher_temperature=-1.0)


# ----------------------------------------------------------------------------- masked MSE


def test_masked_mse_hand_computed():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    visible = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # hidden entries: 2 and 3 -> (4 + 9) / 2
    assert masked_mse(pred, target, visible).item() == pytest.approx(6.5)
    assert masked_mse(pred, target, visible.bool()).item() == pytest.approx(6.5)


def test_masked_mse_broadcast_mask_counts_coordinates():
    g = torch.Generator().manual_seed(4)
    pred, target = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    visible = (torch.rand(1, 1, 4, 5, generator=g) > 0.5).float()  # shared over N and C
    total, count = 0.0, 0
    for n in range(2):
        for c in range(3):
            for t in range(4):
                for v in range(5):
                    if visible[0, 0, t, v] == 0:
                        total += (float(pred[n, c, t, v]) - float(target[n, c, t, v])) ** 2
                        count += 1
    assert count > 0
    assert masked_mse(pred, target, visible).item() == pytest.approx(total / count, rel=1e-5)


def test_masked_mse_ignores_visible_entries():
    g = torch.Generator().manual_seed(5)
    pred, target = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    visible = torch.zeros(3, 6)
    visible[:, :2] = 1
    changed = pred.clone()
    changed[:, :2] += 100.0
    torch.testing.assert_close(
        masked_mse(pred, target, visible), masked_mse(changed, target, visible)
    )
    p = pred.clone().requires_grad_()
    masked_mse(p, target, visible).backward()
    assert torch.all(p.grad[:, :2] == 0) and torch.all(p.grad[:, 2:] != 0)


def test_masked_mse_nothing_masked_is_zero_with_finite_grad():
    pred = torch.randn(2, 3, requires_grad=True)
    loss = masked_mse(pred, torch.randn(2, 3), torch.ones(2, 3))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all()


def test_masked_mse_rejects_bad_shapes():
    with pytest.raises(Pcm3Error, match="same shape"):
        masked_mse(torch.zeros(2, 3), torch.zeros(3, 2), torch.ones(2, 3))
    with pytest.raises(Pcm3Error, match="does not broadcast"):
        masked_mse(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(4, 3))


# ----------------------------------------------------------------------------- AMP


def test_bf16_inputs_give_float32_results():
    q, k, queue = unit_rows(8, 16, seed=1), unit_rows(8, 16, seed=2), unit_rows(32, 16, seed=3)
    qb, kb, queueb = q.bfloat16(), k.bfloat16(), queue.bfloat16()
    # Upcast inside: exactly the float32 computation on the bf16-rounded values ...
    got = info_nce(qb, kb, queueb)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, info_nce(qb.float(), kb.float(), queueb.float()))
    # ... and close to the float32 inputs (bf16 keeps ~3 significant digits).
    torch.testing.assert_close(got, info_nce(q, k, queue), rtol=2e-2, atol=2e-2)
    kl = relational_kl_from_embeddings(qb, kb, queueb)
    assert kl.dtype == torch.float32
    torch.testing.assert_close(kl, relational_kl_from_embeddings(q, k, queue), rtol=0.1, atol=0.05)
    mse = masked_mse(qb, kb, torch.ones(8, 16).tril())
    assert mse.dtype == torch.float32
    torch.testing.assert_close(
        mse, masked_mse(q, k, torch.ones(8, 16).tril()), rtol=1e-2, atol=1e-3
    )


def test_losses_run_in_float32_under_bf16_autocast():
    q, k, queue = unit_rows(8, 16, seed=1), unit_rows(8, 16, seed=2), unit_rows(32, 16, seed=3)
    plain_logits = info_nce_logits(q, k, queue)
    plain_kl = relational_kl_from_embeddings(q, k, queue)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = info_nce_logits(q, k, queue)
        kl = relational_kl_from_embeddings(q, k, queue)
    assert logits.dtype == torch.float32 and kl.dtype == torch.float32
    torch.testing.assert_close(logits, plain_logits)
    torch.testing.assert_close(kl, plain_kl)


def test_info_nce_from_similarities_equals_info_nce():
    g = torch.Generator().manual_seed(5)
    q = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=1)
    k = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=1)
    queue = torch.nn.functional.normalize(torch.randn(10, 4, generator=g), dim=1)
    from pcm3.losses import info_nce_from_similarities

    per_row = info_nce_from_similarities((q * k).sum(1), q @ queue.T, 0.2, reduction="none")
    assert per_row.shape == (6,)
    torch.testing.assert_close(per_row.mean(), info_nce(q, k, queue, 0.2))
