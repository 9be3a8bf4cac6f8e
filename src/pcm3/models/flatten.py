"""Frame flattening in the official PCM3 order, and its inverse.

``(N, C, T, V, M) -> (N, T, V*C*M)`` with feature index ``v*C*M + c*M + m`` (joint-major, then
coordinate, then person): the order every official code path uses for the GRU input and the
decoder output, kept so that official checkpoints load unchanged.
"""

from __future__ import annotations

from torch import Tensor

from pcm3.errors import ConfigError


def flatten_frames(x: Tensor) -> Tensor:
    """``(N, C, T, V, M) -> (N, T, V*C*M)``, feature index ``v*C*M + c*M + m``."""
    if x.dim() != 5:
        raise ConfigError(f"expected a skeleton tensor (N, C, T, V, M), got shape {tuple(x.shape)}")
    n, c, t, v, m = x.shape
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, v * c * m)


def unflatten_frames(y: Tensor, num_channels: int, num_joints: int, num_persons: int) -> Tensor:
    """Inverse of :func:`flatten_frames`: ``(N, T, V*C*M) -> (N, C, T, V, M)``."""
    c, v, m = num_channels, num_joints, num_persons
    if y.dim() != 3 or y.shape[-1] != v * c * m:
        raise ConfigError(
            f"expected per-frame features (N, T, V*C*M = {v}*{c}*{m} = {v * c * m}), "
            f"got shape {tuple(y.shape)}"
        )
    n, t, _ = y.shape
    return y.reshape(n, t, v, c, m).permute(0, 3, 1, 2, 4)
