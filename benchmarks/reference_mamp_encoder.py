"""The reference formulation of MAMP's encoder (``maoyunyao/MAMP``: ``model/transformer.py`` and
``model_mamp/transformer.py``), for ``benchmarks/backbone_speed.py`` and the equality test
``tests/benchmarks/test_reference_backbones.py``. Written from their definitions, not copied:

- persons folded into the batch: ``x.permute(0, 4, 2, 3, 1) -> (N*M, T, V, C)``; T must equal
  ``num_frames`` (their assertion);
- patch embedding ``Conv2d(C, D, (u, 1), stride (u, 1))`` on ``(N*M, C, T, V)`` (einsum permutes
  in and out): ``(N*M, T/u, V, D)``; ``+ pos_embed (1, 1, V, D) + temp_embed (1, T/u, 1, D)``;
  flattened time-major to ``(N*M, T/u * V, D)``;
- blocks: ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``; attention with a fused qkv Linear,
  explicit ``softmax(q k^T * d^-0.5) v``; MLP ``Linear, GELU, Linear``; no dropout, no drop path;
- final LayerNorm; linear-probe pooling: mean over persons, time and joints ``(N, D)``;
- pre-training: the tokens kept by the masking (``ids_keep``) are gathered after the position
  embeddings and encoded alone.

:func:`copy_weights_from` loads our :class:`pcm3.models.SkeletonTransformer`'s weights into it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ReferenceAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class ReferenceBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ReferenceAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ReferenceMAMPEncoder(nn.Module):
    """``(N, C, T, V, M) -> (N, D)`` (linear-probe pooling); :meth:`encode_kept` for masked input."""

    def __init__(self, in_channels: int, num_joints: int, num_frames: int = 120, dim: int = 256,
                 depth: int = 8, num_heads: int = 8, mlp_ratio: float = 4.0, patch_frames: int = 4,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_frames, self.u = num_frames, patch_frames
        self.proj = nn.Conv2d(in_channels, dim, (patch_frames, 1), stride=(patch_frames, 1))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, num_joints, dim))
        self.temp_embed = nn.Parameter(torch.zeros(1, num_frames // patch_frames, 1, dim))
        self.blocks = nn.ModuleList(ReferenceBlock(dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def embed(self, x: Tensor) -> Tensor:
        """``(N, C, T, V, M) -> (N*M, T/u * V, D)``."""
        n, c, t, v, m = x.shape
        assert t == self.num_frames, f"input length {t} != num_frames {self.num_frames}"
        x = x.permute(0, 4, 2, 3, 1).contiguous().view(n * m, t, v, c)
        x = torch.einsum("ntsc->ncts", x)
        x = torch.einsum("ncts->ntsc", self.proj(x))
        nm, tp, vp, _ = x.shape
        x = x + self.pos_embed[:, :, :vp, :] + self.temp_embed[:, :tp, :, :]
        return x.reshape(nm, tp * vp, -1)

    def encode(self, tokens: Tensor) -> Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def encode_kept(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        """Their ``forward_encoder`` with the kept indices given: ``(N*M, K, D)``."""
        tokens = self.embed(x)
        kept = torch.gather(tokens, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, tokens.shape[-1]))
        return self.encode(kept)

    def forward(self, x: Tensor) -> Tensor:
        n, m = x.shape[0], x.shape[4]
        out = self.encode(self.embed(x))
        return out.view(n, m, -1, out.shape[-1]).mean(dim=(1, 2))


@torch.no_grad()
def copy_block_weights(reference_blocks: nn.ModuleList, our_blocks: nn.ModuleList) -> None:
    """Our ``TransformerBlock`` weights (``pcm3.models.transformer_block``) into reference blocks."""
    for theirs, mine in zip(reference_blocks, our_blocks, strict=True):
        theirs.norm1.load_state_dict(mine.norm1.state_dict())
        theirs.attn.qkv.load_state_dict(mine.qkv.state_dict())
        theirs.attn.proj.load_state_dict(mine.proj.state_dict())
        theirs.norm2.load_state_dict(mine.norm2.state_dict())
        theirs.mlp[0].load_state_dict(mine.fc1.state_dict())
        theirs.mlp[2].load_state_dict(mine.fc2.state_dict())


@torch.no_grad()
def copy_weights_from(reference: ReferenceMAMPEncoder, ours: nn.Module) -> None:
    """Load our ``SkeletonTransformer``'s weights (``pcm3.models.transformer``) into ``reference``."""
    dim, _ = ours.patch_embed.weight.shape
    reference.proj.weight.copy_(ours.patch_embed.weight.view(dim, -1, reference.u, 1))
    reference.proj.bias.copy_(ours.patch_embed.bias)
    reference.pos_embed.copy_(ours.joint_embed.view(reference.pos_embed.shape))
    reference.temp_embed.copy_(ours.time_embed[: reference.temp_embed.shape[1]].unsqueeze(0).unsqueeze(2))
    copy_block_weights(reference.blocks, ours.blocks)
    reference.norm.load_state_dict(ours.norm.state_dict())
