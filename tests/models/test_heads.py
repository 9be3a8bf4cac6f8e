"""Projector, masked-prediction neck and GRU decoder against hand-written references."""

from __future__ import annotations

import torch

from pcm3.models import GRUDecoder, MaskedPredictionNeck, Projector

ATOL = 1e-5


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_default_sizes_match_the_official_parameter_counts():
    # reference notes §3.1 / §3.2: projector 4,458,624; neck 1,312,768; decoder 3,228,822
    assert n_params(Projector()) == 2048 * 2048 + 2048 + 2048 * 128 + 128 == 4_458_624
    neck = MaskedPredictionNeck()
    assert n_params(neck) == 2048 * 512 + 512 + 2 * 512 + 512 * 512 + 512 == 1_312_768
    decoder = GRUDecoder(num_joints=25, num_persons=2)
    assert n_params(decoder) == 3_228_822


def test_projector_matches_reference():
    torch.manual_seed(0)
    head = Projector(6, 5, 3)
    x = torch.randn(4, 7, 6)
    w1, b1, w2, b2 = head.fc1.weight, head.fc1.bias, head.fc2.weight, head.fc2.bias
    expected = torch.clamp(x @ w1.T + b1, min=0) @ w2.T + b2
    torch.testing.assert_close(head(x), expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(head(x[:, 0]), expected[:, 0], atol=ATOL, rtol=0)


def test_neck_batchnorm_over_all_frames():
    torch.manual_seed(0)
    neck = MaskedPredictionNeck(6, 4, 3)
    x = torch.randn(3, 5, 6) * 2 + 1
    out = neck(x)  # train mode: statistics over N*T = 15 frames
    h = (x @ neck.fc1.weight.T + neck.fc1.bias).reshape(15, 4)
    mean, var = h.mean(0), h.var(0, unbiased=False)
    normed = (h - mean) / torch.sqrt(var + neck.norm.eps) * neck.norm.weight + neck.norm.bias
    expected = (torch.clamp(normed, min=0) @ neck.fc2.weight.T + neck.fc2.bias).reshape(3, 5, 3)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(neck.norm.running_mean, 0.1 * mean, atol=ATOL, rtol=0)
    torch.testing.assert_close(neck.norm.running_var, 0.9 + 0.1 * h.var(0, unbiased=True),
                               atol=ATOL, rtol=0)
    neck.eval()
    assert neck(x[:, :2]).shape == (3, 2, 3)


def test_decoder_matches_frame_by_frame_reference(joints_persons):
    v, m = joints_persons
    c, n, t = 3, 2, 6
    torch.manual_seed(0)
    decoder = GRUDecoder(num_joints=v, num_persons=m, in_channels=c, in_features=5,
                         hidden_size=7, num_layers=2)
    features = torch.randn(n, t, 5)
    out = decoder(features)
    assert out.shape == (n, c, t, v, m)
    hidden, expected = None, torch.empty(n, c, t, v, m)
    with torch.no_grad():
        for f in range(t):
            step, hidden = decoder.gru(features[:, f:f + 1], hidden)
            y = decoder.output(step[:, 0])  # (N, V*C*M), index v*C*M + c*M + m
            for j in range(v):
                for k in range(c):
                    for p in range(m):
                        expected[:, k, f, j, p] = y[:, j * c * m + k * m + p]
    torch.testing.assert_close(out.detach(), expected, atol=ATOL, rtol=0)


def test_decoder_is_causal_and_trainable():
    torch.manual_seed(0)
    decoder = GRUDecoder(num_joints=8, num_persons=2, in_features=5, hidden_size=6)
    features = torch.randn(2, 6, 5, requires_grad=True)
    changed = features.detach().clone()
    changed[:, 3] += 1
    before, after = decoder(features), decoder(changed)
    torch.testing.assert_close(before[:, :, :3], after[:, :, :3], atol=ATOL, rtol=0)
    assert not torch.allclose(before[:, :, 3:], after[:, :, 3:], atol=1e-4)
    before.square().sum().backward()
    assert features.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder.parameters())
