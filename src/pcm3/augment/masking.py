"""Body-part, segment-wise mask of the masked-prediction view (official ``Jointmask3``).

The T frames are cut into segments of ``segment_frames`` frames (the last one shorter when T is
not a multiple). In every segment ``int(P * ratio)`` of the layout's P body parts are drawn
without replacement, independently per segment, and all their joints are masked in all frames
of the segment and all coordinates. Only the persons in ``mask_persons`` are masked (official:
person 0 only; ``None`` = every person). ``shared=True`` draws one mask for the whole batch
(official); by default every sample gets its own. A layout with one part and ratio < 1 masks
nothing (``int(1 * 0.6) = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pcm3.augment._common import expand_shared, random_subsets
from pcm3.errors import ConfigError
from pcm3.layouts import Layout


def body_part_segment_mask(
    n: int,
    t: int,
    layout: Layout,
    num_persons: int,
    generator: torch.Generator | None,
    ratio: float = 0.6,
    segment_frames: int = 8,
    mask_persons: Sequence[int] | None = (0,),
    shared: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.bool,
) -> torch.Tensor:
    """Mask ``(N, 1, T, V, M)``, 1 / True = visible, 0 / False = masked.

    Apply with ``x * mask`` (masked coordinates become 0, as officially). ``device`` defaults to
    the CPU; draws are made on the generator's device.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"body_part_segment_mask: ratio must be in [0, 1], got {ratio}")
    if segment_frames < 1 or t < 1 or n < 0 or num_persons < 1:
        raise ConfigError(
            f"body_part_segment_mask: need n >= 0, t >= 1, num_persons >= 1, segment_frames >= 1; "
            f"got n={n}, t={t}, num_persons={num_persons}, segment_frames={segment_frames}"
        )
    persons = range(num_persons) if mask_persons is None else list(mask_persons)
    bad = [p for p in persons if not 0 <= p < num_persons]
    if bad:
        raise ConfigError(
            f"body_part_segment_mask: mask_persons {bad} outside 0..{num_persons - 1}"
        )
    num_parts = len(layout.parts)
    masked_parts = int(num_parts * ratio)
    segments = -(-t // segment_frames)
    rows = segments if shared else n * segments
    chosen = random_subsets(
        rows, num_parts, torch.full((rows,), masked_parts, device=device), generator, device
    )
    member = torch.as_tensor(layout.part_membership(), device=device).float()
    masked = (chosen.float() @ member > 0).view(-1, segments, layout.num_joints)  # (N|1, S, V)
    if shared:
        masked = expand_shared(masked, n)
    frame_segment = torch.arange(t, device=device) // segment_frames
    masked = masked.index_select(1, frame_segment)  # (N, T, V)
    person = torch.zeros(num_persons, dtype=torch.bool, device=device)
    person[list(persons)] = True
    visible = ~(masked.unsqueeze(-1) & person)  # (N, T, V, M)
    return visible.unsqueeze(1).to(dtype)
