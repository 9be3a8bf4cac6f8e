"""Optimisers and per-step learning-rate schedules (step / cosine, linear warm-up)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from pcm3.engine.config import OptimConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW (``cfg.betas``); weight decay on every parameter, as the official
    PCM3 code does, or (``decay_all: false``) not on biases and 1-D weights, as MAE / MAMP do."""
    params = [p for p in params if p.requires_grad]
    groups: list[dict] = [{"params": params}]
    if not cfg.decay_all:
        groups = [{"params": [p for p in params if p.ndim > 1]},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)


def lr_at(step: int, steps_per_epoch: int, total_steps: int, cfg: OptimConfig) -> float:
    """The learning rate for optimiser step ``step`` (0-based)."""
    epoch = step / max(steps_per_epoch, 1)
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if warmup_steps > 0 and step < warmup_steps:
        return cfg.lr * (step + 1) / warmup_steps
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
