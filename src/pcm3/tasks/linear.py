"""Linear evaluation: a frozen encoder (eval mode, BatchNorm statistics untouched) and a
linear head trained on its features (head optimisation in :mod:`pcm3.tasks.probe`).

``protocol`` names a preset (recorded with every result):

- ``default`` (fast): features of the deterministic evaluation view (centre crop 0.95 resized to
  the encoder's view length) are computed once per split and standardised by the training
  features' mean and std; the head trains on these cached features.
- ``cmd``: CMD's linear evaluation (the downstream scripts PCM3 builds on). Every epoch
  each training clip is encoded again from a fresh random crop with scale U(0.5, 1) (at least
  ``view_frames`` frames, or the whole clip; CMD: 64) resized to ``view_frames``; the features
  are raw (not standardised); SGD lr 0.1, momentum 0.9, no Nesterov, weight decay 0, batch 64,
  80 epochs, lr x0.1 at epochs 50 and 70; weights N(0, 0.01²), bias 0; the test view is the
  centre 95 %. CMD scores the head on the test split every 5 epochs and reports the best score:
  here ``top1_best_over_evals``, always next to the final-epoch ``top1``. The preset fixes these
  values and refuses a conflicting one (``protocol=default`` takes any).

``augment``, ``standardize`` and ``best_over_evals`` left unset take the protocol's value.
With ``best_over_evals`` the head is also scored on the test split every ``eval_every`` epochs
and after the last one, and ``top1_best_over_evals`` is the best of these scores: a number
selected on the test split, labelled so by its name wherever it appears. ``top1`` and ``top5``
are always the final-epoch head's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
from pcm3.tasks.probe import LinearHead, ProbeConfig, predict_scores, topk_accuracy, train_linear_head

# what each protocol sets when the config leaves it unset (None)
PROTOCOL_DEFAULTS: dict[str, dict[str, bool]] = {
    "default": {"augment": False, "standardize": True, "best_over_evals": False},
    "cmd": {"augment": True, "standardize": False, "best_over_evals": True},
}
# CMD's linear evaluation (action_classification_cmd.py with its script's lr 0.1 and batch 64;
# feeder crop l_ratio [0.5, 1.0] for training, 0.95 for testing)
CMD_LINEAR: dict[str, Any] = {
    "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 64, "epochs": 80, "milestones": [50, 70],
    "gamma": 0.1, "augment": True, "standardize": False, "crop_scale": (0.5, 1.0), "crop_ratio": 0.95,
}


@dataclass
class LinearConfig(ProbeConfig, FrozenFeatureConfig):
    """Linear evaluation; optimisation fields from :class:`ProbeConfig` (CMD defaults)."""

    protocol: Literal["default", "cmd"] = "default"
    augment: bool | None = None  # random crop every epoch (slow); None: the protocol's
    standardize: bool | None = None  # None: the protocol's
    crop_scale: tuple[float, float] = (0.5, 1.0)  # augment only
    best_over_evals: bool | None = None  # also report the best test score of the evaluations
    eval_every: int = 5  # epochs between those evaluations

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOL_DEFAULTS:
            raise ConfigError(f"linear: protocol must be one of {list(PROTOCOL_DEFAULTS)}, "
                              f"got {self.protocol!r}")
        for key, value in PROTOCOL_DEFAULTS[self.protocol].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.protocol == "cmd":
            conflicts = [f"{k}={_plain(getattr(self, k))!r} (CMD: {_plain(v)!r})"
                         for k, v in CMD_LINEAR.items() if _plain(getattr(self, k)) != _plain(v)]
            if conflicts:
                raise ConfigError(f"linear: protocol=cmd is CMD's linear evaluation and fixes "
                                  f"{', '.join(conflicts)}; leave them unset, or use protocol=default")

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise ConfigError(f"crop_scale must be (a, b) with 0 < a <= b <= 1, got {self.crop_scale}")
        if self.eval_every < 1:
            raise ConfigError(f"linear: eval_every must be >= 1, got {self.eval_every}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


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
    test_features = cached_features(loaded, test, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)
    evaluations: list[float] = []

    def evaluate(epoch: int, head: LinearHead) -> None:
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            evaluations.append(topk_accuracy(predict_scores(head, test_features), y_test, 1))

    head = train_linear_head(features, train.labels[rows], store.num_classes, cfg, ctx.seed, ctx.device,
                             on_epoch_end=evaluate if cfg.best_over_evals else None)
    scores = predict_scores(head, test_features)
    metrics = {"top1": topk_accuracy(scores, y_test, 1), "top5": topk_accuracy(scores, y_test, 5)}
    if cfg.best_over_evals:
        metrics["top1_best_over_evals"] = max(evaluations)
    return metrics
