import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pcm3.augment.mixing import (
    CUTMIX,
    MIXUP,
    PASTE,
    MixParams,
    apply_mix,
    draw_mix,
    mix_batch,
    mixed_key,
)
from pcm3.errors import ConfigError
from pcm3.layouts import NTU25


def batch(n, t, v, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, v, 2, generator=g).to(device)


def reference_mix(x, layout, params, unit):
    """Official ske_swap, one sample at a time, with the given parameters."""
    n, c, t, v, m = x.shape
    out, lams = x.clone(), []
    for i in range(n):
        p = int(params.partner[i])
        chosen = [k for k in range(len(layout.parts)) if bool(params.parts[i, k])]
        spa_idx = sorted({j for k in chosen for j in layout.part_joints[k]})
        ct = int(params.num_units[i])
        rt, first = ct * unit, int(params.start_unit[i]) * unit
        mode = int(params.mode[i])
        if mode == CUTMIX:
            out[i, :, first : first + rt, spa_idx] = x[p, :, first : first + rt, spa_idx]
        elif mode == PASTE:
            temp = x[p : p + 1, :, : 2 * rt].permute(0, 4, 3, 1, 2).contiguous()
            temp = temp.view(m, v * c, -1)
            temp = F.interpolate(temp, size=rt)  # default mode: nearest
            temp = temp.view(1, m, v, c, rt).permute(0, 3, 4, 2, 1)[0]  # (C, rt, V, M)
            out[i, :, first : first + rt, spa_idx] = temp[:, :, spa_idx]
        else:
            lam = float(params.mixup_lam[i])
            out[i] = x[i] * (1 - lam) + x[p] * lam
        lams.append(
            float(params.mixup_lam[i]) if mode == MIXUP else ct * len(spa_idx) / (t / unit * v)
        )
    return out, torch.tensor(lams)


@pytest.mark.parametrize("t", [64, 30])
def test_per_sample_mix_matches_reference(layout, device, t):
    n = 12
    x = batch(n, t, layout.num_joints, device)
    params = draw_mix(n, t, layout, torch.Generator().manual_seed(2), device=device)
    params = dataclasses.replace(params, mode=torch.arange(n, device=device) % 3)  # all modes
    mixed, lam = apply_mix(x, layout, params)
    ref, ref_lam = reference_mix(x.cpu(), layout, _cpu(params), 4)
    torch.testing.assert_close(mixed.cpu(), ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(lam.cpu(), ref_lam.float())
    assert lam.dtype == torch.float32 and mixed.shape == x.shape


def _cpu(params: MixParams) -> MixParams:
    return MixParams(*(getattr(params, f.name).cpu() for f in dataclasses.fields(params)))


def test_mix_batch_uses_drawn_params(layout, device):
    x = batch(10, 64, layout.num_joints, device)
    mixed, partner, lam = mix_batch(x, layout, torch.Generator().manual_seed(7))
    params = draw_mix(10, 64, layout, torch.Generator().manual_seed(7), device=device)
    ref, ref_lam = apply_mix(x, layout, params)
    torch.testing.assert_close(mixed, ref, rtol=0, atol=0)
    torch.testing.assert_close(lam, ref_lam, rtol=0, atol=0)
    assert torch.equal(partner, params.partner)


def test_partner_is_a_nontrivial_roll():
    rolls = set()
    for seed in range(60):
        params = draw_mix(5, 64, NTU25, torch.Generator().manual_seed(seed))
        roll = int(params.partner[0])
        assert torch.equal(params.partner, (torch.arange(5) + roll) % 5)
        rolls.add(roll)
    assert rolls == {1, 2, 3, 4}


def test_per_sample_and_shared_statistics():
    n, t = 3000, 64
    params = draw_mix(n, t, NTU25, torch.Generator().manual_seed(0))
    freq = torch.bincount(params.mode, minlength=3).double() / n
    assert torch.allclose(freq, torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64), atol=0.04)
    counts = params.parts.sum(1)
    assert set(counts.tolist()) == {2, 3}
    assert set(params.num_units.tolist()) == set(range(7, 12))
    assert (params.start_unit >= 0).all() and (params.start_unit + params.num_units <= 16).all()
    x = torch.randn(n, 3, t, 25, 1)
    _, lam = apply_mix(x, NTU25, params)
    region = lam[params.mode != MIXUP]
    assert region.min() >= 7 * 8 / 400 and region.max() <= 11 * 17 / 400  # 0.14 .. 0.4675
    assert ((lam >= 0) & (lam <= 1)).all()
    assert len(set(params.mode.tolist())) == 3  # per-sample choice of mode

    shared = draw_mix(8, t, NTU25, torch.Generator().manual_seed(0), shared=True)
    for field in ("mode", "parts", "start_unit", "num_units", "mixup_lam"):
        value = getattr(shared, field)
        assert (value == value[:1]).all(), field


