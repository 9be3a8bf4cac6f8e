"""SkeletonCLR's mirror-padded temporal crop and MAMP's random rotation against hand-written
references (the official numpy / torch formulas written out)."""

from __future__ import annotations

import math

import pytest
import torch

from pcm3.augment.rotation import random_rotation, rotation_matrices
from pcm3.augment.temporal import padded_crop_sources, padded_temporal_crop
from pcm3.errors import ConfigError


def _official_crop(frames: list[int], padding: int, start: int) -> list[int]:
    padded = frames[:padding][::-1] + frames + frames[-padding:][::-1]
    return padded[start:start + len(frames)]


@pytest.mark.parametrize(("t", "padding"), [(6, 1), (12, 2), (50, 8)])
def test_padded_crop_sources_match_the_official_concatenation(t, padding):
    frames = list(range(t))
    starts = torch.arange(2 * padding + 1)
    got = padded_crop_sources(t, starts, padding)
    for s in range(2 * padding + 1):
        assert got[s].tolist() == _official_crop(frames, padding, s)


def test_padded_temporal_crop_keeps_one_official_crop_per_sample():
    x = torch.arange(2 * 12, dtype=torch.float64).view(2, 1, 12, 1, 1).expand(2, 3, 12, 4, 2).clone()
    out = padded_temporal_crop(x, torch.Generator().manual_seed(0), padding_ratio=6)  # padding 2
    assert out.shape == x.shape
    for i in range(2):
        frames = x[i, 0, :, 0, 0].tolist()
        crops = [_official_crop(frames, 2, s) for s in range(5)]
        assert out[i, 0, :, 0, 0].tolist() in crops
        assert torch.equal(out[i], out[i, :1, :, :1, :1].expand_as(out[i]))  # frames moved whole


def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return [[1, 0, 0], [0, c, s], [0, -s, c]]


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return [[c, 0, -s], [0, 1, 0], [s, 0, c]]


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return [[c, s, 0], [-s, c, 0], [0, 0, 1]]


def _matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def test_rotation_matrices_are_rz_ry_rx():
    angles = torch.tensor([[0.1, -0.2, 0.25], [0.0, 0.0, 0.0], [-0.3, 0.3, 0.0]], dtype=torch.float64)
    got = rotation_matrices(angles)
    for row, (ax, ay, az) in enumerate(angles.tolist()):
        want = torch.tensor(_matmul(_matmul(_rz(az), _ry(ay)), _rx(ax)), dtype=torch.float64)
        torch.testing.assert_close(got[row], want)


def test_random_rotation_rotates_every_frame_alike_within_the_angle():
    x = torch.randn(5, 3, 4, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = random_rotation(x, torch.Generator().manual_seed(2), max_angle=0.3)
    torch.testing.assert_close(out.norm(dim=1), x.norm(dim=1))  # a rotation keeps lengths
    for i in range(5):  # one matrix per sample: solve it from the frames and check it is a rotation by <= 0.3
        a = torch.linalg.lstsq(x[i].reshape(3, -1).T, out[i].reshape(3, -1).T).solution.T
        torch.testing.assert_close(a @ a.T, torch.eye(3, dtype=torch.float64))
        assert math.acos(min(1.0, (float(a.trace()) - 1) / 2)) <= 0.3 * math.sqrt(3) + 1e-9
    with pytest.raises(ConfigError, match="C = 2"):
        random_rotation(x[:, :2], None)
