"""Optimiser options: AdamW betas, no weight decay on 1-D parameters, the cosine floor."""

from __future__ import annotations

import math

import torch

from pcm3.engine.config import OptimConfig
from pcm3.engine.optim import build_optimizer, lr_at


def test_decay_all_false_spares_biases_and_norm_weights():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model.parameters(), OptimConfig(name="adamw", weight_decay=0.05, betas=(0.9, 0.95),
                                                          decay_all=False))
    decayed, spared = opt.param_groups
    assert [p.shape for p in decayed["params"]] == [(4, 3)] and decayed["weight_decay"] == 0.05
    assert len(spared["params"]) == 3 and spared["weight_decay"] == 0.0
    assert decayed["betas"] == (0.9, 0.95)
    single = build_optimizer(model.parameters(), OptimConfig(name="sgd"))
    assert len(single.param_groups) == 1 and single.param_groups[0]["weight_decay"] == 1e-4


def test_cosine_schedule_warms_up_then_falls_to_min_lr():
    cfg = OptimConfig(lr=1e-3, min_lr=5e-4, schedule="cosine", warmup_epochs=2)
    assert lr_at(0, 10, 100, cfg) == 1e-3 * 1 / 20
    mid = 20 + 40  # half-way through the 80 cosine steps
    assert math.isclose(lr_at(mid, 10, 100, cfg), 5e-4 + 5e-4 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert math.isclose(lr_at(100, 10, 100, cfg), 5e-4)
