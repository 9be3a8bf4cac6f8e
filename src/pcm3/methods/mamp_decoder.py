"""MAMP's light decoder: kept tokens back in place among mask tokens, a few transformer blocks,
and a linear prediction of every token's values."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcm3.models.transformer_block import TransformerBlock


class MotionDecoder(nn.Module):
    """``(B, K, D)`` encoded kept tokens + ``keep_index (B, K)`` -> ``(B, P*V, out_features)``.

    The kept tokens are projected to ``dim``, every other position of the ``P x V`` grid
    (time major) gets a learned mask token, then time and joint embeddings, ``depth`` blocks,
    LayerNorm and ``Linear(dim, out_features)``.
    """

    def __init__(self, in_dim: int, out_features: int, patches: int, num_joints: int, dim: int = 256,
                 depth: int = 3, num_heads: int = 8, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.patches, self.num_joints = patches, num_joints
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.time_embed = nn.Parameter(torch.zeros(patches, 1, dim))
        self.joint_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        for p in (self.mask_token, self.time_embed, self.joint_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.predict = nn.Linear(dim, out_features)
        for layer in (self.embed, self.predict):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, kept: Tensor, keep_index: Tensor) -> Tensor:
        b, _, _ = kept.shape
        length = self.patches * self.num_joints
        x = self.embed(kept)
        full = self.mask_token.expand(b, length, -1).scatter(
            1, keep_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x)
        positions = (self.time_embed + self.joint_embed).reshape(1, length, -1)
        x = full + positions
        for block in self.blocks:
            x = block(x)
        return self.predict(self.norm(x))


__all__ = ["MotionDecoder"]
