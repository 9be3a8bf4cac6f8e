"""Tests for pcm3.methods.ema against per-element loop references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.methods.ema import copy_params, freeze, momentum_schedule, momentum_update


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    net.train()
    net(torch.randn(5, 3))  # move BN running statistics away from their defaults
    return net


def loop_ema(target: list[torch.Tensor], source: list[torch.Tensor], m: float) -> list[list]:
    """Element by element: m·t + (1 − m)·s."""
    out = []
    for t, s in zip(target, source, strict=True):
        flat_t, flat_s = t.flatten().tolist(), s.flatten().tolist()
        out.append([m * a + (1 - m) * b for a, b in zip(flat_t, flat_s, strict=True)])
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.999, 1.0])
def test_momentum_update_matches_loop_and_leaves_buffers(momentum):
    target, source = small_net(0), small_net(1)
    expected = loop_ema(
        [p.detach() for p in target.parameters()],
        [p.detach() for p in source.parameters()],
        momentum,
    )
    source_before = [p.detach().clone() for p in source.parameters()]
    buffers_before = [b.clone() for b in target.buffers()]
    momentum_update(target, source, momentum)
    for p, e in zip(target.parameters(), expected, strict=True):
        assert p.flatten().tolist() == pytest.approx(e, rel=1e-6, abs=1e-7)
    for b, before in zip(target.buffers(), buffers_before, strict=True):
        assert torch.equal(b, before)  # BN statistics untouched by default
    for p, before in zip(source.parameters(), source_before, strict=True):
        assert torch.equal(p.detach(), before)
    assert all(p.grad is None for p in target.parameters())


def test_momentum_update_on_tensor_lists_and_repeated_steps():
    g = torch.Generator().manual_seed(3)
    target = [torch.randn(2, 3, generator=g), torch.randn(4, generator=g)]
    source = [torch.randn(2, 3, generator=g), torch.randn(4, generator=g)]
    expected = [t.tolist() for t in target]
    for _ in range(3):
        expected = [
            (torch.tensor(e) * 0.9 + s * 0.1).tolist()
            for e, s in zip(expected, source, strict=True)
        ]
        momentum_update(target, source, 0.9)
    for t, e in zip(target, expected, strict=True):
        torch.testing.assert_close(t, torch.tensor(e))


def test_include_buffers_copies_buffers():
    target, source = small_net(0), small_net(1)
    momentum_update(target, source, 0.5, include_buffers=True)
    for b_t, b_s in zip(target.buffers(), source.buffers(), strict=True):
        assert torch.equal(b_t, b_s)


def test_copy_params_and_freeze():
    target, source = small_net(0), small_net(1)
    copy_params(target, source, include_buffers=False)
    for p_t, p_s in zip(target.parameters(), source.parameters(), strict=True):
        assert torch.equal(p_t, p_s)
    assert not torch.equal(target[1].running_mean, source[1].running_mean)
    copy_params(target, source)
    assert torch.equal(target[1].running_mean, source[1].running_mean)
    assert freeze(target) is target
    assert not any(p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in source.parameters())
    assert target.training  # freeze does not switch to eval mode


def test_mismatched_modules_and_bad_momentum_raise():
    with pytest.raises(Pcm3Error, match="shape"):
        momentum_update(nn.Linear(3, 4), nn.Linear(4, 3), 0.9)
    with pytest.raises(Pcm3Error, match="parameters"):
        momentum_update(nn.Linear(3, 4), nn.Linear(3, 4, bias=False), 0.9)
    with pytest.raises(ConfigError, match="momentum"):
        momentum_update(nn.Linear(3, 4), nn.Linear(3, 4), 1.5)


def test_momentum_schedule_constant_and_cosine():
    assert momentum_schedule(0.99, 0, 100) == 0.99
    assert momentum_schedule(0.99, 73, 100, kind="constant") == 0.99
    assert momentum_schedule(0.99, 0, 100, kind="cosine") == pytest.approx(0.99)
    assert momentum_schedule(0.99, 100, 100, kind="cosine") == pytest.approx(1.0)
    assert momentum_schedule(0.99, 250, 100, kind="cosine") == pytest.approx(1.0)
    # halfway: base + (1 − base)/2
    assert momentum_schedule(0.9, 50, 100, kind="cosine") == pytest.approx(0.95)
    quarter = 1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2
    assert momentum_schedule(0.9, 25, 100, kind="cosine") == pytest.approx(quarter)
    values = [momentum_schedule(0.9, s, 20, kind="cosine") for s in range(21)]
    assert all(a <= b for a, b in itertools.pairwise(values))


def test_momentum_schedule_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="kind"):
        momentum_schedule(0.9, 0, 10, kind="linear")
    with pytest.raises(ConfigError, match="total_steps"):
        momentum_schedule(0.9, 0, 0)
    with pytest.raises(ConfigError, match="base"):
        momentum_schedule(1.1, 0, 10)
