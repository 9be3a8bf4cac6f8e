"""Batched, device-side augmentations of ``(N, C, T, V, M)`` skeleton tensors.

Every transform is a small pure function with an explicit ``torch.Generator`` and per-sample
random parameters (``shared=True`` reproduces the official batch-shared randomness where the
official code shares it: mask and mixing). Random transforms come as ``draw_*`` (parameters)
plus ``apply_*`` (deterministic) so parameters can be inspected, logged or reused. Body parts
and joint counts come from the :class:`pcm3.layouts.Layout` passed in.
"""

from pcm3.augment.masking import body_part_segment_mask
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
from pcm3.augment.occlusion import (
    apply_occlusion,
    spatial_occlusion_mask,
    temporal_occlusion_mask,
)
from pcm3.augment.spatial import (
    JointCorruption,
    SpatialAugment,
    apply_joint_corruption,
    apply_linear,
    apply_spatial_augment,
    draw_joint_corruption,
    draw_shear,
    draw_spatial_augment,
    joint_corruption,
    shear,
    spatial_augment,
)
from pcm3.augment.temporal import (
    TemporalCrop,
    centre_crop,
    centre_crop_resize,
    crop_resize,
    draw_temporal_crop,
    temporal_crop_resize,
)

__all__ = [
    "CUTMIX",
    "MIXUP",
    "PASTE",
    "JointCorruption",
    "MixParams",
    "SpatialAugment",
    "TemporalCrop",
    "apply_joint_corruption",
    "apply_linear",
    "apply_mix",
    "apply_occlusion",
    "apply_spatial_augment",
    "body_part_segment_mask",
    "centre_crop",
    "centre_crop_resize",
    "crop_resize",
    "draw_joint_corruption",
    "draw_mix",
    "draw_shear",
    "draw_spatial_augment",
    "draw_temporal_crop",
    "joint_corruption",
    "mix_batch",
    "mixed_key",
    "shear",
    "spatial_augment",
    "spatial_occlusion_mask",
    "temporal_crop_resize",
    "temporal_occlusion_mask",
]
