"""The detection task's official options: random-stride training windows labelled at their centre,
train-mode BatchNorm on a copy of the encoder, and ``metric=pkummd``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pcm3.config import from_dict
from pcm3.data.store import open_untrimmed
from pcm3.errors import ConfigError
from pcm3.tasks.base import raw_encoder
from pcm3.tasks.detection import DetectionConfig, run_detection
from pcm3.tasks.detection_features import official_window_indices
from pcm3.tasks.detection_training import (
    clamped_windows,
    frame_targets,
    official_training_windows,
    training_features,
)

from ..conftest import HANDS8
from .test_detection import CPU, ctx_for, small_path, tiny_encoder, toy_path  # noqa: F401 (fixtures)


def official_start(t: int, length: int, size: int) -> int:
    """The official loader's window start for frame ``t``, written with its branches."""
    if t < size // 2:
        return 0
    if t > length - size // 2:
        return length - size
    return t - size // 2


def test_clamped_windows_by_hand():
    start, sources = clamped_windows(np.array([0, 5, 9, 1]), np.array([10, 10, 10, 3]), 4, 2)
    assert start.tolist() == [0, 3, 6, 0]
    assert sources.tolist() == [[0, 2], [3, 5], [6, 8], [0, 2]]  # the 3-frame recording repeats frame 2
    same = clamped_windows(np.arange(100), np.full(100, 100), 64, 4)[1]
    np.testing.assert_array_equal(same, official_window_indices(np.arange(100), 100))


def test_random_strides_follow_the_official_loader(toy_path):  # noqa: F811
    store = open_untrimmed(toy_path).split("xsub/train")
    frames = [np.arange(int(t)) for t in store.lengths]
    cfg = DetectionConfig(train_window_strides=[3, 4, 5])
    rows, targets = official_training_windows(store, frames, cfg, seed=0)
    assert rows.shape == (int(store.lengths.sum()), 16)
    np.testing.assert_array_equal(official_training_windows(store, frames, cfg, seed=0)[0], rows)
    assert not np.array_equal(official_training_windows(store, frames, cfg, seed=1)[0], rows)
    seen, k, clamped_and_relabelled = set(), 0, 0
    for i, wanted in enumerate(frames):
        length, first = int(store.lengths[i]), int(store.offsets[store.indices[i]])
        labels = frame_targets(store, i)
        for t in wanted:
            local = rows[k] - first
            d = int(local[1] - local[0])
            start = official_start(int(t), length, 16 * d)
            assert d in (3, 4, 5) and local.tolist() == list(range(start, start + 16 * d, d))
            assert targets[k] == labels[start + 8 * d]  # label[(start + end) // 2]
            clamped_and_relabelled += int(labels[start + 8 * d] != labels[t])
            seen.add(d)
            k += 1
    assert seen == {3, 4, 5} and clamped_and_relabelled > 0


def test_fixed_windows_keep_the_frame_label(toy_path):  # noqa: F811
    store = open_untrimmed(toy_path).split("xsub/train")
    frames = [np.arange(0, int(t), 5) for t in store.lengths]
    rows, targets = official_training_windows(store, frames, DetectionConfig(batchnorm="train"), seed=0)
    first = store.offsets[store.indices]
    expected = np.concatenate([first[i] + official_window_indices(f, int(store.lengths[i]))
                               for i, f in enumerate(frames)])
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_array_equal(targets, np.concatenate([frame_targets(store, i)[f]
                                                           for i, f in enumerate(frames)]))


