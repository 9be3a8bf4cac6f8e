"""Our ST-GCN and Transformer compute the same function as the lineage's formulations
(``benchmarks/reference_stgcn.py``, ``benchmarks/reference_mamp_encoder.py``) on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcm3.layouts import COCO17, KINECT_V1_20, NTU25
from pcm3.models import STGCN, SkeletonTransformer
from pcm3.models.graph import component_centres, spatial_partition_adjacency

from ..benchmark_scripts import load_benchmark

ref_stgcn = load_benchmark("reference_stgcn")
ref_mamp = load_benchmark("reference_mamp_encoder")


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter and BatchNorm statistic moved off its initial value (edge importances too)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.3, 0.3, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model


@pytest.mark.parametrize("layout", [NTU25, KINECT_V1_20, COCO17], ids=lambda x: x.name)
def test_released_graph_equals_our_one_hop_partition(layout):
    centre = component_centres(layout)[0]
    np.testing.assert_allclose(spatial_partition_adjacency(layout, partition="spatial_one_hop"),
                               ref_stgcn.reference_graph(layout, centre), atol=1e-7)


@pytest.mark.parametrize(("layout", "persons", "partition"),
                         [(NTU25, 2, "spatial_one_hop"), (KINECT_V1_20, 1, "spatial")],
                         ids=["ntu25", "kinect20"])
def test_stgcn_equals_the_reference(layout, persons, partition):
    torch.manual_seed(0)
    sizes = {"base_channels": 4, "out_channels": 10, "dropout": 0.0}
    ours = _perturbed(STGCN(layout, persons, 3, partition=partition, **sizes))
    theirs = ref_stgcn.ReferenceSTGCN(layout, 3, component_centres(layout)[0], **sizes)
    theirs.A.copy_(ours.adjacency)  # the same graph ("spatial" is not what their graph code builds)
    ref_stgcn.copy_weights_from(theirs, ours)
    # float64: in train mode the input gradient is a small difference of large terms (BatchNorm
    # backward under mean pooling), and float32 sums over rows (ours) and over (N, T, V) maps
    # (theirs) round differently: 1e-3 apart with one thread
    ours, theirs = ours.double(), theirs.double()
    x = torch.randn(3, 3, 21, layout.num_joints, persons, dtype=torch.float64)
    for train in (False, True):  # eval: running statistics; train: batch statistics
        ours.train(train)
        theirs.train(train)
        x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        mine, reference = ours.forward_features(x_ours), theirs(x_theirs)
        torch.testing.assert_close(mine, reference, atol=2e-5, rtol=1e-4)
        mine.square().sum().backward()
        reference.square().sum().backward()
        torch.testing.assert_close(x_ours.grad, x_theirs.grad, atol=2e-5, rtol=1e-4)
    their_grad = theirs.st_gcn_networks[0].gcn.conv.weight.grad
    my_grad = ours.blocks[0].graph_conv.weight.grad
    torch.testing.assert_close(my_grad.reshape(-1, 3), their_grad.reshape(-1, 3), atol=1e-4, rtol=1e-4)


def test_stgcn_default_size_has_the_reference_parameter_count():
    ours, theirs = STGCN(NTU25, 2, 3), ref_stgcn.ReferenceSTGCN(NTU25, 3, 20)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_transformer_equals_mamps_encoder():
    torch.manual_seed(0)
    ours = _perturbed(SkeletonTransformer(NTU25, 2, 3, embed_dim=32, depth=2, num_heads=4, max_frames=40))
    theirs = ref_mamp.ReferenceMAMPEncoder(3, 25, num_frames=24, dim=32, depth=2, num_heads=4)
    ref_mamp.copy_weights_from(theirs, ours)
    x = torch.randn(3, 3, 24, 25, 2)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    mine, reference = ours.forward_features(x_ours), theirs(x_theirs)
    torch.testing.assert_close(mine, reference, atol=1e-5, rtol=1e-4)
    mine.square().sum().backward()
    reference.square().sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, atol=1e-5, rtol=1e-4)
    keep = torch.stack([torch.randperm(150)[:15] for _ in range(6)])  # MAMP keeps 10 % of the tokens
    torch.testing.assert_close(ours.forward_tokens(x, keep_index=keep), theirs.encode_kept(x, keep),
                               atol=1e-5, rtol=1e-4)


def test_transformer_default_size_has_the_reference_parameter_count():
    ours, theirs = SkeletonTransformer(NTU25, 2, 3), ref_mamp.ReferenceMAMPEncoder(3, 25)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
