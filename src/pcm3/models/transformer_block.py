"""A pre-norm Transformer block (ViT / MAE / MAMP) with fused attention and a key padding mask.

``x + DropPath(Attention(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``; attention is multi-head with
a fused ``qkv`` projection (bias by default) and scale ``1/sqrt(head_dim)``, computed by
``torch.nn.functional.scaled_dot_product_attention``; the MLP is ``Linear -> GELU -> Linear``.
Linear weights start Xavier-uniform with zero biases, LayerNorms at ones / zeros (as MAE and MAMP).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth: zero a whole sample's branch ``(B, ...)`` with probability p, else scale it
    by ``1/(1-p)``."""
    if p == 0.0 or not training:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) >= p
    return x * keep.to(x.dtype).div_(1.0 - p)


class TransformerBlock(nn.Module):
    """``(B, L, D) -> (B, L, D)``; ``key_valid (B, L)`` bool keeps padding keys out of every query."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.drop_path = num_heads, float(drop_path)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        for layer in (self.qkv, self.proj, self.fc1, self.fc2):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def attention(self, x: Tensor, key_valid: Tensor | None) -> Tensor:
        b, length, dim = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        mask = None if key_valid is None else key_valid.view(b, 1, 1, length)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))

    def forward(self, x: Tensor, key_valid: Tensor | None = None) -> Tensor:
        x = x + drop_path(self.attention(self.norm1(x), key_valid), self.drop_path, self.training)
        return x + drop_path(self.fc2(F.gelu(self.fc1(self.norm2(x)))), self.drop_path, self.training)
