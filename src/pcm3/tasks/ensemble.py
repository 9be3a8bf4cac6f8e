"""Multi-stream ensemble: score-level fusion of the linear heads of several encoders
(the authors' practice in HiCLR ``ensemble_ntu_cs.py``).

Each encoder (typically joint, motion and bone, each pre-trained separately; every
:class:`~pcm3.tasks.encoders.LoadedEncoder` carries its ``stream``) gets its own linear head,
trained exactly as in the ``linear`` task (same seed, so ``top1_<stream>`` equals what
``linear`` reports for that encoder). The fused score of a test clip is
``sum_i weights[i] * scores_i`` and its argmax the prediction.

The task context holds one encoder (the first stream); the others are files listed in
``encoders``. ``weights`` default to equal. The official code tried α = (0.5, 0.5, 0.5) and
(0.6, 0.6, 0.4) for (joint, bone, motion) and kept the better on the *test* set; here weights
are fixed in the config before the run (e.g. ``weights=[0.6,0.4,0.6]`` for encoders in the
order joint, motion, bone) and never chosen on the test set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, check_compatible, register_task
from pcm3.tasks.encoders import LoadedEncoder, load_encoder
from pcm3.tasks.features import (
    FrozenFeatureConfig,
    cached_features,
    evaluation_labels,
    labelled_rows,
    open_trimmed,
    split_pair,
)
from pcm3.tasks.probe import ProbeConfig, predict_scores, topk_accuracy, train_linear_head


@dataclass
class EnsembleConfig(ProbeConfig, FrozenFeatureConfig):
    """Fusion of the context's encoder with ``encoders`` (paths); head fields as in ``linear``."""

    encoders: list[str] = field(default_factory=list)
    weights: list[float] | None = None  # one per encoder (context's first); None = equal
    scores: Literal["softmax", "logits"] = "softmax"  # what is fused

    def validate(self) -> None:
        super().validate()
        if self.weights is not None and len(self.weights) != len(self.encoders) + 1:
            raise ConfigError(f"weights needs {len(self.encoders) + 1} values (the task's encoder, then "
                              f"each of encoders), got {len(self.weights)}")
        if self.weights is not None and not any(self.weights):
            raise ConfigError("weights are all zero")


def stream_keys(encoders: list[LoadedEncoder]) -> list[str]:
    """``top1_<stream>`` per encoder; a stream used twice gets its position: ``top1_joint_2``."""
    counts = Counter(e.stream for e in encoders)
    return [f"top1_{e.stream}" if counts[e.stream] == 1 else f"top1_{e.stream}_{i}"
            for i, e in enumerate(encoders)]


def fuse_streams(encoders: list[LoadedEncoder], store_path: str | Path, cfg: EnsembleConfig, seed: int,
                 device: torch.device) -> dict[str, float]:
    """Per-encoder and fused top-1 (percent) on the test split of the store at ``store_path``."""
    store = open_trimmed(store_path, "ensemble")
    for loaded in encoders:
        check_compatible(loaded, store)
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    rows = labelled_rows(train)
    y_test = evaluation_labels(test)
    weights = cfg.weights if cfg.weights is not None else [1.0] * len(encoders)
    if len(weights) != len(encoders):
        raise ConfigError(f"weights has {len(weights)} values for {len(encoders)} encoders")
    metrics: dict[str, float] = {}
    fused = torch.zeros(len(test), store.num_classes, dtype=torch.float64)
    for key, weight, loaded in zip(stream_keys(encoders), weights, encoders, strict=True):
        features = cached_features(loaded, train, device, cfg.feature_batch_size, cfg.crop_ratio)[rows]
        head = train_linear_head(features, train.labels[rows], store.num_classes, cfg, seed, device)
        test_features = cached_features(loaded, test, device, cfg.feature_batch_size, cfg.crop_ratio)
        scores = predict_scores(head, test_features, softmax=cfg.scores == "softmax")
        metrics[key] = topk_accuracy(scores, y_test, 1)
        fused += weight * scores.double()
    metrics["top1_fused"] = topk_accuracy(fused, y_test, 1)
    return metrics


@register_task("ensemble", EnsembleConfig,
               "score-level fusion of several streams' linear heads (joint / motion / bone)")
def run(ctx: TaskContext, cfg: EnsembleConfig) -> dict[str, float]:
    if not cfg.encoders:
        raise ConfigError("the ensemble task needs the other streams' encoders, e.g. "
                          "encoders=[motion.safetensors,bone.safetensors]")
    encoders = [ctx.encoder, *(load_encoder(path) for path in cfg.encoders)]
    return fuse_streams(encoders, ctx.store_path, cfg, ctx.seed, ctx.device)
