"""ST-GCN (Yan et al. 2018) as the contrastive lineage uses it (SkeletonCLR, AimCLR, CrosSCLR).

Input BatchNorm over the ``V*C`` coordinates of each frame (persons folded into the batch), then 10
spatial-temporal graph blocks: widths ``b, b, b, b, 2b, 2b, 2b, 4b, 4b, out`` with temporal stride 2
at blocks 5 and 8 (``b = base_channels``; SkeletonCLR/AimCLR: ``b = 16``, a quarter of ST-GCN's 64,
and ``out = 256``). A block is

    graph conv (3 spatial partitions, learnable edge importance) -> BN -> ReLU
    -> temporal conv (kernel 9, stride s) -> BN -> Dropout, + residual, ReLU

with no residual in block 1, identity where widths and stride allow, else a strided 1x1 conv + BN.
The feature is the average over valid time steps and joints, then over persons: ``(N, out)``.
Dropout (0.5 in their pre-training configs) acts in blocks 2-10.

Same function as their code, different memory layout: activations are kept as ``(V, N*M, T, C)``,
so the graph convolution is two GEMM stages (:class:`GraphConv`) without the permuted copy of a
``3*C_out``-channel tensor that their einsum makes, and the temporal convolutions run channels-last
(the ``(V, C, N*M, T)`` view of the same memory with a ``(1, kt)`` kernel).
``benchmarks/reference_stgcn.py`` holds their formulation; a test checks both agree on the same weights.

Padding: frames at or after ``lengths`` are zeroed at the input of every temporal convolution (at
that block's resolution, ``ceil(L / stride so far)``), left out of the pooling and, in train mode,
out of every BatchNorm's statistics (:func:`~pcm3.models.masked_norm.masked_batch_norm`): they
change neither the feature nor the dense steps ``s < ceil(L / 4)``.
"""

from __future__ import annotations

import math
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
from pcm3.models.graph import CENTERS, NUM_PARTITIONS, PARTITIONS, spatial_partition_adjacency
from pcm3.models.masked_norm import masked_batch_norm
from pcm3.models.registry import register_backbone

STRIDED_BLOCKS = (4, 7)  # 0-based: blocks 5 and 8


@dataclass
class STGCNOptions:
    """Options of ``stgcn``; defaults are SkeletonCLR / AimCLR's (feature 256, 0.82 M parameters on ntu25)."""

    base_channels: int = 16  # b: widths b (blocks 1-4), 2b (5-7), 4b (8-9)
    out_channels: int = 256  # width of block 10 = feature_dim (even)
    temporal_kernel: int = 9  # odd
    dropout: float = 0.5  # in blocks 2-10, after the temporal BatchNorm
    edge_importance: bool = True  # a learnable (3, V, V) mask per block, multiplying the adjacency
    graph_center: str = "root"  # "root" | "layout": the centre joint of each component (pcm3.models.graph)
    partition: str = "spatial"  # "spatial" | "spatial_one_hop" (as the released ST-GCN code)

    def validate(self) -> None:
        for key in ("base_channels", "out_channels", "temporal_kernel"):
            require_positive_int("stgcn", key, getattr(self, key))
        if self.out_channels % 2:
            raise ConfigError(f"backbone 'stgcn': out_channels must be even (task prompts split the "
                              f"feature in halves), got {self.out_channels}")
        if self.temporal_kernel % 2 == 0:
            raise ConfigError(f"backbone 'stgcn': temporal_kernel must be odd, got {self.temporal_kernel}")
        require_fraction("stgcn", "dropout", self.dropout)
        require_bool("stgcn", "edge_importance", self.edge_importance)
        if self.graph_center not in CENTERS:
            raise ConfigError(f"backbone 'stgcn': graph_center must be one of {CENTERS}, "
                              f"got {self.graph_center!r}")
        if self.partition not in PARTITIONS:
            raise ConfigError(f"backbone 'stgcn': partition must be one of {PARTITIONS}, "
                              f"got {self.partition!r}")

    @classmethod
    def tiny(cls) -> STGCNOptions:
        return cls(base_channels=4, out_channels=8)


