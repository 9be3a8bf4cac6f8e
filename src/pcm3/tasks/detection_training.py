"""The training set of the detection classifier: which frames, their features, their targets.

Default (the protocol of :mod:`pcm3.tasks.detection`): the chosen training frames
(:func:`training_frames`) get exactly the features test frames get
(:func:`~pcm3.tasks.detection_features.iter_frame_features`, the frozen encoder in eval mode),
and each frame's own label is its target.

Two options reproduce the PCM3 authors' linear detection protocol (Simple-Skeleton-Detection);
both need ``features="window"``:

- ``train_window_strides`` (official: ``[3, 4, 5]``): each training frame ``t`` gets a window
  whose stride ``d`` is drawn uniformly from the list: ``steps * d`` raw frames centred on ``t``,
  clamped to the recording, every ``d``-th frame kept, where ``steps`` is the inference window's
  step count (``ceil(window_frames / window_stride)``: 16). Its target is the label of the
  window's centre frame, as in the official loader (``label[(start + end) // 2]``); that differs
  from ``t``'s own label only where the window is clamped at either end of a recording. The
  strides are drawn once per frame (seeded) and the features cached; the official loader draws
  new windows every epoch.
- ``batchnorm="train"``: the training windows go through the encoder in train mode, in a seeded
  random order across recordings, ``batchnorm_batch`` windows per call (official batch: 64). Each
  window is then normalised with its batch's statistics, and the BatchNorm running statistics
  adapt to the detection data; test features use the adapted statistics in eval mode (the
  official model is in train mode while the classifier trains and in eval mode at test). The
  caller passes a copy of the encoder (:func:`pcm3.tasks.detection.detect` does), so the
  loaded encoder never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from pcm3.data.store import UntrimmedStore
from pcm3.modalities import to_stream
from pcm3.tasks.detection_features import _encode_windows, iter_frame_features
from pcm3.tasks.detection_metrics import frame_labels_from_intervals

if TYPE_CHECKING:
    from pcm3.tasks.detection import DetectionConfig


def frame_targets(store: UntrimmedStore, i: int) -> np.ndarray:
    """``(T_i,)`` classifier targets of recording ``i``: 0 = background, action ``k`` -> ``k + 1``."""
    return frame_labels_from_intervals(store.intervals(i), int(store.lengths[i]), background=-1) + 1


def training_frames(lengths: np.ndarray, limit: int | None, seed: int) -> list[np.ndarray]:
    """Per sequence, the sorted frames to train on: all, or a seeded uniform subsample of ``limit``."""
    total = int(lengths.sum())
    if limit is None or total <= limit:
        return [np.arange(int(t), dtype=np.int64) for t in lengths]
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=limit, replace=False))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    per_sequence = np.split(chosen, np.searchsorted(chosen, offsets[1:-1]))
    return [frames - start for frames, start in zip(per_sequence, offsets[:-1], strict=True)]


def clamped_windows(frames: np.ndarray, lengths: np.ndarray, window: int,
                    stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(start (n,), sources (n, ceil(window / stride)))`` of the windows of ``frames`` ``(n,)`` in
    recordings of ``lengths`` ``(n,)``: ``[s, s + window)`` with ``s = clip(t - window // 2, 0,
    length - window)``, every ``stride``-th frame; a recording shorter than the window repeats its
    last frame."""
    frames, lengths = np.asarray(frames, np.int64), np.asarray(lengths, np.int64)
    start = np.clip(frames - window // 2, 0, np.maximum(lengths - window, 0))
    steps = np.arange(0, window, stride, dtype=np.int64)
    return start, np.minimum(start[:, None] + steps[None, :], lengths[:, None] - 1)


def _inference_features(encoder: nn.Module, store: UntrimmedStore, stream: str, cfg: DetectionConfig,
                        frames: Sequence[np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
    total, filled = sum(len(f) for f in frames), 0
    feats, targets = None, torch.empty(total, dtype=torch.long)
    for i, idx, f in iter_frame_features(encoder, store, stream, cfg.feature_options(), device, frames):
        feats = f.new_empty((total, f.shape[1])) if feats is None else feats  # (N, D), filled once
        feats[filled : filled + len(idx)] = f
        targets[filled : filled + len(idx)] = torch.from_numpy(frame_targets(store, i)[idx])
        filled += len(idx)
    assert feats is not None and filled == total
    return feats, targets


def official_training_windows(store: UntrimmedStore, frames: Sequence[np.ndarray], cfg: DetectionConfig,
                              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows (N, steps), targets (N,))``: for every wanted frame (in order), the rows of
    ``store.frames`` its training window reads and its classifier target (module docstring)."""
    seq = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    t = np.concatenate([np.asarray(f, np.int64) for f in frames]) if len(seq) else np.zeros(0, np.int64)
    lengths = store.lengths[seq]
    steps = len(range(0, cfg.window_frames, cfg.window_stride))
    strides = cfg.train_window_strides
    drawn = (np.random.default_rng((seed, 1)).choice(np.asarray(strides), size=len(t)) if strides
             else np.full(len(t), cfg.window_stride))
    sources = np.empty((len(t), steps), dtype=np.int64)
    label_frame = t.copy()
    for d in np.unique(drawn):
        rows = drawn == d
        window = steps * int(d) if strides else cfg.window_frames
        start, sources[rows] = clamped_windows(t[rows], lengths[rows], window, int(d))
        if strides:
            label_frame[rows] = np.minimum(start + window // 2, lengths[rows] - 1)
    targets = np.empty(len(t), dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(f) for f in frames])])
    for i in range(len(frames)):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            targets[lo:hi] = frame_targets(store, i)[label_frame[lo:hi]]
    first_row = store.offsets[store.indices[seq]]
    return first_row[:, None] + sources, targets


def _official_features(encoder: nn.Module, store: UntrimmedStore, stream: str, cfg: DetectionConfig,
                       frames: Sequence[np.ndarray], seed: int,
                       device: torch.device) -> tuple[Tensor, Tensor]:
    rows, targets = official_training_windows(store, frames, cfg, seed)
    n, steps = rows.shape
    train_mode = cfg.batchnorm == "train"
    order = np.random.default_rng((seed, 2)).permutation(n) if train_mode else np.arange(n)
    batch = cfg.batchnorm_batch if train_mode else cfg.window_batch
    encoder.train(train_mode)
    feats = None
    for lo in range(0, n, batch):
        chosen = order[lo : lo + batch]
        unique, inverse = np.unique(rows[chosen].ravel(), return_inverse=True)
        x = torch.from_numpy(np.asarray(store.frames[unique]))[torch.from_numpy(inverse)]  # (B*steps, C,V,M)
        x = x.reshape(len(chosen), steps, *x.shape[1:]).permute(0, 2, 1, 3, 4).to(device)
        f = _encode_windows(encoder, to_stream(x, stream, store.layout)).float()  # (B, D)
        feats = f.new_empty((n, f.shape[1])) if feats is None else feats
        feats[torch.from_numpy(chosen).to(device)] = f
    encoder.eval()
    assert feats is not None
    return feats, torch.from_numpy(targets)


@torch.no_grad()
def training_features(encoder: nn.Module, store: UntrimmedStore, stream: str, cfg: DetectionConfig,
                      frames: Sequence[np.ndarray], seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(features (N, D) on device, targets (N,) int64 on the CPU)`` of the wanted training
    frames ``frames[i]`` of every recording ``i``, in order. The encoder is in eval mode on
    return (with ``batchnorm="train"`` its BatchNorm statistics have adapted: pass a copy)."""
    if cfg.batchnorm == "frozen" and cfg.train_window_strides is None:
        encoder.eval()
        return _inference_features(encoder, store, stream, cfg, frames, device)
    return _official_features(encoder, store, stream, cfg, frames, seed, device)
