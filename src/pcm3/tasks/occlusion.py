"""Occluded-skeleton recognition (no official code; the protocol is in ``docs/benchmark.md``).

A linear head (:mod:`pcm3.tasks.probe`) is trained on clean training features and scored on
three versions of the test split:

- ``clean``: the evaluation view (centre crop 0.95 resized to the encoder's view length);
- ``spatial``: the same view with random body parts of the layout zeroed in every frame
  (:func:`pcm3.augment.occlusion.spatial_occlusion_mask`, occluded fraction ~ U[ratio]);
- ``temporal``: the same view with one random contiguous block of frames zeroed
  (:func:`pcm3.augment.occlusion.temporal_occlusion_mask`, block fraction ~ U[ratio]).

Where occlusion happens: on the evaluation view's joint coordinates, after the centre
crop-resize and before the stream's modality. So the occluded fraction is a fraction of the
frames the encoder sees, and a motion or bone encoder sees the modality of the occluded
joints (e.g. a jump in motion at the edges of a zeroed block) as it would from a sensor that
lost them.

The masks depend only on ``mask_seed`` (not on the run's seed), the test split, the view
length and the layout: every encoder and every run sees the identical occluded test set. They
are drawn once per test split; with an output folder they are also saved under
``<out>/occlusion_masks/`` (keyed by store fingerprint, split, seed, view length and ratio,
never inside the data store) and read back from there on later runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pcm3.augment.occlusion import apply_occlusion, spatial_occlusion_mask, temporal_occlusion_mask
from pcm3.data.store import SkeletonStore
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.tasks.base import TaskContext, register_task
from pcm3.tasks.features import (
    FrozenFeatureConfig,
    cached_features,
    extract_features,
    labelled_splits,
)
from pcm3.tasks.probe import ProbeConfig, predict_scores, topk_accuracy, train_linear_head


@dataclass
class OcclusionConfig(ProbeConfig, FrozenFeatureConfig):
    """Occluded recognition; the head's optimisation fields come from :class:`ProbeConfig`."""

    ratio: tuple[float, float] = (0.3, 0.7)
    mask_seed: int = 0  # fixes the occluded test set (independent of the run's seed)

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.ratio[0] <= self.ratio[1] <= 1.0:
            raise ConfigError(f"ratio must be (a, b) with 0 <= a <= b <= 1, got {self.ratio}")


@dataclass
class OcclusionMasks:
    """Visible joints ``spatial (N, V)`` and visible view frames ``temporal (N, T)``, bool."""

    spatial: torch.Tensor
    temporal: torch.Tensor

    def spatial_transform(self, view: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Zero the occluded joints of ``view`` ``(B, C, T, V, M)`` (rows of the test split)."""
        return apply_occlusion(view, self.spatial[rows][:, None, None, :, None])

    def temporal_transform(self, view: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Zero the occluded frames of ``view`` ``(B, C, T, V, M)``."""
        return apply_occlusion(view, self.temporal[rows][:, None, :, None, None])


def draw_occlusion_masks(n: int, layout: Layout, frames: int, ratio: tuple[float, float],
                         mask_seed: int) -> OcclusionMasks:
    """The masks of ``n`` test views of ``frames`` frames, a pure function of the arguments."""
    generator = torch.Generator().manual_seed(mask_seed)
    spatial = spatial_occlusion_mask(n, layout, generator, ratio)
    temporal = temporal_occlusion_mask(torch.full((n,), frames), frames, generator, ratio)
    return OcclusionMasks(spatial.view(n, layout.num_joints), temporal.view(n, frames))


def occlusion_masks(test: SkeletonStore, frames: int, ratio: tuple[float, float], mask_seed: int,
                    cache_dir: Path | None = None) -> OcclusionMasks:
    """The masks of the test split ``test`` (read from / saved to ``cache_dir`` when given)."""
    if cache_dir is None:
        return draw_occlusion_masks(len(test), test.layout, frames, ratio, mask_seed)
    split = test.split_name.replace("/", "_")
    name = f"{test.fingerprint}_{split}_seed{mask_seed}_T{frames}_r{ratio[0]}-{ratio[1]}.npz"
    path = Path(cache_dir) / name
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            if saved["ids"].tolist() == test.ids.tolist() and saved["temporal"].shape[1] == frames:
                return OcclusionMasks(torch.from_numpy(saved["spatial"]), torch.from_numpy(saved["temporal"]))
    masks = draw_occlusion_masks(len(test), test.layout, frames, ratio, mask_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, spatial=masks.spatial.numpy(), temporal=masks.temporal.numpy(), ids=test.ids)
    tmp.replace(path)
    return masks


@register_task("occlusion", OcclusionConfig,
               "linear head from clean clips; top-1 on clean, body-part and frame-block occluded test clips")
def run(ctx: TaskContext, cfg: OcclusionConfig) -> dict[str, float]:
    store, train, test, rows, y_test = labelled_splits(ctx, cfg, "occlusion")
    loaded = ctx.encoder
    features = cached_features(loaded, train, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)[rows]
    head = train_linear_head(features, train.labels[rows], store.num_classes, cfg, ctx.seed, ctx.device)
    cache_dir = None if ctx.out_dir is None else Path(ctx.out_dir) / "occlusion_masks"
    masks = occlusion_masks(test, loaded.view_frames, cfg.ratio, cfg.mask_seed, cache_dir)
    clean = cached_features(loaded, test, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)
    test_features = {"clean": clean}
    for name, transform in (("spatial", masks.spatial_transform), ("temporal", masks.temporal_transform)):
        test_features[name] = extract_features(loaded.encoder, test, ctx.device, loaded.view_frames,
                                               loaded.stream, cfg.feature_batch_size, cfg.crop_ratio,
                                               view_transform=transform)
    return {f"top1_{name}": topk_accuracy(predict_scores(head, value), y_test, 1)
            for name, value in test_features.items()}
