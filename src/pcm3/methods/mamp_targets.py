"""MAMP's token arithmetic: patches, motion targets, motion-aware masking and the loss.

Tokens follow the transformer backbone's order: for each person (rows ``N*M``), time patch p of
``u`` frames major, joint v minor (``L = P * V`` tokens); a token's values are its ``u`` frames
times ``C`` channels (frame major).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcm3.errors import ConfigError


def per_person(x: Tensor) -> Tensor:
    """``(N, C, T, V, M) -> (N*M, T, V, C)``: one sequence per person."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)


def patchify(x: Tensor, patch_frames: int) -> Tensor:
    """``(B, T, V, C) -> (B, P*V, u*C)`` with ``u = patch_frames``, ``P = T / u``."""
    b, t, v, c = x.shape
    if t % patch_frames:
        raise ConfigError(f"mamp: {t} frames do not split into patches of {patch_frames} frames; make "
                          f"augment.view_frames a multiple of {patch_frames}")
    p = t // patch_frames
    return x.view(b, p, patch_frames, v, c).permute(0, 1, 3, 2, 4).reshape(b, p * v, patch_frames * c)


def frame_motion(x: Tensor, stride: int = 1) -> Tensor:
    """``(B, T, V, C)``: ``x[t + stride] - x[t]``, zero for the last ``stride`` frames."""
    motion = torch.zeros_like(x)
    motion[:, :-stride] = x[:, stride:] - x[:, :-stride]
    return motion


def normalized_targets(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Each token ``(B, L, F)`` minus its mean over F, over ``sqrt(var + eps)`` (unbiased var)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def token_motion(patches: Tensor, num_joints: int) -> Tensor:
    """``(B, P*V, F) -> (B, P*V)``: mean ``|patch[p] - patch[p-1]|`` of each token over F
    (patch 0 takes patch 1's value): the motion magnitude that guides the masking."""
    b, length, f = patches.shape
    grid = patches.view(b, length // num_joints, num_joints, f)
    motion = torch.zeros_like(grid)
    motion[:, 1:] = (grid[:, 1:] - grid[:, :-1]).abs()
    motion[:, 0] = motion[:, 1]
    return motion.mean(dim=-1).reshape(b, length)


def motion_aware_keep_index(motion: Tensor, keep: int, tau: float, generator: torch.Generator | None
                            ) -> tuple[Tensor, Tensor]:
    """Tokens to keep ``(B, keep)`` long and the mask ``(B, L)`` float (1 = masked).

    Masking probability ``softmax(motion / (max(motion) * tau))`` per row; the tokens are ranked
    by ``log p + Gumbel noise`` and the ``keep`` lowest kept (high-motion tokens are masked more
    often). ``tau = 0``: uniform random ranking (MAE)."""
    b, length = motion.shape
    u = torch.rand(b, length, generator=generator, device=None if generator is None else generator.device,
                   dtype=torch.float32).to(motion.device)
    if tau > 0:
        scaled = motion / (motion.max(dim=-1, keepdim=True).values * tau + 1e-10)
        noise = torch.log_softmax(scaled.float(), dim=-1) - torch.log(-torch.log(u + 1e-10) + 1e-10)
    else:
        noise = u
    keep_index = noise.argsort(dim=1)[:, :keep]
    mask = torch.ones(b, length, device=motion.device).scatter(1, keep_index, 0.0)
    return keep_index, mask


def masked_token_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean over the masked tokens (``mask`` 1) of each token's mean squared error over F."""
    per_token = (prediction - target).square().mean(dim=-1)
    return (per_token * mask).sum() / mask.sum()


__all__ = ["frame_motion", "masked_token_mse", "motion_aware_keep_index", "normalized_targets", "patchify",
           "per_person", "token_motion"]
