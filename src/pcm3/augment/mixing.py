"""Inter-sample skeleton mixing (official ``MoCo.ske_swap``, from SkeleMixCLR).

Each sample i is mixed with one partner ``partner[i] = (i + r) mod N``, ``r ~ UniformInt[1, N-1]``.
The roll ``r`` is always shared by the batch, also in per-sample mode: it keeps ``partner`` a
permutation, so every sample is used as a partner exactly once, and the mixed key
``normalize((1 - lam) k + lam k[partner])`` (:func:`mixed_key`) needs ``k[partner]``. (The official
``torch.randint(1, N - 1)`` draws r in 1..N-2 and fails for N = 2; we draw 1..N-1; N = 1 mixes the
sample with itself.)

Per sample (``shared=False``) or once for the batch (``shared=True``, official) a mode is drawn:

- CUTMIX (u > 0.5): a region = chosen body parts x a time segment of whole units
  (``unit_frames`` frames each) is replaced by the partner's same region;
- PASTE (0.25 < u <= 0.5): the partner's first ``min(2 rt, T)`` frames are resampled to ``rt``
  frames (nearest, as ``F.interpolate``'s default) and pasted into the region;
- MIXUP (u <= 0.25): ``(1 - lam) x + lam x[partner]`` over the whole sequence, ``lam ~ U(0, 1)``.

Region: ``Cs ~ UniformInt[spatial_parts]`` parts without replacement, ``Ct ~
UniformInt[temporal_units]`` units, start unit ``t0 ~ UniformInt[0, T // unit_frames - Ct]``;
bounds ``(low, high)`` with ``high`` beyond the P parts (resp. ``T // unit_frames`` units)
become ``(max(1, min(low, P - 1)), P)``, so a small layout or a short clip still varies the
region (a 2-part layout draws 1..2 parts; the official 5 parts / 16 units are unchanged); frames
``[t0 * unit_frames, t0 * unit_frames + rt)`` with ``rt = Ct * unit_frames``. For CUTMIX and PASTE,
``lam = rt * |J| / (T * V)`` (= the official ``Ct * |J| / (T / 4 * V)``): the mixed fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pcm3.augment._common import (
    check_joints,
    check_skeleton,
    expand_shared,
    random_subsets,
    uniform,
    uniform_int,
)
from pcm3.errors import ConfigError
from pcm3.layouts import Layout

CUTMIX, PASTE, MIXUP = 0, 1, 2


@dataclass(frozen=True)
class MixParams:
    """Mixing parameters, all ``(N,)`` except ``parts`` ``(N, P)`` bool (the chosen body parts).

    ``mode`` in {CUTMIX, PASTE, MIXUP}; ``start_unit`` / ``num_units`` locate the time segment in
    units of ``unit_frames``; ``mixup_lam`` is the MIXUP weight (unused by the other modes).
    """

    partner: torch.Tensor
    mode: torch.Tensor
    parts: torch.Tensor
    start_unit: torch.Tensor
    num_units: torch.Tensor
    mixup_lam: torch.Tensor


def _clipped(bounds: tuple[int, int], top: int, what: str) -> tuple[int, int]:
    low, high = bounds
    if not 1 <= low <= high:
        raise ConfigError(
            f"mixing: {what} must be a pair (low, high) with 1 <= low <= high, got {bounds}"
        )
    if high <= top:
        return low, high
    return max(1, min(low, top - 1)), top


def draw_mix(
    n: int,
    t: int,
    layout: Layout,
    generator: torch.Generator | None,
    spatial_parts: tuple[int, int] = (2, 3),
    temporal_units: tuple[int, int] = (7, 11),
    unit_frames: int = 4,
    mode_probs: tuple[float, float, float] = (0.5, 0.25, 0.25),
    shared: bool = False,
    device: torch.device | str | None = None,
) -> MixParams:
    """Draw :class:`MixParams` for ``n`` sequences of ``t`` frames (see the module docstring).

    ``mode_probs`` = probabilities of (CUTMIX, PASTE, MIXUP).
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    if unit_frames < 1 or t < unit_frames:
        raise ConfigError(
            f"mixing: need 1 <= unit_frames <= T, got unit_frames={unit_frames}, T={t}"
        )
    if len(mode_probs) != 3 or min(mode_probs) < 0 or abs(sum(mode_probs) - 1.0) > 1e-6:
        raise ConfigError(
            f"mixing: mode_probs must be 3 non-negative numbers summing to 1, got {mode_probs}"
        )
    num_parts = len(layout.parts)
    units = t // unit_frames
    parts_low, parts_high = _clipped(spatial_parts, num_parts, "spatial_parts")
    units_low, units_high = _clipped(temporal_units, units, "temporal_units")

    roll = uniform_int(torch.ones(1, dtype=torch.long), torch.full((1,), max(n - 1, 1)), generator)
    roll = roll.to(device) if n > 1 else torch.zeros(1, dtype=torch.long, device=device)
    partner = (torch.arange(n, device=device) + roll) % max(n, 1)

    m = 1 if shared else n
    u = uniform((m,), generator, device)
    _, p_paste, p_mixup = mode_probs
    mode = torch.full((m,), CUTMIX, dtype=torch.long, device=device)
    mode = torch.where(u <= p_mixup + p_paste, torch.full_like(mode, PASTE), mode)
    mode = torch.where(u <= p_mixup, torch.full_like(mode, MIXUP), mode)

    def ints(low: int | torch.Tensor, high: int | torch.Tensor) -> torch.Tensor:
        low_t = torch.as_tensor(low, device=device).expand(m).long()
        return uniform_int(low_t, torch.as_tensor(high, device=device).expand(m).long(), generator)

    count = ints(parts_low, parts_high)
    parts = random_subsets(m, num_parts, count, generator, device)
    num_units = ints(units_low, units_high)
    start_unit = ints(0, units - num_units)
    mixup_lam = uniform((m,), generator, device)
    if shared:
        mode, parts, num_units, start_unit, mixup_lam = (
            expand_shared(p, n) for p in (mode, parts, num_units, start_unit, mixup_lam)
        )
    return MixParams(partner, mode, parts, start_unit, num_units, mixup_lam)


