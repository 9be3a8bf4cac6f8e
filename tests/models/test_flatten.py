"""flatten_frames / unflatten_frames: the official (V, C, M) feature order and its inverse."""

from __future__ import annotations

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.models import flatten_frames, unflatten_frames


def test_feature_index_is_v_c_m(joints_persons):
    v, m = joints_persons
    c, n, t = 3, 2, 4
    x = torch.randn(n, c, t, v, m)
    y = flatten_frames(x)
    assert y.shape == (n, t, v * c * m)
    for i in range(n):
        for f in range(t):
            for j in range(v):
                for k in range(c):
                    for p in range(m):
                        assert y[i, f, j * c * m + k * m + p] == x[i, k, f, j, p]


def test_round_trip(joints_persons):
    v, m = joints_persons
    x = torch.randn(3, 2, 5, v, m)  # two channels, to catch a C/M mix-up
    assert torch.equal(unflatten_frames(flatten_frames(x), 2, v, m), x)
    y = torch.randn(3, 5, v * 2 * m)
    assert torch.equal(flatten_frames(unflatten_frames(y, 2, v, m)), y)


def test_bad_shapes():
    with pytest.raises(ConfigError, match="expected a skeleton tensor"):
        flatten_frames(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ConfigError, match=r"V\*C\*M = 25\*3\*2 = 150"):
        unflatten_frames(torch.zeros(2, 4, 149), 3, 25, 2)
