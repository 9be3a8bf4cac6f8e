import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pcm3.augment.temporal import (
    TemporalCrop,
    centre_crop,
    centre_crop_resize,
    crop_resize,
    draw_temporal_crop,
    temporal_crop_resize,
)
from pcm3.errors import ConfigError


def official_resize(sample: torch.Tensor, out_len: int) -> torch.Tensor:
    """The official per-sample resize (feeder/augmentations.py), on a (C, L, V, M) crop."""
    c, length, v, m = sample.shape
    data = sample.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, :, :, None]
    data = F.interpolate(data, size=(out_len, 1), mode="bilinear", align_corners=False)
    return data.squeeze(3).squeeze(0).contiguous().view(c, v, m, out_len).permute(0, 3, 1, 2)


def padded_batch(lengths, t_max, v, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), 3, t_max, v, 2, generator=g, dtype=dtype)
    for i, n in enumerate(lengths):
        x[i, :, n:] = float("nan")  # padding must never be read
    return x.to(device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_crop_resize_matches_official_interpolate(layout, device, dtype):
    lengths = [1, 5, 30, 63, 64, 65, 90, 120, 17, 64]
    x = padded_batch(lengths, 120, layout.num_joints, device, dtype)
    g = torch.Generator().manual_seed(1)
    crop = draw_temporal_crop(torch.tensor(lengths, device=device), g, scale=(0.1, 1.0), min_len=8)
    out = crop_resize(x, crop, out_len=16)
    assert out.shape == (len(lengths), 3, 16, layout.num_joints, 2) and out.dtype == dtype
    for i, n in enumerate(lengths):
        s, length = int(crop.start[i]), int(crop.length[i])
        assert 0 <= s and s + length <= n
        ref = official_resize(x[i, :, s : s + length].cpu(), 16)
        torch.testing.assert_close(out[i].cpu(), ref, atol=1e-5, rtol=1e-5)


def test_temporal_crop_resize_is_seeded_and_uses_draw(layout, device):
    lengths = torch.tensor([100, 64, 30, 250])
    x = padded_batch(lengths.tolist(), 300, layout.num_joints, device)
    a = temporal_crop_resize(x, lengths, torch.Generator().manual_seed(5))
    crop = draw_temporal_crop(lengths.to(device), torch.Generator().manual_seed(5))
    b = crop_resize(x, crop, 64)
    assert a.shape == (4, 3, 64, layout.num_joints, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.isfinite(a).all()
    c = temporal_crop_resize(x, lengths, torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_crop_length_statistics_match_formula():
    n, draws = 300, 20000
    lengths = torch.full((draws,), n)
    crop = draw_temporal_crop(lengths, torch.Generator().manual_seed(0), (0.1, 1.0), 64)
    # exact expectation of min(max(floor(n s), 64), n), s ~ U(0.1, 1), on a fine grid
    s = np.linspace(0.1, 1.0, 2_000_001)[:-1] + 0.225e-6  # midpoints
    expected = np.minimum(np.maximum(np.floor(n * s), 64), n).mean()
    length = crop.length.double()
    assert abs(length.mean().item() - expected) < 4 * length.std().item() / draws**0.5
    assert int(crop.length.min()) == 64 and int(crop.length.max()) <= n
    # start ~ UniformInt[0, n - L]: relative position has mean 1/2, both ends are reached
    room = lengths - crop.length
    rel = crop.start[room > 0].double() / room[room > 0]
    assert abs(rel.mean().item() - 0.5) < 0.02
    assert (crop.start >= 0).all() and (crop.start <= room).all()
    assert (crop.start[room > 0] == 0).any() and (crop.start[room > 0] == room[room > 0]).any()


def test_short_sequences_are_upsampled_whole():
    lengths = torch.tensor([10, 63, 64])
    crop = draw_temporal_crop(lengths, torch.Generator().manual_seed(0))
    assert crop.length.tolist() == [10, 63, 64] and crop.start.tolist() == [0, 0, 0]


def test_centre_crop_matches_official_formula():
    lengths = torch.arange(1, 301)
    crop = centre_crop(lengths, 0.95)
    for n in range(1, 301):
        start = int((1 - 0.95) * n / 2)  # CMD crop_subsequence, test branch
        assert int(crop.start[n - 1]) == start
        assert int(crop.length[n - 1]) == len(range(start, n - start))
    assert int(centre_crop(torch.tensor([40]), 0.95).start) == int(0.025 * 40)


def test_centre_crop_resize_matches_official(layout, device):
    lengths = [1, 20, 64, 77, 150]
    x = padded_batch(lengths, 150, layout.num_joints, device)
    out = centre_crop_resize(x, torch.tensor(lengths), out_len=64, ratio=0.95)
    for i, n in enumerate(lengths):
        start = int((1 - 0.95) * n / 2)
        ref = official_resize(x[i, :, start : n - start].cpu(), 64)
        torch.testing.assert_close(out[i].cpu(), ref, atol=1e-5, rtol=1e-5)


def test_source_positions_locate_frames():
    crop = TemporalCrop(start=torch.tensor([3]), length=torch.tensor([8]))
    pos = crop.source_positions(8)  # same length: identity inside the crop
    torch.testing.assert_close(pos, torch.arange(3, 11, dtype=torch.float64)[None])
    # a linear ramp in time is resized to the ramp sampled at the source positions
    x = torch.arange(20, dtype=torch.float64).view(1, 1, 20, 1, 1).expand(1, 2, 20, 3, 1)
    crop = TemporalCrop(start=torch.tensor([2]), length=torch.tensor([13]))
    out = crop_resize(x, crop, 5)
    torch.testing.assert_close(out[0, 0, :, 0, 0], crop.source_positions(5)[0])


def test_bad_lengths_raise():
    x = torch.zeros(2, 3, 10, 4, 1)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="sample 1 has length 11"):
        temporal_crop_resize(x, torch.tensor([5, 11]), g)
    with pytest.raises(ConfigError, match="sample 0 has length 0"):
        centre_crop_resize(x, [0, 3])
    with pytest.raises(ConfigError, match="shape"):
        temporal_crop_resize(x, torch.tensor([5]), g)
    with pytest.raises(ConfigError, match="5-D"):
        temporal_crop_resize(x[0], torch.tensor([5, 5]), g)
    with pytest.raises(ConfigError, match="scale"):
        temporal_crop_resize(x, torch.tensor([5, 5]), g, scale=(0.5, 0.2))
