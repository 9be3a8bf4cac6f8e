"""Linear evaluation: a frozen encoder (eval mode, BatchNorm statistics untouched) and a
linear head trained on its features (CMD's linear evaluation; head optimisation in
:mod:`pcm3.tasks.probe`).

Two protocols, named by ``augment`` in the config (recorded with every result):

- ``augment: false`` (default, fast): features of the deterministic evaluation view (centre
  crop 0.95 resized to the encoder's view length) are computed once per split; the head trains
  on these cached features.
- ``augment: true`` (CMD's protocol): every epoch each training clip is encoded again from a
  fresh random crop with scale ``U(crop_scale)`` (at least ``view_frames`` frames), resized;
  slow, since the frozen encoder runs over the training set every epoch.

The test split is always the centre-crop view, and the final-epoch head is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, register_task
from pcm3.tasks.features import (
    FrozenFeatureConfig,
    cached_features,
    labelled_splits,
    random_crop_features,
)
from pcm3.tasks.probe import ProbeConfig, predict_scores, topk_accuracy, train_linear_head


@dataclass
class LinearConfig(ProbeConfig, FrozenFeatureConfig):
    """Linear evaluation; optimisation fields from :class:`ProbeConfig` (CMD defaults)."""

    augment: bool = False  # True = CMD protocol (random crop every epoch, slow)
    crop_scale: tuple[float, float] = (0.5, 1.0)  # augment only

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ConfigError(f"crop_scale must be (a, b) with 0 < a <= b <= 1, got {self.crop_scale}")


@register_task("linear", LinearConfig, "frozen encoder + linear head on its features (top-1, top-5)")
def run(ctx: TaskContext, cfg: LinearConfig) -> dict[str, float]:
    store, train, test, rows, y_test = labelled_splits(ctx, cfg, "linear")
    loaded = ctx.encoder
    if cfg.augment:
        generator = torch.Generator().manual_seed(ctx.seed + 1)  # crops; the head uses ctx.seed
        module = loaded.encoder.to(ctx.device)

        def features(epoch: int) -> np.ndarray:
            every = random_crop_features(module, train, ctx.device, generator, loaded.view_frames,
                                         loaded.stream, cfg.crop_scale, cfg.feature_batch_size)
            return every[rows]
    else:
        features = cached_features(loaded, train, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)[rows]
    head = train_linear_head(features, train.labels[rows], store.num_classes, cfg, ctx.seed, ctx.device)
    test_features = cached_features(loaded, test, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)
    scores = predict_scores(head, test_features)
    return {"top1": topk_accuracy(scores, y_test, 1), "top5": topk_accuracy(scores, y_test, 5)}
