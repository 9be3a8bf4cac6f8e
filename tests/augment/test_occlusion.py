import pytest
import torch

from pcm3.augment.occlusion import (
    apply_occlusion,
    spatial_occlusion_mask,
    temporal_occlusion_mask,
)
from pcm3.errors import ConfigError
from pcm3.layouts import layout_from_dict


def test_spatial_mask_takes_whole_parts_until_the_target(layout, device):
    n = 500
    mask = spatial_occlusion_mask(n, layout, torch.Generator().manual_seed(0), device=device)
    assert mask.shape == (n, 1, 1, layout.num_joints, 1) and mask.dtype == torch.bool
    occluded = ~mask.view(n, -1).cpu()
    member = torch.as_tensor(layout.part_membership())
    per_part = (occluded.unsqueeze(1) & member).sum(-1)  # (N, P)
    whole = per_part == member.sum(1)
    assert ((per_part == 0) | whole).all()  # parts are occluded whole or not at all
    taken = whole.sum(1)
    assert (taken >= 1).all() and (taken <= len(layout.parts) - 1).all()
    frac = occluded.double().mean(1)
    # stopping rule: before the last taken part the fraction was below the target (< 0.7), and
    # the largest taken part is at least as large as the last one
    largest = torch.where(whole, member.sum(1), torch.zeros_like(per_part)).max(1).values
    assert ((frac - largest / layout.num_joints) < 0.7).all()
    assert frac.mean() > 0.3 and frac.mean() < 0.75
    assert len({tuple(row.tolist()) for row in occluded}) > 1


def test_spatial_mask_matches_reference_rule(layout):
    """Re-implement the rule with a loop over parts, using the same random draws."""
    from pcm3.augment._common import uniform

    n, ratio = 64, (0.3, 0.7)
    mask = spatial_occlusion_mask(n, layout, torch.Generator().manual_seed(5), ratio)
    g = torch.Generator().manual_seed(5)
    target = uniform((n,), g, "cpu", *ratio)
    order = uniform((n, len(layout.parts)), g, "cpu").argsort(1)
    for i in range(n):
        hidden: set[int] = set()
        for step, part in enumerate(order[i].tolist()):
            if step == max(len(layout.parts) - 1, 1):
                break
            hidden |= set(layout.part_joints[part])
            if len(hidden) / layout.num_joints >= target[i]:
                break
        assert set(torch.nonzero(~mask[i].flatten()).flatten().tolist()) == hidden


def test_one_part_layout_occludes_its_part():
    one = layout_from_dict(
        {"name": "one", "joints": ["a", "b", "c"], "parents": [0, 0, 1], "parts": {"p": [0, 1]}}
    )
    mask = spatial_occlusion_mask(5, one, torch.Generator().manual_seed(0))
    assert (mask.view(5, 3) == torch.tensor([False, False, True])).all()


def test_temporal_mask_one_block_of_valid_frames(device):
    lengths = torch.tensor([100, 50, 7, 300, 1, 2] * 50)
    t = 300
    mask = temporal_occlusion_mask(lengths, t, torch.Generator().manual_seed(0), device=device)
    assert mask.shape == (len(lengths), 1, t, 1, 1) and mask.device.type == device.type
    hidden = ~mask.view(len(lengths), t).cpu()
    block = hidden.sum(1)
    for i, n in enumerate(lengths.tolist()):
        frames = torch.nonzero(hidden[i]).flatten()
        assert len(frames) >= 1 and frames.max() < n  # only valid frames
        assert (frames.diff() == 1).all()  # one contiguous block
        assert round(0.3 * n) <= block[i] <= max(round(0.7 * n), 1)
    ratio = block.double() / lengths
    long = lengths >= 50
    assert abs(ratio[long].mean().item() - 0.5) < 0.02
    starts = hidden.double().argmax(1)
    full = lengths == 300
    assert starts[full].min() < 20 and (starts + block)[full].max() > 280  # start is random


def test_same_seed_same_masks(layout):
    a = spatial_occlusion_mask(20, layout, torch.Generator().manual_seed(11))
    b = spatial_occlusion_mask(20, layout, torch.Generator().manual_seed(11))
    c = spatial_occlusion_mask(20, layout, torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    lengths = [64, 80, 33]
    ta = temporal_occlusion_mask(lengths, 80, torch.Generator().manual_seed(11))
    tb = temporal_occlusion_mask(lengths, 80, torch.Generator().manual_seed(11))
    assert torch.equal(ta, tb)


def test_apply_occlusion(layout):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 20, layout.num_joints, 2, generator=g)
    spatial = spatial_occlusion_mask(4, layout, g)
    temporal = temporal_occlusion_mask([20, 20, 10, 5], 20, g)
    out = apply_occlusion(x, spatial & temporal)
    visible = (spatial & temporal).expand_as(x)
    assert (out[~visible] == 0).all()
    assert torch.equal(out[visible], x[visible])
    with pytest.raises(ConfigError, match="bool"):
        apply_occlusion(x, spatial.float())


def test_bad_arguments_raise(layout):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="ratio"):
        spatial_occlusion_mask(2, layout, g, ratio=(0.7, 0.3))
    with pytest.raises(ConfigError, match="length 81"):
        temporal_occlusion_mask([10, 81], 80, g)
