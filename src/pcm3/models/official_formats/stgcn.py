"""SkeletonCLR / AimCLR checkpoints (``Seleda/SkeletonCLR``, ``Levigty/AimCLR``): ``net.st_gcn.Model``.

Their trainer (torchlight) saves the model's state dict itself (``module.`` removed); the
pre-training model holds ``encoder_q.*`` (the query ST-GCN), ``encoder_k.*``, ``queue``,
``queue_ptr``; a linear-evaluation model holds ``encoder_q.*`` too. Under ``encoder_q.``:

- ``A (3, V, V)``: the graph (``ntu-rgb+d``, strategy ``spatial``, max_hop 1, centre joint 21);
  it must equal our ``partition="spatial_one_hop"``, ``graph_center="root"`` adjacency;
- ``data_bn``: BatchNorm1d over ``V*C`` with persons folded into the batch, exactly our ``input_norm``;
- ``st_gcn_networks.{i}``: ``gcn.conv`` ``Conv2d(C_in, 3*C_out, 1)`` (output channel ``k*C_out + c``)
  = our ``graph_conv`` ``weight (3, C_out, C_in)``; ``tcn.0`` / ``tcn.3`` BatchNorm2d = our graph /
  temporal norms; ``tcn.2`` ``Conv2d((9, 1))`` = our ``(1, 9)`` temporal conv transposed;
  ``residual.0`` / ``.1`` = our residual conv / norm (blocks 5 and 8);
- ``edge_importance.{i} (3, V, V)``; ``fc`` (the projector or classifier): ignored.

Widths give ``base_channels`` (``hidden_channels``, 16) and ``out_channels`` (``hidden_dim``, 256);
clips are 50 frames (their ``ntu60_frame50`` data).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.models.encoder import build_encoder
from pcm3.models.official_formats.reading import BN_KEYS, load_converted, refuse_unexpected, scoped
from pcm3.models.official_formats.result import OfficialEncoder, ntu_spec

SCOPE = "encoder_q."
VIEW_FRAMES = 50
NUM_BLOCKS = 10


def _bn(ours: str, theirs: str) -> dict[str, tuple[str, None]]:
    return {f"{ours}.{k}": (f"{theirs}.{k}", None) for k in BN_KEYS}


def stgcn_options(encoder: Mapping[str, Tensor], where: str) -> tuple[dict, int, int]:
    """(our ``stgcn`` options, C, V) read from the shapes of the official encoder keys."""
    first, last = "st_gcn_networks.0.gcn.conv.weight", f"st_gcn_networks.{NUM_BLOCKS - 1}.gcn.conv.weight"
    for key in (first, last, "st_gcn_networks.0.tcn.2.weight", "data_bn.weight"):
        if key not in encoder:
            raise ConfigError(f"{where}: official ST-GCN checkpoint without {SCOPE + key!r}")
    if f"st_gcn_networks.{NUM_BLOCKS}.gcn.conv.weight" in encoder:
        raise ConfigError(f"{where}: official ST-GCN with more than {NUM_BLOCKS} blocks")
    partitions = 3
    base, channels = encoder[first].shape[0] // partitions, encoder[first].shape[1]
    options = {"base_channels": base, "out_channels": encoder[last].shape[0] // partitions,
               "temporal_kernel": int(encoder["st_gcn_networks.0.tcn.2.weight"].shape[2]), "dropout": 0.5,
               "edge_importance": "edge_importance.0" in encoder, "graph_center": "root",
               "partition": "spatial_one_hop"}
    joints, rest = divmod(encoder["data_bn.weight"].shape[0], channels)
    if rest:
        width = encoder["data_bn.weight"].shape[0]
        raise ConfigError(f"{where}: data_bn width {width} is not V*C with C={channels}")
    return options, channels, joints


def load_stgcn(state: Mapping[str, Tensor], where: str, fmt: str, stream: str) -> OfficialEncoder:
    """The ``encoder_q`` ST-GCN of a SkeletonCLR / AimCLR state dict, as our ``stgcn``."""
    encoder_keys = scoped(state, SCOPE)
    if not encoder_keys:
        raise ConfigError(f"{where}: no {SCOPE!r} keys (the ST-GCN of SkeletonCLR / AimCLR)")
    options, channels, joints = stgcn_options(encoder_keys, where)
    spec = ntu_spec("stgcn", options, channels, joints, stream, VIEW_FRAMES, where)
    encoder = build_encoder(spec)
    backbone = encoder.backbone
    mapping = _bn("input_norm", "data_bn")
    for i, block in enumerate(backbone.blocks):
        theirs = f"st_gcn_networks.{i}"
        k, cout, cin = block.graph_conv.weight.shape
        mapping[f"blocks.{i}.graph_conv.weight"] = (f"{theirs}.gcn.conv.weight",
                                                    lambda w, s=(k, cout, cin): w.reshape(s))
        mapping[f"blocks.{i}.graph_conv.bias"] = (f"{theirs}.gcn.conv.bias",
                                                  lambda b, s=(k, cout): b.reshape(s))
        mapping |= _bn(f"blocks.{i}.graph_norm", f"{theirs}.tcn.0")
        mapping[f"blocks.{i}.temporal_conv.weight"] = (f"{theirs}.tcn.2.weight", lambda w: w.transpose(2, 3))
        mapping[f"blocks.{i}.temporal_conv.bias"] = (f"{theirs}.tcn.2.bias", None)
        mapping |= _bn(f"blocks.{i}.temporal_norm", f"{theirs}.tcn.3")
        if block.residual_conv is not None:
            mapping[f"blocks.{i}.residual_conv.weight"] = (f"{theirs}.residual.0.weight", None)
            mapping[f"blocks.{i}.residual_conv.bias"] = (f"{theirs}.residual.0.bias", None)
            mapping |= _bn(f"blocks.{i}.residual_norm", f"{theirs}.residual.1")
        if backbone.edge_importance is not None:
            mapping[f"edge_importance.{i}"] = (f"edge_importance.{i}", None)
    optional = [k for k in mapping if k.endswith("num_batches_tracked")]
    used = load_converted(backbone, encoder_keys, mapping, where, SCOPE, optional)
    if "A" in encoder_keys and not torch.allclose(encoder_keys["A"], backbone.adjacency, atol=1e-6):
        raise ConfigError(f"{where}: the checkpoint's graph {SCOPE}A differs from the ST-GCN 'ntu-rgb+d' "
                          "spatial graph (max_hop 1, centre joint 21) our stgcn builds for ntu25")
    leftover = set(encoder_keys) - set(used)
    refuse_unexpected({k for k in leftover if k != "A" and not k.startswith("fc.")}, where, SCOPE)
    used_full = {SCOPE + k for k in used}
    return OfficialEncoder(encoder.eval(), spec, fmt, sorted(used_full),
                           sorted(k for k in state if k not in used_full))
