"""Input modalities (streams) computed from joint coordinates, as the official code computes them.

- joint: the coordinates themselves;
- motion: ``m[:, :, t] = x[:, :, t + 1] - x[:, :, t]``, the last frame 0;
- bone: ``b[..., v] = x[..., v] - x[..., parent(v)]`` with the parents of the layout, so the
  root's bone is 0.

All work on ``(N, C, T, V, M)`` tensors (any device, any float dtype) and are computed after
augmentation, on the views.
"""

from __future__ import annotations

import torch

from pcm3.errors import ConfigError
from pcm3.layouts import Layout

STREAMS = ("joint", "motion", "bone")


def _check(x: torch.Tensor, where: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{where}: expected a tensor (N, C, T, V, M), got {shape}")


def to_motion(x: torch.Tensor) -> torch.Tensor:
    """Temporal differences ``(N, C, T, V, M)``; the last frame is 0."""
    _check(x, "to_motion")
    motion = torch.zeros_like(x)
    motion[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return motion


def to_bone(x: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Joint minus its parent joint ``(N, C, T, V, M)``; the root's bone is 0."""
    _check(x, "to_bone")
    if x.shape[3] != layout.num_joints:
        raise ConfigError(
            f"to_bone: the data has V={x.shape[3]} joints but layout {layout.name!r} has "
            f"{layout.num_joints}"
        )
    parents = torch.tensor(layout.parents, dtype=torch.long, device=x.device)
    return x - x.index_select(3, parents)


def to_stream(x: torch.Tensor, stream: str, layout: Layout) -> torch.Tensor:
    """The ``stream`` ("joint", "motion" or "bone") of joint coordinates ``x``."""
    if stream == "joint":
        _check(x, "to_stream")
        return x
    if stream == "motion":
        return to_motion(x)
    if stream == "bone":
        return to_bone(x, layout)
    raise ConfigError(f"unknown stream {stream!r}; expected one of {list(STREAMS)}")
