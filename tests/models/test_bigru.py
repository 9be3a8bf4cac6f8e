"""BiGRUEncoder: equal to the official frame-by-frame BIGRU, lengths, pooling, prompts, grads."""

from __future__ import annotations

import math

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.models import BiGRUEncoder, create_backbone, load_official_encoder, unflatten_frames

from .conftest import chain_layout

H, L, N, T = 8, 3, 4, 7
ATOL = 1e-5


def make_pair(official_bigru, v, m, **kwargs):
    """An official-style BIGRU and our encoder holding the same weights."""
    torch.manual_seed(0)
    official = official_bigru(3 * v * m, H, L)
    ours = create_backbone("bigru", layout=chain_layout(v), num_persons=m, in_channels=3, hidden_size=H,
                           num_layers=L,
                           **kwargs)
    load_official_encoder(official.state_dict(), ours)
    return official, ours


def pad_with_noise(x, lengths):
    """Replace every frame at or after ``lengths[i]`` by fresh noise."""
    y = x.clone()
    for i, n in enumerate(lengths.tolist()):
        y[i, :, n:] = torch.randn_like(y[i, :, n:]) * 5
    return y


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_equals_official_frame_by_frame(official_bigru, flatten_official, joints_persons, mode):
    v, m = joints_persons
    official, ours = make_pair(official_bigru, v, m)
    official.train(mode == "train")
    ours.train(mode == "train")
    x = torch.randn(N, 3, T, v, m) * 2 + 0.5
    with torch.no_grad():
        reference = official.frames(flatten_official(x))
        dense = ours.forward_dense(x)
        features = ours.forward_features(x)
    assert dense.shape == (N, T, 2 * H) and features.shape == (N, 2 * H)
    assert ours.feature_dim == 2 * H
    torch.testing.assert_close(dense, reference, atol=ATOL, rtol=0)
    torch.testing.assert_close(features, reference[:, -1], atol=ATOL, rtol=0)
    if mode == "train":  # both BNs saw the same batches -> same running statistics
        official.frames(flatten_official(x))
        torch.testing.assert_close(ours.input_norm.running_mean, official.input_norm.running_mean)
        torch.testing.assert_close(ours.input_norm.running_var, official.input_norm.running_var)


