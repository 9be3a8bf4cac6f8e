"""Momentum (EMA) key encoders: the update ``θ_k ← m·θ_k + (1 − m)·θ_q``, its schedule, and
copy / freeze helpers.

Like the official PCM3 / MoCo code, the update touches parameters only; BatchNorm running
statistics of the key encoder are its own (updated by its forward passes) unless
``include_buffers=True``, which copies the source's buffers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from pcm3.errors import ConfigError, Pcm3Error

__all__ = ["copy_params", "freeze", "momentum_schedule", "momentum_update"]

ParamsLike = nn.Module | Iterable[Tensor]


def _parameters(x: ParamsLike) -> list[Tensor]:
    return list(x.parameters()) if isinstance(x, nn.Module) else list(x)


def _buffers(x: ParamsLike) -> list[Tensor]:
    return list(x.buffers()) if isinstance(x, nn.Module) else []


def _paired(target: list[Tensor], source: list[Tensor], what: str) -> None:
    if len(target) != len(source):
        raise Pcm3Error(f"target has {len(target)} {what} but source has {len(source)}")
    for i, (t, s) in enumerate(zip(target, source, strict=True)):
        if t.shape != s.shape:
            raise Pcm3Error(
                f"{what} {i}: target shape {tuple(t.shape)} differs from source shape "
                f"{tuple(s.shape)}"
            )


def _copy_buffers(target: ParamsLike, source: ParamsLike) -> None:
    target_buffers, source_buffers = _buffers(target), _buffers(source)
    _paired(target_buffers, source_buffers, "buffers")
    for t, s in zip(target_buffers, source_buffers, strict=True):
        t.copy_(s)


@torch.no_grad()
def momentum_update(
    target: ParamsLike, source: ParamsLike, momentum: float, *, include_buffers: bool = False
) -> None:
    """In place: ``target ← momentum · target + (1 − momentum) · source``, parameter-wise.

    ``target`` / ``source``: modules (their ``parameters()``) or matching lists of tensors.
    Uses the fused ``torch._foreach_mul_`` / ``torch._foreach_add_`` kernels (a plain loop if
    they are unavailable). ``include_buffers=True`` also copies the source's buffers (modules
    only).
    """
    if not 0.0 <= momentum <= 1.0:
        raise ConfigError(f"EMA momentum must be in [0, 1], got {momentum!r}")
    target_params, source_params = _parameters(target), _parameters(source)
    _paired(target_params, source_params, "parameters")
    if target_params:
        if hasattr(torch, "_foreach_mul_") and hasattr(torch, "_foreach_add_"):
            torch._foreach_mul_(target_params, momentum)
            torch._foreach_add_(target_params, source_params, alpha=1.0 - momentum)
        else:  # pragma: no cover - every supported torch has the foreach kernels
            for t, s in zip(target_params, source_params, strict=True):
                t.mul_(momentum).add_(s, alpha=1.0 - momentum)
    if include_buffers:
        _copy_buffers(target, source)


@torch.no_grad()
def copy_params(target: ParamsLike, source: ParamsLike, *, include_buffers: bool = True) -> None:
    """Make ``target``'s parameters (and by default its buffers) equal to ``source``'s."""
    target_params, source_params = _parameters(target), _parameters(source)
    _paired(target_params, source_params, "parameters")
    for t, s in zip(target_params, source_params, strict=True):
        t.copy_(s)
    if include_buffers:
        _copy_buffers(target, source)


def freeze(module: nn.Module) -> nn.Module:
    """Turn off gradients for every parameter of ``module`` (train / eval mode unchanged)."""
    module.requires_grad_(False)
    return module


def momentum_schedule(base: float, step: int, total_steps: int, kind: str = "constant") -> float:
    """EMA momentum at ``step`` of ``total_steps``.

    ``constant``: ``base`` throughout (official PCM3). ``cosine`` (BYOL):
    ``1 − (1 − base) · (cos(π · step / total_steps) + 1) / 2``, rising from ``base`` at step 0
    to 1.0 at ``total_steps`` (steps beyond are clamped).
    """
    if not 0.0 <= base <= 1.0:
        raise ConfigError(f"EMA base momentum must be in [0, 1], got {base!r}")
    if total_steps < 1:
        raise ConfigError(f"total_steps must be >= 1, got {total_steps}")
    if step < 0:
        raise ConfigError(f"step must be >= 0, got {step}")
    if kind == "constant":
        return base
    if kind == "cosine":
        progress = min(step, total_steps) / total_steps
        return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
    raise ConfigError(f"momentum schedule kind must be 'constant' or 'cosine', got {kind!r}")
