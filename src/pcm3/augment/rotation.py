"""Random 3-D rotation of skeleton batches (MAMP's ``random_rot``): per sample, angles
``θx, θy, θz ~ U(-θ, θ)`` and ``x_vec ← Rz(θz) · Ry(θy) · Rx(θx) · x_vec`` on every frame, with

    Rx = [[1, 0, 0], [0, c, s], [0, -s, c]]     Ry = [[c, 0, -s], [0, 1, 0], [s, 0, c]]
    Rz = [[c, s, 0], [-s, c, 0], [0, 0, 1]]
"""

from __future__ import annotations

import torch

from pcm3.augment._common import check_skeleton, uniform
from pcm3.augment.spatial import apply_linear
from pcm3.errors import ConfigError


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """``(N, 3)`` angles (x, y, z; radians) -> ``(N, 3, 3)`` matrices ``Rz · Ry · Rx``."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    rx = matrix([[one, zero, zero], [zero, c[:, 0], s[:, 0]], [zero, -s[:, 0], c[:, 0]]])
    ry = matrix([[c[:, 1], zero, -s[:, 1]], [zero, one, zero], [s[:, 1], zero, c[:, 1]]])
    rz = matrix([[c[:, 2], s[:, 2], zero], [-s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def random_rotation(x: torch.Tensor, generator: torch.Generator | None, max_angle: float = 0.3
                    ) -> torch.Tensor:
    """Rotate each sample of ``(N, 3, T, V, M)`` by random angles in ``(-max_angle, max_angle)``."""
    n, c, _, _, _ = check_skeleton(x, "random_rotation")
    if c != 3:
        raise ConfigError(f"random_rotation: needs 3-D joints (C = 3), got C = {c}; set the rotation to 0")
    angles = uniform((n, 3), generator, x.device, -max_angle, max_angle)
    return apply_linear(x, rotation_matrices(angles))
