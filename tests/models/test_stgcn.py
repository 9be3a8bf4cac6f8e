"""ST-GCN: shapes, padding, gradients, prompts, options and input checks, on a zoo of layouts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.layouts import NTU25, load_layout_yaml
from pcm3.models import BACKBONES, STGCN, STGCNOptions
from pcm3.models.graph import spatial_partition_adjacency
from pcm3.models.stgcn import GraphConv, dropout_mask

from .layout_zoo import (
    TWO_HANDS_YAML,
    ZOO,
    ZOO_IDS,
    assert_every_parameter_gets_a_gradient,
    assert_padding_invariant,
    clips,
)

TINY = dataclasses.asdict(STGCNOptions.tiny())


def _with_random_statistics(model: STGCN) -> STGCN:
    """Non-trivial BatchNorm statistics and affine parameters, so eval mode is not an identity."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(shape, generator=generator) - 0.5)
    return model


def test_registered_with_its_options():
    assert BACKBONES["stgcn"].cls is STGCN and BACKBONES["stgcn"].options is STGCNOptions
    model = STGCN(NTU25, 2, 3, **TINY)
    assert (model.time_stride, model.causal, model.feature_dim) == (4, False, 8)
    assert model.input_prompt_shape == (3, 25)


def test_defaults_are_skeletonclr():
    model = STGCN(NTU25, 2, 3)
    widths = [block.graph_conv.weight.shape[1] for block in model.blocks]
    assert widths == [16, 16, 16, 16, 32, 32, 32, 64, 64, 256] and model.feature_dim == 256
    assert [block.temporal_conv.stride[1] for block in model.blocks] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert {block.temporal_conv.kernel_size for block in model.blocks} == {(1, 9)}
    assert [block.dropout for block in model.blocks] == [0.0] + [0.5] * 9
    kinds = ["identity" if b.identity_residual else "conv" if b.residual_conv is not None else "none"
             for b in model.blocks]
    assert kinds == ["none", "identity", "identity", "identity", "conv", "identity", "identity", "conv",
                     "identity", "conv"]
    assert len(model.edge_importance) == 10 and model.edge_importance[0].shape == (3, 25, 25)


@pytest.mark.parametrize(("layout", "persons", "channels"), ZOO, ids=ZOO_IDS)
def test_layout_zoo(layout, persons, channels):
    torch.manual_seed(0)
    model = _with_random_statistics(STGCN(layout, persons, channels, **TINY))
    x = clips(3, channels, 17, layout.num_joints, persons)
    assert model.forward_features(x).shape == (3, 8)
    assert model.forward_dense(x).shape == (3, 5, 8)  # ceil(17 / 4)
    model.eval()
    assert_padding_invariant(model, x, torch.tensor([17, 9, 1]), time_stride=4)
    assert_every_parameter_gets_a_gradient(model, x, torch.tensor([17, 12, 5]))


def test_custom_yaml_layout_with_two_roots(tmp_path):
    path = tmp_path / "two_hands.yaml"
    path.write_text(TWO_HANDS_YAML)
    model = STGCN(load_layout_yaml(path), 1, 3, **TINY).eval()
    assert model.forward_features(clips(2, 3, 8, 7, 1)).shape == (2, 8)


@pytest.mark.parametrize(("cin", "cout"), [(3, 5), (6, 6), (7, 4)])
def test_graph_conv_against_a_conv_per_partition(cin, cout):
    """``out[w] = sum_k sum_v (W_k x[v] + b_k) A[k, v, w]``, written with einsum on ``(V, R, C)``."""
    torch.manual_seed(0)
    conv = GraphConv(cin, cout, 3)
    adjacency = torch.from_numpy(spatial_partition_adjacency(NTU25)) * torch.rand(3, 25, 25)
    x = torch.randn(25, 10, cin)
    per_partition = torch.einsum("koc,vrc->kvro", conv.weight, x) + conv.bias[:, None, None, :]
    expected = torch.einsum("kvro,kvw->wro", per_partition, adjacency)
    torch.testing.assert_close(conv(x, adjacency), expected, atol=1e-5, rtol=1e-5)


