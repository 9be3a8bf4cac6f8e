"""Occlusion of test sequences for the occluded-recognition benchmark (``docs/benchmark.md``).

Spatial: per sample a target ratio ``r ~ U[ratio]``; the layout's body parts are taken in a
random order and occluded one after another until the occluded fraction of the V joints
(union of the taken parts) reaches ``r``. At least one part is taken, and never all of them
when the layout has more than one part (the last part is kept visible even if ``r`` would need
it); a one-part layout occludes its single part. Joints in no part are never occluded. The
occluded joints are zero in all frames, coordinates and persons.

Temporal: per sample one contiguous block of ``clamp(round(r * n), 1, n)`` of the ``n`` valid
frames (``r ~ U[ratio]``, round half to even), starting at ``UniformInt[0, n - block]``, is zero
for all joints and persons. Padding frames are left as they are.

Masks are 1 / True = visible; combine them with ``&`` and apply with :func:`apply_occlusion`.
They are a pure function of the generator state: to give every method the same occluded test
set, draw the masks for the whole test set at once from a fixed seed (they are small).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pcm3.augment._common import check_range, uniform, uniform_int
from pcm3.augment.temporal import check_lengths
from pcm3.errors import ConfigError
from pcm3.layouts import Layout


def spatial_occlusion_mask(
    n: int,
    layout: Layout,
    generator: torch.Generator | None,
    ratio: tuple[float, float] = (0.3, 0.7),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Visible joints ``(N, 1, 1, V, 1)`` bool (see the module docstring)."""
    device = torch.device("cpu") if device is None else torch.device(device)
    check_range(ratio, 0.0, 1.0, "spatial occlusion ratio")
    num_parts, v = len(layout.parts), layout.num_joints
    target = uniform((n,), generator, device, ratio[0], ratio[1])
    order = uniform((n, num_parts), generator, device).argsort(dim=1)  # (N, P) part order
    member = torch.as_tensor(layout.part_membership(), device=device)
    ordered = member[order]  # (N, P, V): membership of the k-th taken part
    covered = torch.cummax(ordered.to(torch.uint8), dim=1).values.bool()  # union of first k+1
    fraction = covered.sum(2).double() / v  # (N, P)
    reached = fraction >= target.unsqueeze(1)
    # number of parts to take: first k (1-based) reaching the target, else all; then clip
    all_parts = torch.full((n,), num_parts, dtype=torch.long, device=device)
    first = torch.where(reached.any(1), reached.double().argmax(1) + 1, all_parts)
    taken = first.clamp(min=1, max=max(num_parts - 1, 1))
    occluded = covered.gather(1, (taken - 1).view(n, 1, 1).expand(n, 1, v)).squeeze(1)
    return (~occluded).view(n, 1, 1, v, 1)


def temporal_occlusion_mask(
    lengths: torch.Tensor | Sequence[int],
    t: int,
    generator: torch.Generator | None,
    ratio: tuple[float, float] = (0.3, 0.7),
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Visible frames ``(N, 1, T, 1, 1)`` bool for sequences of ``lengths`` ``(N,)`` valid frames
    in a time axis of ``t`` frames (see the module docstring)."""
    device = torch.device("cpu") if device is None else torch.device(device)
    check_range(ratio, 0.0, 1.0, "temporal occlusion ratio")
    lengths = torch.as_tensor(lengths)
    lengths = check_lengths(lengths, len(lengths), t, device, "temporal_occlusion_mask")
    n = len(lengths)
    r = uniform((n,), generator, device, ratio[0], ratio[1])
    block = torch.round(r * lengths.double()).long()
    block = torch.minimum(block.clamp(min=1), lengths)
    start = uniform_int(torch.zeros_like(block), lengths - block, generator).unsqueeze(1)
    frame = torch.arange(t, device=device).unsqueeze(0)
    hidden = (frame >= start) & (frame < start + block.unsqueeze(1))
    return (~hidden).view(n, 1, t, 1, 1)


def apply_occlusion(x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Zero the occluded entries of ``x`` ``(N, C, T, V, M)``; ``visible`` broadcasts to x."""
    if visible.dtype != torch.bool:
        raise ConfigError(
            f"apply_occlusion: the mask must be bool (True = visible), got {visible.dtype}"
        )
    return torch.where(visible.to(x.device), x, torch.zeros((), dtype=x.dtype, device=x.device))