def _paste_source_frames(
    offset: torch.Tensor, region_frames: torch.Tensor, t: int
) -> torch.Tensor:
    """Nearest-neighbour source frame (as ``F.interpolate(mode='nearest')``, in float32) when
    ``min(2 rt, T)`` frames are resampled to ``rt``; ``offset`` = frame index inside the region."""
    in_len = torch.clamp(2 * region_frames, max=t)
    scale = in_len.float() / region_frames.float()
    src = torch.floor(offset.clamp(min=0).float() * scale).long()
    return torch.minimum(src, in_len - 1)


def apply_mix(
    x: torch.Tensor, layout: Layout, params: MixParams, unit_frames: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix ``x`` ``(N, C, T, V, M)`` with ``params``; returns ``(x_mixed, lam (N,) float32)``."""
    n, c, t, v, m = check_skeleton(x, "apply_mix")
    check_joints(v, layout.num_joints, f"apply_mix (layout {layout.name!r})")
    dev = x.device
    member = torch.as_tensor(layout.part_membership(), device=dev)
    joints = (params.parts.to(dev).float() @ member.float()) > 0  # (N, V)
    region_frames = (params.num_units * unit_frames).to(dev).unsqueeze(1)  # (N, 1)
    first = (params.start_unit * unit_frames).to(dev).unsqueeze(1)
    frame = torch.arange(t, device=dev).unsqueeze(0)  # (1, T)
    offset = frame - first
    in_time = (offset >= 0) & (offset < region_frames)  # (N, T)
    mode = params.mode.to(dev).unsqueeze(1)

    paste = _paste_source_frames(offset, region_frames, t)
    source = torch.where((mode == PASTE) & in_time, paste, frame.expand(n, t))
    partner_x = x.index_select(0, params.partner.to(dev))
    taken = partner_x.gather(2, source.view(n, 1, t, 1, 1).expand(n, c, t, v, m))

    region = (in_time.unsqueeze(2) & joints.unsqueeze(1)).to(torch.float64)  # (N, T, V)
    mixup = (mode == MIXUP).unsqueeze(2)
    lam_mixup = params.mixup_lam.to(device=dev, dtype=torch.float64).view(n, 1, 1)
    weight = torch.where(mixup, lam_mixup.expand(n, t, v), region).view(n, 1, t, v, 1)
    mixed = (1.0 - weight).to(x.dtype) * x + weight.to(x.dtype) * taken

    region_lam = (region_frames.squeeze(1) * joints.sum(1)).double() / (t * v)
    lam = torch.where(mode.squeeze(1) == MIXUP, lam_mixup.view(n), region_lam)
    return mixed, lam.float()


def mix_batch(
    x: torch.Tensor,
    layout: Layout,
    generator: torch.Generator | None,
    spatial_parts: tuple[int, int] = (2, 3),
    temporal_units: tuple[int, int] = (7, 11),
    unit_frames: int = 4,
    shared: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix every sample of ``x`` ``(N, C, T, V, M)`` with a partner.

    Returns ``(x_mixed (N, C, T, V, M), partner (N,) long, lam (N,) float32)``.
    """
    n, _, t, v, _ = check_skeleton(x, "mix_batch")
    check_joints(v, layout.num_joints, f"mix_batch (layout {layout.name!r})")
    params = draw_mix(
        n, t, layout, generator, spatial_parts, temporal_units, unit_frames, shared=shared,
        device=x.device,
    )
    mixed, lam = apply_mix(x, layout, params, unit_frames)
    return mixed, params.partner, lam


def mixed_key(k: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Key of a mixed view: ``normalize((1 - lam) k + lam k[partner])``; ``k`` ``(N, D)``."""
    lam = lam.to(device=k.device, dtype=k.dtype).unsqueeze(1)
    return F.normalize((1 - lam) * k + lam * k.index_select(0, partner.to(k.device)), dim=1)
