"""MAMP's skeleton Transformer encoder (Mao et al. 2023, "Masked Motion Predictors").

Every person of a clip is a sequence of its own (persons folded into the batch, ``N*M``). Each joint's
track is cut into patches of ``patch_frames`` frames (4), one token per (patch, joint):

    tokens  = Linear(C * patch_frames -> D)(patch) + joint_embed[v] + time_embed[p]   (D = 256)
    encoder = depth (8) pre-norm blocks, num_heads (8) heads over all P*V tokens, final LayerNorm
    feature = mean over the tokens, then over persons                              (N, D)

Token order is time-major: token ``p*V + v`` is joint v of patch p. Position tables are learnt,
initialised from a normal with std 0.02; the time table has ``max_frames / patch_frames`` rows (MAMP:
120 frames), and a longer input is refused. A clip whose T is not a multiple of ``patch_frames`` is
padded with zero frames at its end.

Padding: frames at or after ``lengths`` are zeroed, and the tokens of patches starting at or after a
clip's length are masked out of every attention (a key padding mask) and out of the pooling, so those
frames change no output in eval or train mode; ``forward_dense`` steps past ``ceil(L / patch_frames)``
are zero.

Masked input (MAMP pre-training): :meth:`SkeletonTransformer.forward_tokens` encodes only the tokens
listed in ``keep_index``, with the same position embeddings. Input prompt: ``(C, V)``, added to the
input coordinates at every valid frame of every person, before the patch embedding.
``benchmarks/reference_mamp_encoder.py`` holds MAMP's formulation; a test checks both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.models.backbone_checks import (
    check_construction,
    check_input,
    check_input_prompt,
    check_lengths,
    options_from_kwargs,
    require_bool,
    require_fraction,
    require_positive_int,
    strided_lengths,
    valid_steps_mask,
)
from pcm3.models.registry import register_backbone
from pcm3.models.transformer_block import TransformerBlock


@dataclass
class TransformerOptions:
    """Options of ``transformer``; defaults are MAMP's (NTU, 120 frames; 6.3 M parameters on ntu25)."""

    embed_dim: int = 256  # D = feature_dim (even, a multiple of num_heads)
    depth: int = 8
    num_heads: int = 8
    mlp_ratio: float = 4.0
    patch_frames: int = 4  # frames per token = time_stride
    max_frames: int = 120  # rows of the time table x patch_frames; longer inputs are refused
    qkv_bias: bool = True
    # stochastic depth: 0 at the first block rising linearly to this at the last (MAMP fine-tunes with 0.3)
    drop_path: float = 0.0

    def validate(self) -> None:
        for key in ("embed_dim", "depth", "num_heads", "patch_frames", "max_frames"):
            require_positive_int("transformer", key, getattr(self, key))
        if self.embed_dim % 2 or self.embed_dim % self.num_heads:
            raise ConfigError(f"backbone 'transformer': embed_dim must be even and a multiple of num_heads "
                              f"({self.num_heads}), got {self.embed_dim}")
        if self.max_frames % self.patch_frames:
            raise ConfigError(f"backbone 'transformer': max_frames ({self.max_frames}) must be a multiple of "
                              f"patch_frames ({self.patch_frames})")
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)) \
                or int(self.embed_dim * self.mlp_ratio) < 1:
            raise ConfigError(f"backbone 'transformer': mlp_ratio must be a positive number, "
                              f"got {self.mlp_ratio!r}")
        require_bool("transformer", "qkv_bias", self.qkv_bias)
        require_fraction("transformer", "drop_path", self.drop_path)

    @classmethod
    def tiny(cls) -> TransformerOptions:
        return cls(embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, max_frames=32)


def _check_keep_index(keep_index: Tensor, sequences: int, tokens: int) -> None:
    if keep_index.dim() != 2 or keep_index.shape[0] != sequences or keep_index.dtype != torch.long:
        raise ConfigError(f"transformer: keep_index must be an int64 tensor (N*M={sequences}, K), "
                          f"got {keep_index.dtype} of shape {tuple(keep_index.shape)}")
    if keep_index.numel() and (int(keep_index.min()) < 0 or int(keep_index.max()) >= tokens):
        raise ConfigError(f"transformer: keep_index values must lie in 0..{tokens - 1} (P*V tokens)")