def test_lengths_pick_last_valid_frame_and_ignore_padding(official_bigru, flatten_official):
    official, ours = make_pair(official_bigru, 25, 2)
    official.eval()
    ours.eval()
    x = torch.randn(N, 3, T, 25, 2)
    lengths = torch.tensor([T, 1, 3, 5])
    with torch.no_grad():
        reference = official.frames(flatten_official(x))
        features = ours(x, lengths)
        padded = ours(pad_with_noise(x, lengths), lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(features[i], reference[i, n - 1], atol=ATOL, rtol=0)
    torch.testing.assert_close(padded, features, atol=ATOL, rtol=0)


def test_mean_pooling_averages_valid_frames_only(official_bigru):
    _, ours = make_pair(official_bigru, 8, 2, pooling="mean")
    ours.eval()
    x = torch.randn(N, 3, T, 8, 2)
    lengths = torch.tensor([2, T, 1, 4])
    with torch.no_grad():
        dense = ours.forward_dense(x)
        features = ours(x, lengths)
        padded = ours(pad_with_noise(x, lengths), lengths)
        full = ours(x)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(features[i], dense[i, :n].mean(0), atol=ATOL, rtol=0)
    torch.testing.assert_close(padded, features, atol=ATOL, rtol=0)
    torch.testing.assert_close(full, dense.mean(1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_causality(official_bigru, bidirectional):
    _, ours = make_pair(official_bigru, 8, 2, bidirectional=bidirectional)
    ours.eval()
    x = torch.randn(N, 3, T, 8, 2)
    changed = x.clone()
    changed[:, :, 4] += 1.0
    with torch.no_grad():
        before, after = ours.forward_dense(x), ours.forward_dense(changed)
    assert not torch.allclose(before[:, 4:], after[:, 4:], atol=1e-4)
    past_unchanged = torch.allclose(before[:, :4], after[:, :4], atol=ATOL, rtol=0)
    assert past_unchanged is (not bidirectional)


def test_bidirectional_equals_full_sequence_gru(official_bigru, flatten_official, joints_persons):
    v, m = joints_persons
    official, ours = make_pair(official_bigru, v, m, bidirectional=True)
    official.eval()
    ours.eval()
    x = torch.randn(N, 3, T, v, m)
    lengths = torch.tensor([T, 2, 5, 1])
    with torch.no_grad():
        dense = ours.forward_dense(x, lengths)
        last = ours(x, lengths)
        unpadded = ours.forward_dense(x)
        bn = official.input_norm(flatten_official(x).permute(0, 2, 1)).permute(0, 2, 1)
        torch.testing.assert_close(unpadded, official.encoder.gru(bn)[0], atol=ATOL, rtol=0)
        for i, n in enumerate(lengths.tolist()):  # each sample alone, truncated to its length
            alone = official.encoder.gru(bn[i:i + 1, :n])[0][0]
            torch.testing.assert_close(dense[i, :n], alone, atol=ATOL, rtol=0)
            assert torch.all(dense[i, n:] == 0)
            torch.testing.assert_close(last[i], alone[-1], atol=ATOL, rtol=0)
        padded = ours(pad_with_noise(x, lengths), lengths)
    assert dense.shape == (N, T, 2 * H) and last.shape == (N, 2 * H)
    torch.testing.assert_close(padded, last, atol=ATOL, rtol=0)


def test_input_prompt_is_added_after_bn(official_bigru, flatten_official, joints_persons):
    """Train mode: a prompt after BN changes the output; the official before-BN one cannot."""
    v, m = joints_persons
    official, ours = make_pair(official_bigru, v, m)
    f = 3 * v * m
    x = torch.randn(N, 3, T, v, m)
    prompt = torch.randn(1, 1, f)
    with torch.no_grad():
        plain = ours.forward_dense(x)
        after = ours.forward_dense(x, input_prompt=prompt.reshape(1, f))
        reference = official.frames(flatten_official(x), prompt_after_bn=prompt)
        before = ours.forward_dense(x + unflatten_frames(prompt.expand(N, T, f), 3, v, m))
    torch.testing.assert_close(after, reference, atol=ATOL, rtol=0)
    assert not torch.allclose(after, plain, atol=1e-3)
    torch.testing.assert_close(before, plain, atol=1e-4, rtol=0)  # cancelled by batch stats

    before_param = torch.zeros(1, 1, f, requires_grad=True)
    after_param = torch.zeros(1, 1, f, requires_grad=True)
    ours(x + unflatten_frames(before_param.expand(N, T, f), 3, v, m)).square().sum().backward()
    ours(x, input_prompt=after_param.reshape(1, f)).square().sum().backward()
    assert before_param.grad.abs().max() < 1e-4
    assert after_param.grad.abs().max() > 1e-3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_reach_all_parameters(bidirectional):
    torch.manual_seed(1)
    ours = BiGRUEncoder(chain_layout(20), 1, hidden_size=H, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(N, 3, T, 20, 1)
    loss = ours(x).square().sum() + ours.forward_dense(x).square().mean()
    loss.backward()
    for name, param in ours.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert torch.isfinite(param.grad).all(), name


def test_official_init():
    ours = BiGRUEncoder(chain_layout(8), 2, hidden_size=16, num_layers=2)
    for name, param in ours.named_parameters():
        if name.startswith("input_norm."):
            continue
        if param.dim() == 2:  # xavier_uniform_ on (3H, in): bound sqrt(6 / (in + 3H))
            bound = math.sqrt(6 / (param.shape[0] + param.shape[1]))
            assert param.abs().max() <= bound and param.abs().max() > 0.9 * bound, name
        else:  # PyTorch default: U(-1/sqrt(H), 1/sqrt(H))
            assert param.abs().max() <= 1 / math.sqrt(16), name
    assert torch.all(ours.input_norm.weight == 1) and torch.all(ours.input_norm.bias == 0)


def test_bad_arguments_and_inputs():
    ours = BiGRUEncoder(chain_layout(8), 2, hidden_size=H, num_layers=1)
    x = torch.randn(2, 3, 5, 8, 2)
    with pytest.raises(ConfigError, match=r"V=8.*got shape \(2, 3, 5, 9, 2\)"):
        ours(torch.randn(2, 3, 5, 9, 2))
    with pytest.raises(ConfigError, match="expected input"):
        ours(torch.randn(2, 3, 5, 8))
    with pytest.raises(ConfigError, match=r"lengths\[1\] = 6 is outside 1..5"):
        ours(x, torch.tensor([5, 6]))
    with pytest.raises(ConfigError, match=r"lengths\[0\] = 0"):
        ours(x, torch.tensor([0, 2]))
    with pytest.raises(ConfigError, match="integer tensor of shape"):
        ours(x, torch.tensor([5.0, 2.0]))
    with pytest.raises(ConfigError, match="integer tensor of shape"):
        ours(x, torch.tensor([5, 2, 1]))
    with pytest.raises(ConfigError, match=r"input_prompt must have shape \(1, 48\) or \(N=2, 48\)"):
        ours(x, input_prompt=torch.zeros(1, 47))
    with pytest.raises(ConfigError, match="input_prompt must have shape"):
        ours(x, input_prompt=torch.zeros(1, 1, 48))  # the old (1, 1, F) shape
    with pytest.raises(ConfigError, match="input_prompt must have shape"):
        ours(x, input_prompt=torch.zeros(3, 48))
    with pytest.raises(ConfigError, match="pooling"):
        BiGRUEncoder(chain_layout(8), 2, pooling="max")
    with pytest.raises(ConfigError, match="hidden_size must be a positive integer"):
        BiGRUEncoder(chain_layout(8), 2, hidden_size=0)