def test_input_prompt_is_added_after_the_input_norm():
    """In eval mode a prompt (1, C, V) acts as a shift of the input BatchNorm's bias at v*C + c."""
    torch.manual_seed(0)
    model = _with_random_statistics(STGCN(NTU25, 2, 3, **TINY)).eval()
    x, prompt = clips(2, 3, 12, 25, 2), torch.randn(1, 3, 25)
    prompted = model.forward_features(x, input_prompt=prompt)
    shifted = _with_random_statistics(STGCN(NTU25, 2, 3, **TINY)).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted.input_norm.bias += prompt[0].t().reshape(-1)  # index v*C + c
    torch.testing.assert_close(prompted, shifted.forward_features(x), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(prompted, model.forward_features(x), atol=1e-3)
    per_sample = torch.randn(2, 3, 25)
    both = model.forward_dense(x, input_prompt=per_sample)
    for i in range(2):
        alone = model.forward_dense(x[i:i + 1], input_prompt=per_sample[i:i + 1])
        torch.testing.assert_close(both[i:i + 1], alone, atol=1e-5, rtol=1e-5)


def test_dropout_acts_in_train_mode_only():
    torch.manual_seed(0)
    model = STGCN(NTU25, 1, 3, base_channels=4, out_channels=8, dropout=0.5)
    x = clips(2, 3, 8, 25, 1)
    assert not torch.allclose(model.forward_features(x), model.forward_features(x))
    model.eval()
    torch.testing.assert_close(model.forward_features(x), model.forward_features(x), rtol=0, atol=0)


def test_dropout_mask_distribution():
    mask = dropout_mask(torch.ones(200_000), 0.3)
    assert mask.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert abs(float((mask == 0).float().mean()) - 0.3) < 0.01


def test_without_edge_importance():
    model = STGCN(NTU25, 1, 3, **{**TINY, "edge_importance": False})
    assert model.edge_importance is None and not any("edge" in n for n, _ in model.named_parameters())
    assert model.forward_dense(clips(1, 3, 8, 25, 1)).shape == (1, 2, 8)


@pytest.mark.parametrize(("options", "message"), [
    ({"width": 4}, r"backbone 'stgcn': unknown options \['width'\]; allowed: \['base_channels', "),
    ({"out_channels": 7}, "out_channels must be even"),
    ({"temporal_kernel": 4}, "temporal_kernel must be odd"),
    ({"base_channels": 0}, "base_channels must be a positive integer"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
    ({"edge_importance": "yes"}, "edge_importance must be true or false"),
    ({"graph_center": "hip"}, r"graph_center must be one of \('root', 'layout'\)"),
    ({"partition": "uniform"}, "partition must be one of"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        STGCN(NTU25, 2, 3, **options)


def test_bad_inputs_are_refused():
    model = STGCN(NTU25, 2, 3, **TINY)
    with pytest.raises(ConfigError, match=r"layout must be a pcm3.layouts.Layout"):
        STGCN("ntu25", 2, 3)
    with pytest.raises(ConfigError, match=r"stgcn: expected input \(N, C=3, T, V=25, M=2\), got shape"):
        model.forward_features(torch.randn(2, 3, 8, 25, 1))
    with pytest.raises(ConfigError, match=r"lengths\[1\] = 9 is outside 1..8"):
        model.forward_features(torch.randn(2, 3, 8, 25, 2), torch.tensor([8, 9]))
    with pytest.raises(ConfigError, match="lengths must be an integer tensor of shape"):
        model.forward_features(torch.randn(2, 3, 8, 25, 2), torch.tensor([8.0, 4.0]))
    with pytest.raises(ConfigError, match=r"input_prompt must have shape \(1, 3, 25\) or \(N=2, 3, 25\)"):
        model.forward_features(torch.randn(2, 3, 8, 25, 2), input_prompt=torch.randn(1, 75))