@register_backbone("transformer", options=TransformerOptions)
class SkeletonTransformer(nn.Module):
    """MAMP's encoder on ``(N, C, T, V, M)``: ``forward_features -> (N, D)``,
    ``forward_dense -> (N, ceil(T / patch_frames), D)``, ``forward_tokens -> (N*M, K, D)``."""

    causal = False

    def __init__(self, layout: Layout, num_persons: int, in_channels: int = 3, **options: object) -> None:
        super().__init__()
        check_construction("transformer", layout, num_persons, in_channels)
        self.options = options_from_kwargs(TransformerOptions, "transformer", options)
        opts = self.options
        self.layout, self.num_persons, self.in_channels = layout, num_persons, in_channels
        self.num_joints = layout.num_joints
        self.feature_dim, self.time_stride = opts.embed_dim, opts.patch_frames
        self.input_prompt_shape = (in_channels, layout.num_joints)
        # nn.Linear's default initialisation equals MAMP's Conv2d patch embedding's (fan-in C * patch)
        self.patch_embed = nn.Linear(in_channels * opts.patch_frames, opts.embed_dim)
        self.joint_embed = nn.Parameter(torch.zeros(layout.num_joints, opts.embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(opts.max_frames // opts.patch_frames, opts.embed_dim))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        rates = torch.linspace(0, opts.drop_path, opts.depth).tolist()
        self.blocks = nn.ModuleList(TransformerBlock(opts.embed_dim, opts.num_heads, opts.mlp_ratio,
                                                     opts.qkv_bias, rate) for rate in rates)
        self.norm = nn.LayerNorm(opts.embed_dim)

    def num_patches(self, num_frames: int) -> int:
        """Time patches of a T-frame input: ``ceil(T / patch_frames)``; refused past ``max_frames``."""
        if num_frames > self.options.max_frames:
            limit = self.options.max_frames
            raise ConfigError(f"transformer: an input of {num_frames} frames is longer than max_frames = "
                              f"{limit} (the time position table); resize clips to at most {limit} frames or "
                              "build the backbone with a larger max_frames")
        # (T + u - 1) // u, not -(-T // u): an ONNX export traces this, and ONNX integer division
        # truncates towards zero, so the negative form would round down there
        return (num_frames + self.time_stride - 1) // self.time_stride

    def token_validity(self, lengths: Tensor | None, num_frames: int) -> Tensor | None:
        """``(N*M, P*V)`` bool, true for the tokens of patches that start before the clip's length
        ``lengths (N,)``; None when there are no lengths or every clip has ``num_frames`` frames."""
        n = 0 if lengths is None else lengths.shape[0]
        device = torch.device("cpu") if lengths is None else lengths.device
        return self._validity(check_lengths("transformer", lengths, n, num_frames, device), num_frames)

    def _validity(self, steps: Tensor | None, num_frames: int) -> Tensor | None:
        if steps is None:
            return None
        patches = strided_lengths(steps.repeat_interleave(self.num_persons), self.time_stride)
        valid = valid_steps_mask(patches, self.num_patches(num_frames))
        return valid.unsqueeze(-1).expand(-1, -1, self.num_joints).reshape(valid.shape[0], -1)

    def embed_tokens(self, x: Tensor, lengths: Tensor | None = None, *, input_prompt: Tensor | None = None
                     ) -> tuple[Tensor, Tensor | None]:
        """``(N, C, T, V, M) ->`` tokens ``(N*M, P*V, D)`` with position embeddings, and
        :meth:`token_validity` (or None)."""
        check_input("transformer", x, self.in_channels, self.num_joints, self.num_persons)
        n, c, t, v, m = x.shape
        patches, u = self.num_patches(t), self.time_stride
        steps = check_lengths("transformer", lengths, n, t, x.device)
        prompt = check_input_prompt("transformer", input_prompt, self.input_prompt_shape, n)
        if prompt is not None:
            x = x + prompt.view(prompt.shape[0], c, 1, v, 1)
        if steps is not None:
            x = x * valid_steps_mask(steps, t).to(x.dtype).view(n, 1, t, 1, 1)
        if patches * u != t:
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, patches * u - t))
        # (N, C, P, u, V, M) -> (N, M, P, V, C, u): one row of C*u values per token
        rows = x.view(n, c, patches, u, v, m).permute(0, 5, 2, 4, 1, 3).reshape(n * m, patches, v, c * u)
        tokens = self.patch_embed(rows) + self.joint_embed + self.time_embed[:patches].unsqueeze(1)
        return tokens.view(n * m, patches * v, -1), self._validity(steps, t)

    def encode(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        """The blocks and final norm on ``(B, L, D)`` tokens; ``valid (B, L)`` masks padding keys."""
        for block in self.blocks:
            tokens = block(tokens, valid)
        return self.norm(tokens)

    def forward_tokens(self, x: Tensor, lengths: Tensor | None = None, keep_index: Tensor | None = None, *,
                       input_prompt: Tensor | None = None) -> Tensor:
        """Encode the tokens ``keep_index (N*M, K)`` (indices into the ``P*V`` time-major tokens of each
        person; None = all) and return them ``(N*M, K, D)``: MAMP's encoder on its masked input."""
        tokens, valid = self.embed_tokens(x, lengths, input_prompt=input_prompt)
        if keep_index is not None:
            _check_keep_index(keep_index, *tokens.shape[:2])
            tokens = tokens.gather(1, keep_index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
            valid = None if valid is None else valid.gather(1, keep_index)
        return self.encode(tokens, valid)

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None, *,
                      input_prompt: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, ceil(T/patch_frames), D)``: mean over joints, then persons."""
        n = x.shape[0]
        tokens, valid = self.embed_tokens(x, lengths, input_prompt=input_prompt)
        out = self.encode(tokens, valid).view(n * self.num_persons, -1, self.num_joints, self.feature_dim)
        dense = out.mean(dim=2)
        if valid is not None:
            dense = dense * valid.view(n * self.num_persons, -1, self.num_joints)[:, :, :1].to(dense.dtype)
        return dense.view(n, self.num_persons, -1, self.feature_dim).mean(dim=1)

    def forward_features(self, x: Tensor, lengths: Tensor | None = None, *,
                         input_prompt: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, D)``: mean over the valid tokens of each person, then over persons."""
        n = x.shape[0]
        tokens, valid = self.embed_tokens(x, lengths, input_prompt=input_prompt)
        out = self.encode(tokens, valid)
        if valid is None:
            pooled = out.mean(dim=1)
        else:
            weights = valid.to(out.dtype)
            pooled = (out * weights.unsqueeze(-1)).sum(dim=1) / weights.sum(dim=1, keepdim=True)
        return pooled.view(n, self.num_persons, -1).mean(dim=1)

    def forward(self, x: Tensor, lengths: Tensor | None = None, *,
                input_prompt: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths, input_prompt=input_prompt)

    def extra_repr(self) -> str:
        return f"layout={self.layout.name!r}, persons={self.num_persons}, channels={self.in_channels}"
