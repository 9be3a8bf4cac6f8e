"""SkeletonCLR's loss against a hand-written MoCo InfoNCE on the same views, its queue update,
and its views."""

from __future__ import annotations

import math

import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.methods import build_method

from ..conftest import HANDS8
from .every_method import tiny_method


def _method(*overrides):
    cfg = load_config(PretrainConfig, None, [*tiny_method("skeletonclr"), *overrides])
    torch.manual_seed(0)
    return build_method(cfg, HANDS8, 3, 2).double().train()


def _batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(4, 3, 20, 8, 2, dtype=torch.float64, generator=g), torch.tensor([20, 9, 14, 20])


def test_loss_is_moco_infonce_of_query_against_key_and_queue():
    method = _method("skeletonclr.temperature=0.2", "model.stgcn.dropout=0")  # the same features twice
    x, lengths = _batch()
    queue = method.queue.keys.clone()
    query_view, key_view = method.make_views(x, lengths, torch.Generator().manual_seed(9))
    with torch.no_grad():  # the first EMA update leaves the (identical) key copies unchanged
        q, k = method.embed(query_view).tolist(), method.embed(key_view, key=True).tolist()
    losses = method.training_losses(x, lengths, torch.Generator().manual_seed(9))

    def dot(a, b):
        return sum(ai * bi for ai, bi in zip(a, b, strict=True))

    rows = []
    for qi, ki in zip(q, k, strict=True):
        logits = [dot(qi, ki) / 0.2] + [dot(qi, n) / 0.2 for n in queue.tolist()]
        rows.append(-logits[0] + math.log(sum(math.exp(v) for v in logits)))
    loss = float(losses["loss"].detach())
    assert loss == float(losses["contrast"].detach())
    assert abs(loss - sum(rows) / len(rows)) < 1e-10
    assert torch.allclose(method.queue.keys[:4], torch.tensor(k, dtype=torch.float64))  # keys enqueued
    assert torch.equal(method.queue.keys[4:], queue[4:]) and int(method.queue.ptr) == 4


def test_views_differ_and_keep_the_view_length():
    method = _method()
    x, lengths = _batch()
    a, b = method.make_views(x, lengths, torch.Generator().manual_seed(0))
    assert a.shape == b.shape == (4, 3, method.cfg.augment.view_frames, 8, 2)
    assert not torch.allclose(a, b)


def test_key_encoder_follows_the_online_encoder_by_ema():
    method = _method("skeletonclr.momentum=0.5")
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.key_encoder.parameters()]
    method.update_key_encoders()
    for old, new, online in zip(before, method.key_encoder.parameters(), method.encoder.parameters(),
                                strict=True):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * online)
