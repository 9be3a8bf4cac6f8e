"""Spatial augmentations of pre-training views (the official feeder's second step).

- shear: per sample a matrix ``S`` with ones on the diagonal and off-diagonals ``U(-m, m)``;
  every coordinate vector becomes ``S @ x`` (same S for all frames, joints and persons);
- joint corruption: per sample ``num_joints`` random joints (default ``round(15/25 * V)``, the
  official 15 of 25) are, with probability 0.5, zeroed (all frames, all persons), otherwise
  multiplied by a random matrix ``R`` with entries ``U(-1, 1)`` as row vectors (``x_row @ R``);
- spatial_augment: per sample joint corruption with probability ``p_corruption``, else shear.

Each transform is split into ``draw_*`` (random parameters, per sample) and ``apply_*``
(deterministic), so the parameters can be inspected or reused. C is any channel count (3 for
xyz, 2 for 2-D data): the matrices are C x C.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pcm3.augment._common import check_joints, check_skeleton, random_subsets, uniform
from pcm3.errors import ConfigError
from pcm3.layouts import Layout


def draw_shear(
    n: int,
    generator: torch.Generator | None,
    magnitude: float = 1.0,
    channels: int = 3,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(N, C, C)`` shear matrices: unit diagonal, off-diagonals ``U(-magnitude, magnitude)``."""
    device = torch.device("cpu") if device is None else torch.device(device)
    s = uniform((n, channels, channels), generator, device, -magnitude, magnitude)
    eye = torch.eye(channels, dtype=torch.bool, device=device)
    return torch.where(eye, torch.ones_like(s), s)


def apply_linear(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Per sample ``x_vec <- A @ x_vec`` for ``x`` ``(N, C, T, V, M)`` and ``A`` ``(N, C, C)``."""
    check_skeleton(x, "apply_linear")
    return torch.einsum("nij,njtvm->nitvm", matrices.to(device=x.device, dtype=x.dtype), x)


def shear(
    x: torch.Tensor, generator: torch.Generator | None, magnitude: float = 1.0
) -> torch.Tensor:
    """Random per-sample shear of ``(N, C, T, V, M)``."""
    n, c, _, _, _ = check_skeleton(x, "shear")
    return apply_linear(x, draw_shear(n, generator, magnitude, c, x.device))


@dataclass(frozen=True)
class JointCorruption:
    """Per-sample joint corruption: ``joints`` ``(N, V)`` bool (the corrupted joints), ``zero``
    ``(N,)`` bool (zero them, else transform them), ``matrix`` ``(N, C, C)`` (``x_row @ R``)."""

    joints: torch.Tensor
    zero: torch.Tensor
    matrix: torch.Tensor


def default_corrupted_joints(num_joints: int) -> int:
    """The official 15 of 25 joints, scaled to the layout: ``round(15 / 25 * V)``."""
    return round(15 * num_joints / 25)


def draw_joint_corruption(
    n: int,
    layout: Layout,
    generator: torch.Generator | None,
    num_joints: int | None = None,
    channels: int = 3,
    device: torch.device | str | None = None,
) -> JointCorruption:
    """Draw the parameters of :func:`joint_corruption` for ``n`` samples."""
    device = torch.device("cpu") if device is None else torch.device(device)
    v = layout.num_joints
    k = default_corrupted_joints(v) if num_joints is None else num_joints
    if not 0 <= k <= v:
        raise ConfigError(f"joint corruption: num_joints must be in 0..{v}, got {k}")
    joints = random_subsets(n, v, torch.full((n,), k, device=device), generator, device)
    zero = uniform((n,), generator, device) < 0.5
    matrix = uniform((n, channels, channels), generator, device, -1.0, 1.0)
    return JointCorruption(joints=joints, zero=zero, matrix=matrix)


def apply_joint_corruption(x: torch.Tensor, params: JointCorruption) -> torch.Tensor:
    """Apply drawn joint corruption to ``x`` ``(N, C, T, V, M)``."""
    n, _, _, v, _ = check_skeleton(x, "apply_joint_corruption")
    check_joints(v, params.joints.shape[1], "apply_joint_corruption")
    matrix = params.matrix.to(device=x.device, dtype=x.dtype)
    transformed = torch.einsum("nij,nitvm->njtvm", matrix, x)  # row vector times R
    zero = params.zero.to(x.device).view(n, 1, 1, 1, 1)
    replacement = torch.where(zero, torch.zeros_like(x), transformed)
    selected = params.joints.to(x.device).view(n, 1, 1, v, 1)
    return torch.where(selected, replacement, x)


def joint_corruption(
    x: torch.Tensor,
    layout: Layout,
    generator: torch.Generator | None,
    num_joints: int | None = None,
) -> torch.Tensor:
    """Random per-sample joint corruption of ``(N, C, T, V, M)`` (see the module docstring)."""
    n, c, _, v, _ = check_skeleton(x, "joint_corruption")
    check_joints(v, layout.num_joints, f"joint_corruption (layout {layout.name!r})")
    return apply_joint_corruption(
        x, draw_joint_corruption(n, layout, generator, num_joints, c, x.device)
    )


@dataclass(frozen=True)
class SpatialAugment:
    """Per sample either joint corruption (``use_corruption`` ``(N,)`` bool) or shear."""

    use_corruption: torch.Tensor
    shear: torch.Tensor
    corruption: JointCorruption


def draw_spatial_augment(
    n: int,
    layout: Layout,
    generator: torch.Generator | None,
    p_corruption: float = 0.5,
    channels: int = 3,
    device: torch.device | str | None = None,
    magnitude: float = 1.0,
    num_joints: int | None = None,
) -> SpatialAugment:
    """Draw :func:`spatial_augment` parameters; ``p_corruption <= 0`` means always shear."""
    device = torch.device("cpu") if device is None else torch.device(device)
    use_corruption = uniform((n,), generator, device) < p_corruption
    return SpatialAugment(
        use_corruption=use_corruption,
        shear=draw_shear(n, generator, magnitude, channels, device),
        corruption=draw_joint_corruption(n, layout, generator, num_joints, channels, device),
    )


def apply_spatial_augment(x: torch.Tensor, params: SpatialAugment) -> torch.Tensor:
    """Apply drawn spatial augmentation to ``x`` ``(N, C, T, V, M)``."""
    n = check_skeleton(x, "apply_spatial_augment")[0]
    choose = params.use_corruption.to(x.device).view(n, 1, 1, 1, 1)
    return torch.where(
        choose, apply_joint_corruption(x, params.corruption), apply_linear(x, params.shear)
    )


def spatial_augment(
    x: torch.Tensor,
    layout: Layout,
    generator: torch.Generator | None,
    p_corruption: float = 0.5,
    magnitude: float = 1.0,
) -> torch.Tensor:
    """Per sample joint corruption with probability ``p_corruption``, else shear with
    off-diagonals ``U(-magnitude, magnitude)`` (official: query and key views p = 0.5,
    magnitude 1; the masked-prediction source view p = -1, i.e. always shear)."""
    n, c, _, v, _ = check_skeleton(x, "spatial_augment")
    check_joints(v, layout.num_joints, f"spatial_augment (layout {layout.name!r})")
    return apply_spatial_augment(
        x, draw_spatial_augment(n, layout, generator, p_corruption, c, x.device, magnitude)
    )
