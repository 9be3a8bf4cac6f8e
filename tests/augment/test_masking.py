import itertools

import pytest
import torch

from pcm3.augment.masking import body_part_segment_mask
from pcm3.errors import ConfigError
from pcm3.layouts import NTU25


def expected_masked_fraction(layout, ratio):
    """Exact mean masked-joint fraction: average over all equally likely part subsets."""
    k = int(len(layout.parts) * ratio)
    subsets = list(itertools.combinations(layout.part_joints, k))
    sizes = [len({j for part in subset for j in part}) for subset in subsets]
    return sum(sizes) / len(sizes) / layout.num_joints, set(sizes)


def segments_of(mask, segment_frames):
    """(N, S, V) masked joints of person 0 per segment, checking constancy within segments."""
    masked = ~mask[:, 0, :, :, 0]  # (N, T, V)
    t = masked.shape[1]
    rows = []
    for start in range(0, t, segment_frames):
        block = masked[:, start : start + segment_frames]
        assert (block == block[:, :1]).all(), "mask changes inside a segment"
        rows.append(block[:, 0])
    return torch.stack(rows, 1)


@pytest.mark.parametrize("t", [64, 30])
def test_mask_structure_and_statistics(layout, device, t):
    n = 200
    g = torch.Generator().manual_seed(0)
    mask = body_part_segment_mask(n, t, layout, 2, g, device=device)
    assert mask.shape == (n, 1, t, layout.num_joints, 2) and mask.dtype == torch.bool
    assert mask.device.type == device.type
    mask = mask.cpu()
    assert mask[..., 1].all()  # person 2 is never masked by default
    seg = segments_of(mask, 8)  # last segment shorter when t % 8 != 0
    assert seg.shape[1] == -(-t // 8)
    # each segment masks exactly int(P * 0.6) whole parts
    k = int(len(layout.parts) * 0.6)
    member = torch.as_tensor(layout.part_membership())
    part_masked = (seg.unsqueeze(2) & member).sum(-1)  # (N, S, P) masked joints per part
    fully = part_masked == member.sum(1)
    assert ((part_masked == 0) | fully).all()
    assert (fully.sum(-1) == k).all()
    mean, sizes = expected_masked_fraction(layout, 0.6)
    counts = seg.sum(-1)
    assert set(counts.unique().tolist()) <= sizes
    frac = seg.double().mean().item()
    assert abs(frac - mean) < 0.02
    # independent across segments and samples: segments are not all equal
    assert not (seg == seg[:, :1]).all()
    assert not (seg == seg[:1]).all()


def test_ntu25_expectation():
    mean, sizes = expected_masked_fraction(NTU25, 0.6)
    # parts of 5, 6, 6, 4, 4 joints, 3 of 5 masked: 13..17 of 25 joints, 60 % on average (§4.4)
    assert mean == pytest.approx(0.6) and sizes == set(range(13, 18))


def test_segment_draws_are_independent():
    # two consecutive segments: P(same part set) = 1 / C(5, 3) = 0.1 for ntu25
    mask = body_part_segment_mask(4000, 16, NTU25, 1, torch.Generator().manual_seed(1))
    seg = segments_of(mask, 8)
    same = (seg[:, 0] == seg[:, 1]).all(-1).double().mean().item()
    assert abs(same - 0.1) < 0.02


def test_shared_mask_is_identical_across_batch(layout):
    mask = body_part_segment_mask(6, 64, layout, 2, torch.Generator().manual_seed(3), shared=True)
    assert (mask == mask[:1]).all()
    assert not mask.all()


def test_options(layout):
    g = torch.Generator().manual_seed(4)
    both = body_part_segment_mask(5, 24, layout, 2, g, mask_persons=None, dtype=torch.float32)
    assert both.dtype == torch.float32 and set(both.unique().tolist()) == {0.0, 1.0}
    assert (both[..., 0] == both[..., 1]).all()  # same parts for every masked person
    same_seed = body_part_segment_mask(5, 24, layout, 2, torch.Generator().manual_seed(4))
    assert torch.equal(same_seed[..., 0], both[..., 0].bool())
    none = body_part_segment_mask(5, 24, layout, 2, g, ratio=0.0)
    assert none.all()
    full = body_part_segment_mask(5, 24, layout, 2, g, ratio=1.0)
    assert not full[..., 0][:, :, :, sorted({j for p in layout.part_joints for j in p})].any()


def test_bad_arguments_raise():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="mask_persons"):
        body_part_segment_mask(2, 8, NTU25, 1, g, mask_persons=(1,))
    with pytest.raises(ConfigError, match="ratio"):
        body_part_segment_mask(2, 8, NTU25, 1, g, ratio=1.5)
    with pytest.raises(ConfigError, match="segment_frames"):
        body_part_segment_mask(2, 8, NTU25, 1, g, segment_frames=0)
