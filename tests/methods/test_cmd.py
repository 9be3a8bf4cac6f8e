"""CMD's losses against hand-written loops of the official formulas (MoCo InfoNCE per modality,
top-k relational KL of every ordered modality pair), and its three branches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.methods import build_method
from pcm3.methods.cmd import MODALITIES
from pcm3.methods.cmd_losses import cmd_losses

from ..conftest import HANDS8
from .every_method import tiny_method


def _unit(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, dtype=torch.float64, generator=g), dim=1)


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def _softmax(values, t):
    top = max(values)
    e = [math.exp((v - top) / t) for v in values]
    return [x / sum(e) for x in e]


def _kl_reference(student_q, teacher_k, student_queue, teacher_queue, ts, tt, topk):
    total = 0.0
    for q, k in zip(student_q, teacher_k, strict=True):
        teacher = [_dot(k, row) for row in teacher_queue]
        index = sorted(range(len(teacher)), key=lambda i: -teacher[i])[:topk]
        p_t = _softmax([teacher[i] for i in index], tt)
        p_s = _softmax([_dot(q, student_queue[i]) for i in index], ts)
        total += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True))
    return total / len(student_q)


def _info_nce_reference(q_rows, k_rows, queue, t):
    out = []
    for q, k in zip(q_rows, k_rows, strict=True):
        logits = [_dot(q, k) / t] + [_dot(q, n) / t for n in queue]
        out.append(-logits[0] + math.log(sum(math.exp(v) for v in logits)))
    return sum(out) / len(out)


def test_cmd_losses_match_the_official_formulas():
    mods = ("joint", "motion", "bone")
    queries = {m: _unit(3, 4, seed=i) for i, m in enumerate(mods)}
    keys = {m: _unit(3, 4, seed=10 + i) for i, m in enumerate(mods)}
    queues = {m: _unit(6, 4, seed=20 + i) for i, m in enumerate(mods)}
    got = cmd_losses(queries, keys, queues, 0.07, 0.1, 0.05, topk=4)
    for m in mods:
        want = _info_nce_reference(queries[m].tolist(), keys[m].tolist(), queues[m].tolist(), 0.07)
        assert abs(float(got[f"contrast_{m}"]) - want) < 1e-9
    want = sum(_kl_reference(queries[b].tolist(), keys[a].tolist(), queues[b].tolist(), queues[a].tolist(),
                             0.1, 0.05, 4) for a in mods for b in mods if a != b)
    assert abs(float(got["cmd"]) - want) < 1e-9
    every = cmd_losses(queries, keys, queues, 0.07, 0.1, 0.05, topk=6)  # k = K: the whole queue
    want = sum(_kl_reference(queries[b].tolist(), keys[a].tolist(), queues[b].tolist(), queues[a].tolist(),
                             0.1, 0.05, 6) for a in mods for b in mods if a != b)
    assert abs(float(every["cmd"]) - want) < 1e-9
    with pytest.raises(ConfigError, match="topk"):
        cmd_losses(queries, keys, queues, 0.07, 0.1, 0.05, topk=7)


def test_three_branches_train_and_fill_their_own_queues():
    cfg = load_config(PretrainConfig, None, [*tiny_method("cmd"), "cmd.cmd_weight=0.5"])
    torch.manual_seed(0)
    method = build_method(cfg, HANDS8, 3, 2)
    assert cfg.model.backbone == "bigru" and method.encoder_of("joint") is method.encoder
    x = torch.randn(4, 3, 20, 8, 2, generator=torch.Generator().manual_seed(1))
    losses = method(x, torch.tensor([20, 12, 9, 16]), torch.Generator().manual_seed(2))
    total = sum(losses[f"contrast_{m}"] for m in MODALITIES) + 0.5 * losses["cmd"]
    torch.testing.assert_close(losses["loss"], total)
    losses["loss"].backward()
    for m in MODALITIES:
        assert all(p.grad is not None for p in method.encoder_of(m).parameters()), m
        assert all(p.grad is None for p in method.key_encoders[m].parameters()), m
        assert int(method.stream_queues[m].ptr) == 4
    assert not torch.equal(method.stream_queues["joint"].keys[:4], method.stream_queues["bone"].keys[:4])
