"""Temporal action detection on untrimmed sequences: frozen per-frame features + a linear
per-frame classifier with a background class (the protocol of Simple-Skeleton-Detection, which
PCM3 and CMD report).

Protocol, and where it differs from the official linear protocol on purpose:

- the encoder is strictly frozen, in eval mode (the official code leaves it in train mode, so
  its input BatchNorm statistics adapt to the detection data; here nothing about the encoder
  changes, as in every other frozen-encoder task; ``batchnorm="train"`` does it the official
  way on a copy of the encoder, :mod:`pcm3.tasks.detection_training`);
- per-frame features (:mod:`pcm3.tasks.detection_features`): ``features="window"`` (default: the
  official 64-frame / stride-4 window per frame, last-step output of a causal encoder or the
  window's sequence feature of any other, batched over many windows) or ``"sequence"`` (one
  causal pass over each whole sequence, optionally strided, in bounded-context chunks (required
  for a non-causal encoder) or with look-ahead: 3-9x faster than batched windows; its mAP was
  higher on the built-in data but lower on PKU-MMD, see ``benchmarks/README.md``), the same view
  for training and test frames (the official training windows use a random stride 3-5 and centre; ours are the
  deterministic inference windows, so features are computed once and cached;
  ``train_window_strides=[3, 4, 5]`` draws the official strides, once per training frame);
- classifier ``Linear(D, K + 1)`` (output 0 = background, action ``k`` -> ``k + 1``), init
  N(0, 0.01²), bias 0, trained on the training split's frames (every frame, or a seeded uniform
  subsample of ``max_train_frames``), features centred on the training frames' mean and divided by
  their overall RMS (``standardize="global"``: one learning rate then suits GRU features and raw
  coordinates alike; ``"per_dim"`` z-scores each dimension, which blows up dimensions that are
  almost constant in a few training recordings, e.g. an absent second person; ``"none"``), SGD
  lr 0.01, momentum 0.9, Nesterov, wd 0, 60 epochs x0.1 at 40 (official values), but each epoch
  is one pass over the cached frames in mini-batches of ``batch_size`` frames (official: 16
  windows per video per epoch, batch 64); the final-epoch classifier is used;
- test: softmax per frame, mean-filter smoothing (k = 10), proposals at activity >= 0.4, per-class
  VOC AP at each tIoU, averaged over the classes in the test ground truth, in percent
  (``metric="map"``, :mod:`pcm3.tasks.detection_metrics`: ``map@t``), or PKU-MMD's own metric
  (``metric="pkummd"``, :mod:`pcm3.tasks.detection_pkummd`: ``map_action@t``, ``map_video@t``,
  ``2dap``); ``frame_accuracy`` = per-frame argmax of the unsmoothed probabilities over K + 1
  outputs vs the frame labels (background included), in percent.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from pcm3.data.store import UntrimmedStore, open_untrimmed
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.tasks.base import TaskContext, check_compatible, register_task
from pcm3.tasks.detection_classifier import FrameClassifier, train_frame_classifier
from pcm3.tasks.detection_features import FrameFeatureOptions, check_sequence_mode, iter_frame_features
from pcm3.tasks.detection_metrics import (
    Segment,
    detection_map,
    propose_segments,
    smooth_probabilities,
)
from pcm3.tasks.detection_pkummd import pkummd_metrics
from pcm3.tasks.detection_training import frame_targets, training_features, training_frames
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.features import split_pair


@dataclass
class DetectionConfig:
    """Detection protocol settings (defaults: Simple-Skeleton-Detection's; see the module docstring)."""

    features: Literal["sequence", "window"] = "window"  # sequence loses mAP on PKU-MMD: benchmarks/README.md
    window_frames: int = 64  # window mode: raw frames per window, centred on the frame
    window_stride: int = 4  # window mode: keep every 4th frame (64 / 4 = 16 encoder steps)
    sequence_stride: int = 1  # sequence mode: encode the s interleaved sub-sequences
    sequence_lookahead: int = 0  # sequence mode: read frame t's feature at frame t + this
    sequence_context: int = 0  # sequence mode: past frames each feature sees at least (0: all)
    smoothing: int = 10  # half window of the temporal mean filter (0 = none)
    activity_threshold: float = 0.4
    tious: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    metric: Literal["map", "pkummd"] = "map"  # map: per-class VOC AP; pkummd: the dataset's evaluate.py
    matching: Literal["best_unmatched", "voc"] = "best_unmatched"  # metric=map only
    batchnorm: Literal["frozen", "train"] = "frozen"  # train: official (window mode; detection_training)
    batchnorm_batch: int = 64  # batchnorm=train: training windows per encoder call (official batch)
    train_window_strides: list[int] | None = None  # official [3, 4, 5]: random stride per training window
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    epochs: int = 60
    milestones: list[int] = field(default_factory=lambda: [40])
    lr_decay: float = 0.1
    batch_size: int = 1024  # frames per SGD step
    max_train_frames: int | None = 100_000  # seeded uniform subsample above this (None: all)
    class_balanced: bool = False  # weight the loss by inverse class frequency
    standardize: Literal["global", "per_dim", "none"] = "global"  # feature scaling (module docstring)
    unseen_test_classes: Literal["error", "ignore"] = "error"  # test classes without training data
    train_split: str | None = None
    test_split: str | None = None
    max_batch_frames: int = 16384  # sequence mode: padded frames per encoder call
    window_batch: int = 512  # window mode: windows per encoder call
    save_head: str | None = None  # write the trained frame classifier here (tasks/detection_head.py)

    def validate(self) -> None:
        for key in ("window_frames", "window_stride", "sequence_stride", "epochs", "batch_size",
                    "max_batch_frames", "window_batch", "batchnorm_batch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"detection: {key} must be >= 1, got {getattr(self, key)}")
        for key in ("sequence_lookahead", "sequence_context"):
            if getattr(self, key) < 0:
                raise ConfigError(f"detection: {key} must be >= 0, got {getattr(self, key)}")
        if self.smoothing < 0 or not 0.0 <= self.activity_threshold <= 1.0:
            raise ConfigError("detection: smoothing must be >= 0 and activity_threshold in [0, 1]")
        if not self.tious or any(not 0.0 < t <= 1.0 for t in self.tious):
            raise ConfigError(f"detection: tious must be values in (0, 1], got {self.tious}")
        if self.max_train_frames is not None and self.max_train_frames < 1:
            raise ConfigError(f"detection: max_train_frames must be >= 1 or null, "
                              f"got {self.max_train_frames}")
        strides = self.train_window_strides
        if strides is not None and (not strides or min(strides) < 1):
            raise ConfigError(f"detection: train_window_strides must be a non-empty list of strides >= 1 "
                              f"(official: [3, 4, 5]) or null, got {strides}")
        if self.save_head is not None and self.batchnorm == "train":
            raise ConfigError("detection: save_head needs batchnorm=frozen (with batchnorm=train the "
                              "classifier reads features of an encoder whose BatchNorm statistics were "
                              "adapted, which no file holds)")
        if self.features != "window" and (strides is not None or self.batchnorm == "train"):
            raise ConfigError("detection: train_window_strides and batchnorm=train are options of the "
                              f"official windows and need features=window, got features={self.features}")

    def feature_options(self) -> FrameFeatureOptions:
        return FrameFeatureOptions(self.features, self.window_frames, self.window_stride,
                                   self.sequence_stride, self.sequence_lookahead, self.sequence_context,
                                   self.max_batch_frames, self.window_batch)


@dataclass
class DetectionOutput:
    """Metrics plus what a timeline plot needs. ``predictions`` / ``ground_truth`` are keyed by
    the index of the sequence in the test split; ground truth rows are ``(label, start, end)``."""

    metrics: dict[str, float]
    predictions: dict[int, list[Segment]]
    ground_truth: dict[int, np.ndarray]
    sequence_ids: list[str]
    lengths: np.ndarray
    class_names: list[str]
    test_split: str
    ignored_classes: list[int] = field(default_factory=list)
    classifier: FrameClassifier | None = None  # the trained frame classifier

    def timeline(self) -> list[dict[str, Any]]:
        """Per test sequence ``{"name", "length", "truth": [(label, start, end)],
        "pred": [(label, start, end, score)]}``."""
        return [{"name": self.sequence_ids[i], "length": int(self.lengths[i]),
                 "truth": [tuple(int(v) for v in row) for row in self.ground_truth[i]],
                 "pred": [(s.label, s.start, s.end, s.score) for s in self.predictions[i]]}
                for i in range(len(self.sequence_ids))]

    def prediction_rows(self) -> list[dict[str, Any]]:
        """One row per predicted segment (the ``detection_predictions.json`` format)."""
        return [{"sequence": i, "id": self.sequence_ids[i], "split": self.test_split,
                 "length": int(self.lengths[i]), "label": s.label, "class_name": self.class_names[s.label],
                 "start": s.start, "end": s.end, "score": s.score}
                for i in range(len(self.sequence_ids)) for s in self.predictions[i]]


def _interval_classes(store: UntrimmedStore) -> set[int]:
    return {int(c) for i in range(len(store)) for c in store.intervals(i)[:, 0]}


def detect(loaded: LoadedEncoder, train: UntrimmedStore, test: UntrimmedStore, cfg: DetectionConfig,
           seed: int, device: torch.device) -> DetectionOutput:
    """Train the per-frame classifier on ``train`` and detect on ``test`` (splits of one store)."""
    check_compatible(loaded, test)
    if np.intersect1d(train.indices, test.indices).size:
        raise Pcm3Error(f"splits {train.split_name!r} and {test.split_name!r} of {test.path} share "
                        "sequences: detection never evaluates on its training data")
    train_classes, test_classes = _interval_classes(train), _interval_classes(test)
    if not train_classes:
        raise Pcm3Error(f"store {train.path} has no action intervals in split {train.split_name!r}: "
                        "detection needs labelled intervals to train on")
    if not test_classes:
        raise Pcm3Error(f"store {test.path} has no action intervals in split {test.split_name!r}: "
                        "nothing to detect")
    unseen = sorted(test_classes - train_classes)
    if unseen and cfg.unseen_test_classes == "error":
        names = ", ".join(f"{c} {test.class_names[c]!r}" for c in unseen)
        raise Pcm3Error(f"classes present in test split {test.split_name!r} but absent from training "
                        f"split {train.split_name!r}: {names} (set unseen_test_classes=ignore to leave "
                        "them out of the evaluation)")
    encoder, opts = loaded.encoder, cfg.feature_options()
    if cfg.batchnorm == "train":
        encoder = copy.deepcopy(encoder)  # its BatchNorm statistics adapt; the loaded encoder stays frozen
    was_training = encoder.training
    try:
        chosen = training_frames(train.lengths, cfg.max_train_frames, seed)
        feats, targets = training_features(encoder, train, loaded.stream, cfg, chosen, seed, device)
        classifier = train_frame_classifier(feats, targets.to(device), train.num_classes + 1, cfg, seed)
        del feats
        probs = _test_probabilities(encoder.eval(), classifier, test, loaded.stream, opts, device)
    finally:
        encoder.train(was_training)
    out = _evaluate(probs, test, cfg, unseen)
    out.classifier = classifier.cpu()
    return out


@torch.no_grad()
def _test_probabilities(encoder: nn.Module, classifier: FrameClassifier, test: UntrimmedStore, stream: str,
                        opts: FrameFeatureOptions, device: torch.device) -> list[np.ndarray]:
    """Per test sequence ``(T_i, K + 1)`` float32 softmax probabilities."""
    classifier.eval()
    probs = [np.zeros((int(t), classifier.num_outputs), dtype=np.float32) for t in test.lengths]
    for i, idx, f in iter_frame_features(encoder, test, stream, opts, device):
        probs[i][idx] = torch.softmax(classifier(f), dim=1).cpu().numpy()
    return probs


def _evaluate(probs: list[np.ndarray], test: UntrimmedStore, cfg: DetectionConfig,
              ignored: list[int]) -> DetectionOutput:
    predictions, truth, hits, counted = {}, {}, 0, 0
    for i, p in enumerate(probs):
        gt = test.intervals(i)
        targets = frame_targets(test, i)
        keep = ~np.isin(targets - 1, ignored)  # frames of ignored classes are not scored
        gt = gt[~np.isin(gt[:, 0], ignored)]
        hits += int((p.argmax(axis=1) == targets)[keep].sum())
        counted += int(keep.sum())
        smoothed = smooth_probabilities(p, cfg.smoothing)
        predictions[i] = propose_segments(smoothed, cfg.activity_threshold)
        truth[i] = gt
    if cfg.metric == "pkummd":
        result = pkummd_metrics(predictions, truth, test.num_classes, cfg.tious, ignored)
        metrics = {f"map_{kind}@{t:g}": 100.0 * result[f"mAP_{kind}@{t:g}"]
                   for kind in ("action", "video") for t in cfg.tious}
        metrics["2dap"] = 100.0 * result["2DAP"]
    else:
        result = detection_map(predictions, truth, test.num_classes, cfg.tious, cfg.matching)
        metrics = {f"map@{t:g}": 100.0 * result[f"mAP@{t:g}"] for t in cfg.tious}
    metrics["frame_accuracy"] = 100.0 * hits / max(counted, 1)
    return DetectionOutput(metrics, predictions, truth, [str(s) for s in test.ids], test.lengths.copy(),
                           list(test.class_names), test.split_name, list(ignored))


def run_detection(ctx: TaskContext, cfg: DetectionConfig) -> DetectionOutput:
    """The detection task on ``ctx.store_path`` (an untrimmed store, or a store with ``untrimmed/``),
    on the splits :func:`~pcm3.tasks.features.split_pair` picks (the same defaults as every task).

    Writes ``detection_predictions.json`` (one row per predicted segment) into ``ctx.out_dir``
    when it is set, and the trained frame classifier to ``cfg.save_head`` when that is set
    (:mod:`pcm3.tasks.detection_head`).
    """
    check_sequence_mode(ctx.encoder.encoder, cfg.feature_options())  # before any work
    train, test = split_pair(open_untrimmed(ctx.store_path), cfg.train_split, cfg.test_split)
    out = detect(ctx.encoder, train, test, cfg, ctx.seed, ctx.device)
    if ctx.out_dir is not None:
        write_predictions(Path(ctx.out_dir) / "detection_predictions.json", out)
    if cfg.save_head is not None and out.classifier is not None:
        from pcm3.tasks.detection_head import save_detection_head

        save_detection_head(cfg.save_head, out.classifier, list(test.class_names), cfg.feature_options(),
                            cfg.smoothing, cfg.activity_threshold, ctx.encoder.spec, ctx.encoder.source)
    return out


def write_predictions(path: Path, out: DetectionOutput) -> Path:
    """``out.prediction_rows()`` as JSON at ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out.prediction_rows(), indent=1))
    tmp.replace(path)
    return path


@register_task("detection", DetectionConfig,
               "temporal action detection: frozen per-frame features, linear frame classifier, mAP@tIoU")
def run(ctx: TaskContext, cfg: DetectionConfig) -> dict[str, float]:
    return run_detection(ctx, cfg).metrics


