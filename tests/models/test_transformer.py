"""MAMP's Transformer encoder: shapes, padding, token order, masked input, prompts, options."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.layouts import NTU25
from pcm3.models import BACKBONES, SkeletonTransformer, TransformerOptions
from pcm3.models.transformer_block import TransformerBlock, drop_path

from .layout_zoo import (
    ZOO,
    ZOO_IDS,
    assert_every_parameter_gets_a_gradient,
    assert_padding_invariant,
    clips,
)

TINY = dataclasses.asdict(TransformerOptions.tiny())


def test_registered_with_its_options():
    assert BACKBONES["transformer"].cls is SkeletonTransformer
    assert BACKBONES["transformer"].options is TransformerOptions
    model = SkeletonTransformer(NTU25, 2, 3, **TINY)
    assert (model.time_stride, model.causal, model.feature_dim) == (4, False, 16)
    assert model.input_prompt_shape == (3, 25)


def test_defaults_are_mamps():
    model = SkeletonTransformer(NTU25, 2, 3)
    assert model.feature_dim == 256 and len(model.blocks) == 8 and model.blocks[0].num_heads == 8
    assert model.time_embed.shape == (30, 256) and model.joint_embed.shape == (25, 256)
    assert model.patch_embed.in_features == 12 and model.blocks[0].fc1.out_features == 1024


@pytest.mark.parametrize(("layout", "persons", "channels"), ZOO, ids=ZOO_IDS)
def test_layout_zoo(layout, persons, channels):
    torch.manual_seed(0)
    model = SkeletonTransformer(layout, persons, channels, **TINY)
    x = clips(3, channels, 17, layout.num_joints, persons)
    assert model.forward_features(x).shape == (3, 16)
    assert model.forward_dense(x).shape == (3, 5, 16)  # ceil(17 / 4)
    assert_padding_invariant(model, x, torch.tensor([17, 10, 1]), time_stride=4)  # train mode: no BatchNorm
    model.eval()
    assert_padding_invariant(model, x, torch.tensor([16, 5, 3]), time_stride=4)
    assert_every_parameter_gets_a_gradient(model, x, torch.tensor([17, 12, 5]))


def test_frames_not_a_multiple_of_the_patch_are_zero_padded():
    model = SkeletonTransformer(NTU25, 1, 3, **TINY).eval()
    x = clips(2, 3, 10, 25, 1)
    padded = torch.cat([x, torch.zeros(2, 3, 2, 25, 1)], dim=2)
    torch.testing.assert_close(model.forward_features(x), model.forward_features(padded))


def test_tokens_are_time_major_one_per_patch_and_joint():
    model = SkeletonTransformer(NTU25, 1, 3, **TINY)
    x = torch.zeros(1, 3, 12, 25, 1)
    base, _ = model.embed_tokens(x)
    x[0, :, 5, 7, 0] = 1.0  # frame 5 = patch 1, joint 7
    moved, _ = model.embed_tokens(x)
    changed = (moved - base).abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [1 * 25 + 7]


def test_forward_tokens_encodes_the_kept_tokens_only():
    torch.manual_seed(0)
    model = SkeletonTransformer(NTU25, 2, 3, **TINY).eval()
    x = clips(2, 3, 16, 25, 2)
    tokens, _ = model.embed_tokens(x)
    keep = torch.stack([torch.randperm(100)[:9] for _ in range(4)])  # N*M = 4 sequences of 4*25 tokens
    kept = model.forward_tokens(x, keep_index=keep)
    assert kept.shape == (4, 9, 16)
    expected = model.encode(tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, 16)))
    torch.testing.assert_close(kept, expected)
    order = torch.randperm(9)  # attention is permutation-equivariant: positions come from the embeddings
    torch.testing.assert_close(model.forward_tokens(x, keep_index=keep[:, order]), kept[:, order])
    everything = model.forward_tokens(x)
    assert everything.shape == (4, 100, 16)
    # padding: kept valid tokens ignore frames past the length, and which tokens are valid follows lengths
    lengths = torch.tensor([16, 6])  # sample 1: patches 0 and 1 valid (tokens 0..49)
    valid_keep = torch.stack([torch.randperm(50)[:9] for _ in range(4)])
    noisy = x.clone()
    noisy[1, :, 6:] = 30.0
    torch.testing.assert_close(model.forward_tokens(noisy, lengths, valid_keep),
                               model.forward_tokens(x, lengths, valid_keep))
    validity = model.token_validity(lengths, 16)
    assert validity.shape == (4, 100) and validity[:2].all()
    assert validity[2:, :50].all() and not validity[2:, 50:].any()
    assert model.token_validity(torch.tensor([16, 16]), 16) is None


def test_input_prompt_is_added_to_the_coordinates():
    torch.manual_seed(0)
    model = SkeletonTransformer(NTU25, 2, 3, **TINY).eval()
    x, prompt = clips(2, 3, 12, 25, 2), torch.randn(2, 3, 25)
    torch.testing.assert_close(model.forward_dense(x, input_prompt=prompt),
                               model.forward_dense(x + prompt[:, :, None, :, None]))


def test_drop_path():
    torch.manual_seed(0)
    x = torch.ones(4000, 3)
    dropped = drop_path(x, 0.25, training=True)
    rows = dropped[:, 0]
    assert rows.unique().tolist() == pytest.approx([0.0, 4 / 3])
    assert (dropped == dropped[:, :1]).all()  # whole samples
    assert abs(float((rows == 0).float().mean()) - 0.25) < 0.03
    assert drop_path(x, 0.25, training=False) is x
    model = SkeletonTransformer(NTU25, 1, 3, **{**TINY, "drop_path": 0.5})
    assert [b.drop_path for b in model.blocks] == [0.0, 0.5]
    y = clips(8, 3, 8, 25, 1)
    assert not torch.allclose(model.forward_features(y), model.forward_features(y))
    model.eval()
    torch.testing.assert_close(model.forward_features(y), model.forward_features(y), rtol=0, atol=0)


def test_block_attention_is_scaled_dot_product():
    """The fused attention equals softmax(q k^T / sqrt(d)) v written out, with padding keys masked."""
    torch.manual_seed(0)
    block = TransformerBlock(8, 2)
    x = torch.randn(2, 5, 8)
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    q, k, v = block.qkv(x).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-1, -2)) / 2.0
    scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    expected = block.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(block.attention(x, valid), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("options", "message"), [
    ({"dim": 4}, r"backbone 'transformer': unknown options \['dim'\]; allowed: \['embed_dim', "),
    ({"embed_dim": 20, "num_heads": 8}, "embed_dim must be even and a multiple of num_heads"),
    ({"max_frames": 30}, r"max_frames \(30\) must be a multiple of patch_frames \(4\)"),
    ({"depth": 0}, "depth must be a positive integer"),
    ({"mlp_ratio": 0}, "mlp_ratio must be a positive number"),
    ({"drop_path": 1.0}, r"drop_path must be a number in \[0, 1\)"),
    ({"qkv_bias": 1}, "qkv_bias must be true or false"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        SkeletonTransformer(NTU25, 2, 3, **options)


def test_bad_inputs_are_refused():
    model = SkeletonTransformer(NTU25, 2, 3, **TINY)
    with pytest.raises(ConfigError, match=r"an input of 33 frames is longer than max_frames = 32"):
        model.forward_features(torch.randn(1, 3, 33, 25, 2))
    with pytest.raises(ConfigError, match=r"transformer: expected input \(N, C=3, T, V=25, M=2\)"):
        model.forward_features(torch.randn(1, 2, 8, 25, 2))
    with pytest.raises(ConfigError, match=r"lengths\[0\] = 0 is outside 1..8"):
        model.forward_dense(torch.randn(1, 3, 8, 25, 2), torch.tensor([0]))
    with pytest.raises(ConfigError, match=r"input_prompt must have shape \(1, 3, 25\) or \(N=1, 3, 25\)"):
        model.forward_features(torch.randn(1, 3, 8, 25, 2), input_prompt=torch.randn(2, 3, 25))
    with pytest.raises(ConfigError, match=r"keep_index must be an int64 tensor \(N\*M=2, K\)"):
        model.forward_tokens(torch.randn(1, 3, 8, 25, 2), keep_index=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"keep_index values must lie in 0..49"):
        model.forward_tokens(torch.randn(1, 3, 8, 25, 2), keep_index=torch.full((2, 3), 50))