class GraphConv(nn.Module):
    """``(V, R, C_in) -> (V, R, C_out)`` over rows ``R`` (frames of every sequence):
    ``out[w] = sum_k sum_v (x[v] W_k^T + b_k) A[k, v, w]``.

    ``weight (K, C_out, C_in)``, ``bias (K, C_out)``: partition k's 1x1 convolution. Two GEMM
    stages, joints first when ``C_in < C_out`` (on the narrower side): joints-first
    ``z_k = A_k^T x`` (one GEMM), then ``out[w] = [z_1 .. z_K][w] [W_1 .. W_K]^T`` (one batched GEMM
    over joints, after one copy of z); channels-first ``y = x W^T`` (one batched GEMM over the K
    partitions, no copy), then ``out = [A_1^T .. A_K^T] y`` (one GEMM).
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_partitions, out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(num_partitions, out_channels))
        bound = 1.0 / math.sqrt(in_channels)  # nn.Conv2d's default initialisation, fan-in C_in
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        v, r, cin = x.shape
        k, cout, _ = self.weight.shape
        if cin < cout:
            z = (adjacency.transpose(1, 2).reshape(k * v, v) @ x.reshape(v, r * cin)).view(k, v, r, cin)
            z = z.permute(1, 2, 0, 3).reshape(v, r, k * cin)  # the one copy, on the narrow side
            bias = (adjacency.sum(1).t() @ self.bias).unsqueeze(1)  # (W, 1, C_out): sum_k b_k colsum(A_k)
            weight = self.weight.permute(0, 2, 1).reshape(k * cin, cout)
            return torch.baddbmm(bias, z, weight.expand(v, k * cin, cout))
        y = torch.baddbmm(self.bias.unsqueeze(1), x.reshape(1, v * r, cin).expand(k, v * r, cin),
                          self.weight.transpose(1, 2))  # (K, V*R, C_out)
        return (adjacency.permute(2, 0, 1).reshape(v, k * v) @ y.view(k * v, r * cout)).view(v, r, cout)


def dropout_mask(x: Tensor, p: float) -> Tensor:
    """Inverted-dropout multipliers for ``x``: 0 with probability ``p``, else ``1 / (1 - p)``.

    The same distribution as ``nn.Dropout``; drawn with ``torch.rand`` (cheaper than ``bernoulli_``
    on CPUs).
    """
    keep = torch.rand(x.shape, device=x.device) >= p
    return keep.to(x.dtype).mul_(1.0 / (1.0 - p))


class STGCNBlock(nn.Module):
    """One spatial-temporal block on ``(V, B, T, C_in) -> (V, B, ceil(T / stride), C_out)``.

    The temporal convolutions run on the channels-last view ``(V, C, B, T)`` of the same memory.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool,
                 temporal_kernel: int, dropout: float) -> None:
        super().__init__()
        self.graph_conv = GraphConv(in_channels, out_channels, NUM_PARTITIONS)
        self.graph_norm = nn.BatchNorm1d(out_channels)
        self.temporal_conv = nn.Conv2d(out_channels, out_channels, (1, temporal_kernel), (1, stride),
                                       (0, temporal_kernel // 2))
        self.temporal_norm = nn.BatchNorm1d(out_channels)
        self.dropout = float(dropout)
        self.identity_residual = residual and in_channels == out_channels and stride == 1
        self.residual_conv: nn.Conv2d | None = None
        self.residual_norm: nn.BatchNorm1d | None = None
        if residual and not self.identity_residual:
            self.residual_conv = nn.Conv2d(in_channels, out_channels, 1, (1, stride))
            self.residual_norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor, adjacency: Tensor, lengths: Tensor | None) -> Tensor:
        """``lengths``: ``(B,)`` valid steps at this block's input, or None (all valid). Padded
        steps are zeroed before the temporal convolution and left out of BatchNorm statistics.

        In-place operations act only on fresh BatchNorm outputs (never on views, whose backward
        would copy).
        """
        v, b, t, cin = x.shape
        h = self.graph_conv(x.view(v, b * t, cin), adjacency)
        cout = h.shape[-1]
        valid_in = None if lengths is None else valid_steps_mask(lengths, t)  # (B, T)
        h = torch.relu_(masked_batch_norm(self.graph_norm, h.view(-1, cout), _rows(valid_in, v)))
        h = h.view(v, b, t, cout)
        if valid_in is not None:
            h = h * valid_in.to(h.dtype).view(1, b, t, 1)
        h = self.temporal_conv(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # channels-last: a view
        steps = h.shape[2]
        stride = self.temporal_conv.stride[1]
        valid_out = None if lengths is None else _rows(valid_steps_mask(strided_lengths(lengths, stride),
                                                                        steps), v)
        h = masked_batch_norm(self.temporal_norm, h.reshape(-1, cout), valid_out)
        if self.training and self.dropout > 0:
            h.mul_(dropout_mask(h, self.dropout))
        if self.identity_residual:
            h += x.view(-1, cout)
        elif self.residual_conv is not None and self.residual_norm is not None:
            residual = self.residual_conv(x.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1)
            h += masked_batch_norm(self.residual_norm, residual.reshape(-1, cout), valid_out)
        return torch.relu_(h).view(v, b, steps, cout)


def _rows(valid: Tensor | None, joints: int) -> Tensor | None:
    """``(B, T)`` valid steps -> ``(V*B*T,)``, the row order of ``(V, B, T, C)`` activations."""
    return None if valid is None else valid.unsqueeze(0).expand(joints, -1, -1).reshape(-1)


@register_backbone("stgcn", options=STGCNOptions)
class STGCN(nn.Module):
    """ST-GCN on ``(N, C, T, V, M)``: ``forward_features -> (N, out_channels)``,
    ``forward_dense -> (N, ceil(T / 4), out_channels)``; see the module docstring.

    ``input_prompt_shape = (C, V)``: one value per coordinate and joint, added after the input
    BatchNorm at every frame of every person.
    """

    time_stride = 4
    causal = False

    def __init__(self, layout: Layout, num_persons: int, in_channels: int = 3, **options: object) -> None:
        super().__init__()
        check_construction("stgcn", layout, num_persons, in_channels)
        self.options = options_from_kwargs(STGCNOptions, "stgcn", options)
        opts = self.options
        self.layout, self.num_persons, self.in_channels = layout, num_persons, in_channels
        self.num_joints = layout.num_joints
        self.feature_dim = opts.out_channels
        self.input_prompt_shape = (in_channels, layout.num_joints)
        adjacency = spatial_partition_adjacency(layout, opts.graph_center, opts.partition)
        self.register_buffer("adjacency", torch.from_numpy(adjacency), persistent=False)

        self.input_norm = nn.BatchNorm1d(layout.num_joints * in_channels)
        b = opts.base_channels
        widths = [in_channels, b, b, b, b, 2 * b, 2 * b, 2 * b, 4 * b, 4 * b, opts.out_channels]
        self.blocks = nn.ModuleList(
            STGCNBlock(widths[i], widths[i + 1], 2 if i in STRIDED_BLOCKS else 1, residual=i > 0,
                       temporal_kernel=opts.temporal_kernel, dropout=opts.dropout if i > 0 else 0.0)
            for i in range(10))
        self.edge_importance = None
        if opts.edge_importance:
            ones = torch.ones_like(self.adjacency)
            self.edge_importance = nn.ParameterList(nn.Parameter(ones.clone()) for _ in self.blocks)

    def _trunk(self, x: Tensor, lengths: Tensor | None, input_prompt: Tensor | None
               ) -> tuple[Tensor, Tensor | None]:
        """``(N, C, T, V, M) -> (V, N*M, ceil(T/4), D)`` and the valid steps per ``N*M`` row (or None)."""
        check_input("stgcn", x, self.in_channels, self.num_joints, self.num_persons)
        n, c, t, v, m = x.shape
        lengths = check_lengths("stgcn", lengths, n, t, x.device)
        prompt = check_input_prompt("stgcn", input_prompt, self.input_prompt_shape, n)
        steps = None if lengths is None else lengths.repeat_interleave(m)  # (N*M,)
        frames = None if steps is None else valid_steps_mask(steps, t).reshape(-1)  # rows (n, m, t)
        h = masked_batch_norm(self.input_norm, x.permute(0, 4, 2, 3, 1).reshape(n * m * t, v * c), frames)
        h = h.view(n, m, t, v, c)
        if prompt is not None:  # (rows, C, V) -> (rows, 1, 1, V, C)
            h = h + prompt.transpose(1, 2).unsqueeze(1).unsqueeze(1)
        h = h.permute(3, 0, 1, 2, 4).reshape(v, n * m, t, c)
        for i, block in enumerate(self.blocks):
            adjacency = self.adjacency
            if self.edge_importance is not None:
                adjacency = adjacency * self.edge_importance[i]
            h = block(h, adjacency, steps)
            if steps is not None and i in STRIDED_BLOCKS:
                steps = strided_lengths(steps, 2)
        return h, steps

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None, *,
                      input_prompt: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, ceil(T/4), D)``: mean over joints and persons per step; steps
        at or after ``ceil(lengths / 4)`` are zero."""
        h, steps = self._trunk(x, lengths, input_prompt)
        dense = h.mean(dim=0)  # (N*M, T', D)
        if steps is not None:
            dense = dense * valid_steps_mask(steps, dense.shape[1]).unsqueeze(-1).to(dense.dtype)
        return dense.view(x.shape[0], self.num_persons, *dense.shape[1:]).mean(dim=1)

    def forward_features(self, x: Tensor, lengths: Tensor | None = None, *,
                         input_prompt: Tensor | None = None) -> Tensor:
        """``(N, C, T, V, M) -> (N, D)``: mean over joints and valid steps, then over persons."""
        h, steps = self._trunk(x, lengths, input_prompt)
        if steps is None:
            pooled = h.mean(dim=(0, 2))  # (N*M, D)
        else:
            valid = valid_steps_mask(steps, h.shape[2]).unsqueeze(-1).to(h.dtype)
            pooled = (h.mean(dim=0) * valid).sum(dim=1) / steps.unsqueeze(-1).to(h.dtype)
        return pooled.view(x.shape[0], self.num_persons, -1).mean(dim=1)

    def forward(self, x: Tensor, lengths: Tensor | None = None, *,
                input_prompt: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths, input_prompt=input_prompt)

    def extra_repr(self) -> str:
        return f"layout={self.layout.name!r}, persons={self.num_persons}, channels={self.in_channels}"
