"""The reference formulation of ST-GCN as the contrastive lineage runs it (SkeletonCLR, AimCLR,
CrosSCLR: ``net/st_gcn.py``, ``net/utils/tgcn.py``, ``net/utils/graph.py``), for
``benchmarks/backbone_speed.py`` and the equality test ``tests/benchmarks/test_reference_backbones.py``.

Written from their definitions, not copied:

- graph: edges + self-loops, hop distances from matrix powers, ``A D^-1`` normalisation by
  column sums, then per (source j, target i) pair a Python loop sorts the entry into root /
  "close" (j farther from the centre than i) / "further" partitions; hop 0 keeps the root part,
  hop 1 sums root + close and keeps further apart: ``A`` is ``(3, V, V)``;
- input BatchNorm1d over ``V*C`` (index ``v*C + c``) with persons folded into the batch
  (``N*M``, person-minor); then tensors ``(N*M, C, T, V)``;
- block: ``Conv2d(C_in, K*C_out, 1)`` then ``einsum('nkctv,kvw->nctw')`` with ``A * importance``;
  ``BN, ReLU, Conv2d((9, 1), stride (s, 1), pad (4, 0)), BN, Dropout``; residual none (block 1),
  identity, or ``Conv2d(1, stride (s, 1)) + BN``; ReLU after the sum;
- 10 blocks ``C->b, b, b, b, b->2b (s2), 2b, 2b, 2b->4b (s2), 4b, 4b->out``, dropout in blocks 2-10;
- ``avg_pool2d`` over the whole ``(T', V)`` map, persons averaged: ``(N, out)``. No lengths.

:func:`copy_weights_from` loads our :class:`pcm3.models.STGCN`'s weights into this module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcm3.layouts import Layout


def reference_graph(layout: Layout, centre: int) -> np.ndarray:
    """Their spatial-partition ``(3, V, V)`` adjacency from the layout's bones and one centre joint."""
    v = layout.num_joints
    edges = [(j, j) for j in range(v)] + list(layout.bones)
    link = np.zeros((v, v))
    for i, j in edges:
        link[i, j] = link[j, i] = 1
    hop = np.full((v, v), np.inf)
    reach = np.stack([np.linalg.matrix_power(link, d) for d in range(2)]) > 0
    for d in (1, 0):
        hop[reach[d]] = d
    adjacency = (hop <= 1).astype(float)
    column = adjacency.sum(0)
    normalised = adjacency @ np.diag(np.where(column > 0, 1.0 / np.maximum(column, 1), 0.0))
    parts = []
    for h in (0, 1):
        root, close, further = np.zeros((v, v)), np.zeros((v, v)), np.zeros((v, v))
        for i in range(v):
            for j in range(v):
                if hop[j, i] != h:
                    continue
                if hop[j, centre] == hop[i, centre]:
                    root[j, i] = normalised[j, i]
                elif hop[j, centre] > hop[i, centre]:
                    close[j, i] = normalised[j, i]
                else:
                    further[j, i] = normalised[j, i]
        parts += [root] if h == 0 else [root + close, further]
    return np.stack(parts)


class ReferenceGraphConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(cin, cout * k, kernel_size=1)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        x = self.conv(x)
        n, kc, t, v = x.shape
        x = x.view(n, self.k, kc // self.k, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, a).contiguous()


class ReferenceBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, kt: int, stride: int, dropout: float,
                 residual: bool) -> None:
        super().__init__()
        self.gcn = ReferenceGraphConv(cin, cout, k)
        self.tcn = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, (kt, 1), (stride, 1), ((kt - 1) // 2, 0)),
                                 nn.BatchNorm2d(cout), nn.Dropout(dropout, inplace=True))
        self.kind = "none" if not residual else "identity" if cin == cout and stride == 1 else "conv"
        if self.kind == "conv":
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1)), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        res = 0 if self.kind == "none" else x if self.kind == "identity" else self.residual(x)
        return self.relu(self.tcn(self.gcn(x, a)) + res)


class ReferenceSTGCN(nn.Module):
    """``(N, C, T, V, M) -> (N, out_channels)``: their Model without its classifier."""

    def __init__(self, layout: Layout, in_channels: int, centre: int, base_channels: int = 16,
                 out_channels: int = 256, temporal_kernel: int = 9, dropout: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("A", torch.tensor(reference_graph(layout, centre), dtype=torch.float32))
        k, v, b = self.A.shape[0], layout.num_joints, base_channels
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        plan = [(in_channels, b, 1), (b, b, 1), (b, b, 1), (b, b, 1), (b, 2 * b, 2), (2 * b, 2 * b, 1),
                (2 * b, 2 * b, 1), (2 * b, 4 * b, 2), (4 * b, 4 * b, 1), (4 * b, out_channels, 1)]
        self.st_gcn_networks = nn.ModuleList(
            ReferenceBlock(cin, cout, k, temporal_kernel, s, 0.0 if i == 0 else dropout, residual=i > 0)
            for i, (cin, cout, s) in enumerate(plan))
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(self.A.shape)) for _ in plan)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for block, importance in zip(self.st_gcn_networks, self.edge_importance, strict=True):
            x = block(x, self.A * importance)
        x = F.avg_pool2d(x, x.shape[2:])
        return x.view(n, m, -1).mean(dim=1)


@torch.no_grad()
def copy_weights_from(reference: ReferenceSTGCN, ours: nn.Module) -> None:
    """Load the weights and BatchNorm statistics of our ``STGCN`` (``pcm3.models.stgcn``) into
    ``reference`` (same widths and layout; ours stores the temporal kernels as ``(1, kt)``)."""
    reference.data_bn.load_state_dict(ours.input_norm.state_dict())
    for mine, theirs, importance, their_importance in zip(
            ours.blocks, reference.st_gcn_networks, ours.edge_importance, reference.edge_importance,
            strict=True):
        k, cout, cin = mine.graph_conv.weight.shape
        theirs.gcn.conv.weight.copy_(mine.graph_conv.weight.reshape(k * cout, cin, 1, 1))
        theirs.gcn.conv.bias.copy_(mine.graph_conv.bias.reshape(k * cout))
        theirs.tcn[0].load_state_dict(mine.graph_norm.state_dict())
        theirs.tcn[2].weight.copy_(mine.temporal_conv.weight.transpose(2, 3))
        theirs.tcn[2].bias.copy_(mine.temporal_conv.bias)
        theirs.tcn[3].load_state_dict(mine.temporal_norm.state_dict())
        if theirs.kind == "conv":
            theirs.residual[0].load_state_dict(mine.residual_conv.state_dict())
            theirs.residual[1].load_state_dict(mine.residual_norm.state_dict())
        their_importance.copy_(importance)