def test_train_mode_batchnorm_equals_one_train_mode_call(small_path):  # noqa: F811
    store = open_untrimmed(small_path)
    loaded = tiny_encoder()
    frames = [np.arange(0, int(t), 9) for t in store.lengths]
    encoder = copy.deepcopy(loaded.encoder)
    cfg = DetectionConfig(batchnorm="train", batchnorm_batch=100_000)  # one batch: shuffling is moot
    feats, targets = training_features(encoder, store, "motion", cfg, frames, 0, CPU)
    windows = []
    for i, f in enumerate(frames):
        x = torch.from_numpy(store.sequence(i).copy())
        windows.append(x[:, torch.from_numpy(official_window_indices(f, x.shape[1]))].permute(1, 0, 2, 3, 4))
    from pcm3.modalities import to_stream

    reference = copy.deepcopy(loaded.encoder).train()
    with torch.no_grad():
        expected = reference.forward_dense(to_stream(torch.cat(windows), "motion", HANDS8))[:, -1]
        frozen = loaded.encoder.forward_dense(to_stream(torch.cat(windows), "motion", HANDS8))[:, -1]
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(feats, frozen, atol=1e-3)  # batch statistics, not the stored ones
    norm, reference_norm = encoder.backbone.input_norm, reference.backbone.input_norm
    torch.testing.assert_close(norm.running_mean, reference_norm.running_mean)
    assert not torch.equal(norm.running_mean, loaded.encoder.backbone.input_norm.running_mean)
    assert not encoder.training and len(targets) == len(feats)


def test_small_batches_shuffle_across_recordings_and_frozen_mode_keeps_statistics(small_path):  # noqa: F811
    store = open_untrimmed(small_path)
    loaded = tiny_encoder()
    frames = [np.arange(0, int(t), 4) for t in store.lengths]
    before = loaded.encoder.backbone.input_norm.running_mean.clone()
    one = training_features(copy.deepcopy(loaded.encoder), store, "joint",
                            DetectionConfig(batchnorm="train", batchnorm_batch=8), frames, 0, CPU)[0]
    two = training_features(copy.deepcopy(loaded.encoder), store, "joint",
                            DetectionConfig(batchnorm="train", batchnorm_batch=8), frames, 1, CPU)[0]
    assert not torch.allclose(one, two)  # another order, other batches, other statistics
    frozen = DetectionConfig(train_window_strides=[4])
    training_features(loaded.encoder, store, "joint", frozen, frames, 0, CPU)
    assert torch.equal(loaded.encoder.backbone.input_norm.running_mean, before)


def test_official_options_and_pkummd_metric_end_to_end(toy_path):  # noqa: F811
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    cfg = DetectionConfig(metric="pkummd", train_window_strides=[3, 4, 5], batchnorm="train")
    out = run_detection(ctx_for(raw, toy_path), cfg)
    assert set(out.metrics) == {"map_action@0.1", "map_action@0.3", "map_action@0.5", "map_video@0.1",
                                "map_video@0.3", "map_video@0.5", "2dap", "frame_accuracy"}
    assert out.metrics["map_action@0.5"] > 90.0 and out.metrics["map_video@0.5"] > 90.0

    loaded = tiny_encoder()
    before = {k: v.clone() for k, v in loaded.encoder.state_dict().items()}
    small = DetectionConfig(batchnorm="train", max_train_frames=300, epochs=3, milestones=[2])
    first = run_detection(ctx_for(loaded, toy_path, seed=2), small).metrics
    assert first == run_detection(ctx_for(loaded, toy_path, seed=2), small).metrics
    after = loaded.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and not loaded.encoder.training


def test_official_option_errors():
    with pytest.raises(ConfigError, match="need features=window"):
        from_dict(DetectionConfig, {"features": "sequence", "batchnorm": "train"})
    with pytest.raises(ConfigError, match="need features=window"):
        from_dict(DetectionConfig, {"features": "sequence", "train_window_strides": [3, 4, 5]})
    with pytest.raises(ConfigError, match=r"non-empty list of strides >= 1 \(official: \[3, 4, 5\]\)"):
        from_dict(DetectionConfig, {"train_window_strides": []})
    with pytest.raises(ConfigError, match="batchnorm_batch must be >= 1"):
        from_dict(DetectionConfig, {"batchnorm_batch": 0})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(DetectionConfig, {"metric": "anet"})