def test_cutmix_lambda_is_the_mixed_fraction(layout):
    n, t = 16, 64
    x = batch(n, t, layout.num_joints, "cpu")
    params = draw_mix(n, t, layout, torch.Generator().manual_seed(5))
    params = dataclasses.replace(params, mode=torch.full((n,), CUTMIX))
    mixed, lam = apply_mix(x, layout, params)
    changed = (mixed != x).double().mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(changed, lam.double())


def test_small_layout_and_short_clip_bounds_are_clipped(layout):
    params = draw_mix(2000, 16, layout, torch.Generator().manual_seed(1))
    parts = len(layout.parts)
    expected_parts = {2, 3} if parts >= 3 else {1, 2}
    assert set(params.parts.sum(1).tolist()) == expected_parts
    assert set(params.num_units.tolist()) == {3, 4}  # 16 frames = 4 units: (7, 11) -> (3, 4)


def test_sample_mixed_with_itself_is_unchanged(layout):
    x = batch(1, 32, layout.num_joints, "cpu")
    params = draw_mix(1, 32, layout, torch.Generator().manual_seed(3))
    assert params.partner.tolist() == [0]
    for mode in (CUTMIX, MIXUP):
        mixed, _ = apply_mix(x, layout, dataclasses.replace(params, mode=torch.tensor([mode])))
        torch.testing.assert_close(mixed, x, rtol=0, atol=1e-6)
    still = x[:, :, :1].expand_as(x).contiguous()  # a time-constant sequence: paste = identity
    mixed, _ = apply_mix(still, layout, dataclasses.replace(params, mode=torch.tensor([PASTE])))
    torch.testing.assert_close(mixed, still, rtol=0, atol=0)


def test_mixed_key():
    g = torch.Generator().manual_seed(0)
    k = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    partner = (torch.arange(6) + 2) % 6
    lam = torch.rand(6, generator=g)
    out = mixed_key(k, partner, lam)
    for i in range(6):
        ref = (1 - lam[i]) * k[i] + lam[i] * k[int(partner[i])]
        torch.testing.assert_close(out[i], ref / ref.norm())
    torch.testing.assert_close(mixed_key(k, partner, torch.zeros(6)), k)


def test_bad_arguments_raise():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="unit_frames"):
        draw_mix(4, 3, NTU25, g)
    with pytest.raises(ConfigError, match="spatial_parts"):
        draw_mix(4, 64, NTU25, g, spatial_parts=(3, 2))
    with pytest.raises(ConfigError, match="mode_probs"):
        draw_mix(4, 64, NTU25, g, mode_probs=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="layout"):
        mix_batch(torch.zeros(4, 3, 64, 20, 1), NTU25, g)


def test_paste_resampling_rounds_like_interpolate():
    # T = 60, rt = 44 / 52: float32 nearest-neighbour indices differ from exact arithmetic at
    # a few frames; the paste must follow F.interpolate exactly.
    n, t = 4, 60
    x = batch(n, t, NTU25.num_joints, "cpu")
    params = draw_mix(n, t, NTU25, torch.Generator().manual_seed(0))
    params = dataclasses.replace(
        params,
        mode=torch.full((n,), PASTE),
        num_units=torch.tensor([11, 13, 11, 13]),
        start_unit=torch.tensor([0, 1, 4, 2]),
    )
    mixed, _ = apply_mix(x, NTU25, params)
    ref, _ = reference_mix(x, NTU25, params, 4)
    torch.testing.assert_close(mixed, ref, rtol=0, atol=0)
