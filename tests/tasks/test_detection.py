"""The detection task: batched per-frame features against one-at-a-time references, a perfectly
separable toy that must reach 100 % mAP, determinism, a frozen encoder, and the error cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pcm3.config import from_dict, load_config
from pcm3.data import Converted, write_store
from pcm3.data.records import Sequence
from pcm3.data.store import open_untrimmed
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import NTU25
from pcm3.modalities import to_stream
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.detection import (
    DetectionConfig,
    detect,
    run_detection,
    train_frame_classifier,
    training_frames,
)
from pcm3.tasks.detection_features import (
    FrameFeatureOptions,
    chunk_of_step,
    frame_features,
    official_window_indices,
    sequence_chunks,
)
from pcm3.tasks.encoders import random_encoder

from ..conftest import HANDS8, TINY_MODEL

CPU = torch.device("cpu")
CLASSES = ["left", "right", "both"]


def toy_sequence(name: str, rng: np.random.Generator, labels: list[int], signal: float = 1.0) -> Sequence:
    """Background (small noise) with actions of 40-50 frames separated by 30-45 idle frames; during
    action ``k`` joint ``k`` of person 0 is raised by ``signal`` in y (a linearly separable cue)."""
    gaps = rng.integers(30, 46, size=len(labels) + 1)
    spans = rng.integers(40, 51, size=len(labels))
    total = int(gaps.sum() + spans.sum())
    x = rng.normal(scale=0.02, size=(3, total, 8, 2)).astype(np.float32)
    rows, t = [], int(gaps[0])
    for label, span, gap in zip(labels, spans, gaps[1:], strict=True):
        x[1, t : t + span, label, 0] += signal
        rows.append([label, t, t + int(span)])
        t += int(span + gap)
    return Sequence(name, x, np.array(rows, dtype=np.int64).reshape(-1, 3))


def write_toy_store(path: Path, train_labels: list[list[int]], test_labels: list[list[int]],
                    seed: int = 0, signal: float = 1.0) -> Path:
    rng = np.random.default_rng(seed)
    seqs = [toy_sequence(f"tr{i}", rng, lab, signal) for i, lab in enumerate(train_labels)]
    seqs += [toy_sequence(f"te{i}", rng, lab, signal) for i, lab in enumerate(test_labels)]
    ids = [s.id for s in seqs]
    converted = Converted(layout=HANDS8, class_names=CLASSES, sequences=seqs,
                          sequence_splits={"xsub/train": ids[: len(train_labels)],
                                           "xsub/val": ids[len(train_labels) :]})
    write_store(path, converted)  # untrimmed part at path / "untrimmed"
    return path


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("detection") / "toy"
    return write_toy_store(root, [[0, 1, 2], [2, 0], [1, 2, 0], [0, 1]], [[1, 0, 2], [2, 1]])


@pytest.fixture(scope="module")
def small_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four short recordings (100-200 frames) for the feature-equality tests."""
    return write_toy_store(tmp_path_factory.mktemp("detection") / "small", [[0], [1, 2], [2]], [[0]], seed=1)


def tiny_encoder(seed: int = 0):
    return random_encoder(load_config(PretrainConfig, None, TINY_MODEL), HANDS8, 3, 2, seed)


def ctx_for(encoder, path: Path, seed: int = 0, out_dir: Path | None = None) -> TaskContext:
    return TaskContext(encoder, path, CPU, seed, out_dir)


# ------------------------------------------------------------------------------- features


@pytest.mark.parametrize("stride", [1, 3])
def test_sequence_mode_equals_one_sequence_at_a_time(small_path, stride):
    store = open_untrimmed(small_path)
    module = tiny_encoder().encoder
    # one big padded batch, and batches of one or two sequences
    for max_batch_frames in (100_000, 300):
        opts = FrameFeatureOptions("sequence", sequence_stride=stride, max_batch_frames=max_batch_frames)
        batched = frame_features(module, store, "motion", opts, CPU)
        for i, feats in enumerate(batched):
            x = torch.from_numpy(store.sequence(i).copy())
            reference = torch.empty_like(feats)
            for o in range(stride):  # the interleaved sub-sequence o, o + s, ... in one pass
                view = to_stream(x[None, :, o::stride], "motion", HANDS8)
                with torch.no_grad():
                    reference[o::stride] = module.forward_dense(view)[0]
            assert feats.shape == (store.lengths[i], module.feature_dim)
            torch.testing.assert_close(feats, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("stride", "lookahead"), [(1, 5), (3, 7), (2, 10_000)])
def test_sequence_lookahead_reads_a_later_causal_step(small_path, stride, lookahead):
    store = open_untrimmed(small_path)
    module = tiny_encoder().encoder
    opts = FrameFeatureOptions("sequence", sequence_stride=stride, sequence_lookahead=lookahead)
    ahead = frame_features(module, store, "joint", opts, CPU)
    for i, feats in enumerate(ahead):
        x = torch.from_numpy(store.sequence(i).copy())
        length = int(store.lengths[i])
        for t in (0, length // 2, length - 1):
            o = t % stride
            sub = x[None, :, o::stride]
            step = min((t - o + lookahead) // stride, sub.shape[2] - 1)  # clamped to the end
            with torch.no_grad():
                reference = module.forward_dense(sub)[0, step]
            torch.testing.assert_close(feats[t], reference, atol=1e-5, rtol=1e-4)


def test_sequence_chunks_cover_every_step_with_enough_past():
    assert sequence_chunks(10, 0) == [(0, 10)] and sequence_chunks(6, 3) == [(0, 6)]
    assert sequence_chunks(11, 3) == [(0, 6), (3, 6), (6, 5)]
    for steps, context in [(11, 3), (12, 3), (13, 3), (40, 4), (7, 1)]:
        chunks = sequence_chunks(steps, context)
        step = np.arange(steps)
        k = chunk_of_step(step, context)
        first = np.array([chunks[c][0] for c in k])
        length = np.array([chunks[c][1] for c in k])
        assert (step >= first).all() and (step < first + length).all()  # inside its chunk
        past = step - first  # earlier steps the causal state has seen in that chunk
        assert (past[step >= context] >= context).all() and (past == np.minimum(step, past)).all()


@pytest.mark.parametrize(("stride", "context", "lookahead"), [(1, 4, 0), (3, 6, 2), (2, 5, 0)])
def test_sequence_context_restarts_the_state_in_chunks(small_path, stride, context, lookahead):
    store = open_untrimmed(small_path)
    module = tiny_encoder().encoder
    opts = FrameFeatureOptions("sequence", sequence_stride=stride, sequence_lookahead=lookahead,
                               sequence_context=context, max_batch_frames=50)
    chunked = frame_features(module, store, "motion", opts, CPU)
    steps_of_context = -(-context // stride)
    for i, feats in enumerate(chunked):
        x = torch.from_numpy(store.sequence(i).copy())
        length = int(store.lengths[i])
        for t in range(length):
            o = t % stride
            sub = to_stream(x[None, :, o::stride], "motion", HANDS8)  # stream of the whole sub-sequence
            step = min((t - o + lookahead) // stride, sub.shape[2] - 1)
            # the reference: a fresh causal pass from `start`, at least `context` frames back
            start = max(0, (step // steps_of_context - 1) * steps_of_context)
            with torch.no_grad():
                reference = module.forward_dense(sub[:, :, start : step + 1])[0, -1]
            torch.testing.assert_close(feats[t], reference, atol=1e-5, rtol=1e-4)


def test_unsorted_wanted_frames_are_refused(small_path):
    store = open_untrimmed(small_path)
    wanted = [np.array([5, 3])] + [np.arange(2)] * (len(store) - 1)
    with pytest.raises(ConfigError, match="strictly increasing"):
        frame_features(tiny_encoder().encoder, store, "joint", FrameFeatureOptions("sequence"), CPU, wanted)


def test_sequence_mode_returns_only_the_wanted_frames(small_path):
    store = open_untrimmed(small_path)
    module = tiny_encoder().encoder
    opts = FrameFeatureOptions("sequence")
    full = frame_features(module, store, "joint", opts, CPU)
    wanted = [np.arange(0, int(t), 7) for t in store.lengths]
    part = frame_features(module, store, "joint", opts, CPU, wanted)
    for f, p, w in zip(full, part, wanted, strict=True):
        torch.testing.assert_close(p, f[torch.from_numpy(w)])


def slow_official_window(x: torch.Tensor, t: int, window: int = 16, downsample: int = 4) -> torch.Tensor:
    """Official ``sliding_window_crop_downsample`` for one frame, written with its branches."""
    size, length = window * downsample, x.shape[1]
    if t < size // 2:
        s, e = 0, size
    elif t > length - size // 2:
        s, e = length - size, length
    else:
        s = t - size // 2
        e = s + size
    return x[:, s:e:downsample]


def test_official_window_indices_match_the_official_branches():
    x = torch.arange(100)[None]
    got = official_window_indices(np.arange(100), 100)
    for t in range(100):
        assert got[t].tolist() == slow_official_window(x, t)[0].tolist()
    short = official_window_indices(np.array([0, 5, 9]), 10)  # shorter than the window: clamped
    assert short[1].tolist() == [min(4 * j, 9) for j in range(16)]


def test_window_mode_equals_a_slow_per_frame_reference(small_path):
    store = open_untrimmed(small_path)
    module = tiny_encoder().encoder
    opts = FrameFeatureOptions("window", window_batch=8)  # batches mix sequences and chunks

    def probe(t: int) -> np.ndarray:  # both clamped ends, the middle, a few in between
        return np.unique(np.r_[0, 1, 31, 32, 33, t - 33, t - 32, t - 31, t - 1, 40:t - 40:29])

    wanted = [probe(int(t)) for t in store.lengths[:3]] + [np.zeros(0, dtype=np.int64)]
    batched = frame_features(module, store, "bone", opts, CPU, wanted)
    raw = raw_encoder(HANDS8, 3, 2, frames=16).encoder
    raw_batched = frame_features(raw, store, "joint", opts, CPU, wanted)
    assert batched[3].numel() == 0
    for i in range(3):
        x = torch.from_numpy(store.sequence(i).copy())
        windows = torch.stack([slow_official_window(x, int(t)) for t in wanted[i]])  # (n, C, 16, V, M)
        for row in range(len(windows)):  # one window at a time
            with torch.no_grad():
                expected = module.forward_dense(to_stream(windows[row : row + 1], "bone", HANDS8))[0, -1]
            torch.testing.assert_close(batched[i][row], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(raw_batched[i], windows.flatten(1))


def test_training_frames_subsample_is_seeded_and_uniform():
    lengths = np.array([50, 10, 40])
    assert [len(f) for f in training_frames(lengths, None, 0)] == [50, 10, 40]
    a, b, c = (training_frames(lengths, 30, s) for s in (0, 0, 1))
    assert sum(len(f) for f in a) == 30
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert all((np.diff(f) > 0).all() and (f < t).all() for f, t in zip(a, lengths, strict=True))


@pytest.mark.parametrize("scaling", ["global", "per_dim", "none"])
def test_frame_classifier_scaling_and_learning(scaling):
    gen = torch.Generator().manual_seed(0)
    targets = torch.arange(300) % 3
    features = torch.randn(300, 4, generator=gen) * torch.tensor([1.0, 2.0, 10.0, 0.1]) + 5.0
    features[:, 0] += 8.0 * targets  # class cue on dimension 0 (separable)
    raw = features.clone()
    cfg = DetectionConfig(standardize=scaling, epochs=30, milestones=[20], batch_size=64, class_balanced=True)
    clf = train_frame_classifier(features, targets, 3, cfg, seed=0)
    var = raw.var(0, unbiased=False)
    expected_std = {"global": var.mean().sqrt().expand(4), "per_dim": var.sqrt(), "none": torch.ones(4)}
    torch.testing.assert_close(clf.std, expected_std[scaling])
    torch.testing.assert_close(features, (raw - clf.mean) / clf.std)  # scaled in place
    with torch.no_grad():
        accuracy = (clf(raw).argmax(1) == targets).float().mean()
    assert accuracy > (0.95 if scaling != "none" else 0.5)


# ------------------------------------------------------------------------------- the task


@pytest.mark.parametrize("mode", ["sequence", "window"])
def test_separable_raw_features_detect_perfectly(toy_path, mode, tmp_path):
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    out = run_detection(ctx_for(raw, toy_path, out_dir=tmp_path), DetectionConfig(features=mode))
    assert out.metrics["map@0.5"] == pytest.approx(100.0)
    assert out.metrics["map@0.1"] == pytest.approx(100.0)
    # a window sees 32 frames either side of its frame, so frames near boundaries are ambiguous
    assert out.metrics["frame_accuracy"] > (95.0 if mode == "sequence" else 60.0)
    assert set(out.metrics) == {"map@0.1", "map@0.3", "map@0.5", "frame_accuracy"}
    rows = json.loads((tmp_path / "detection_predictions.json").read_text())
    assert {"sequence", "label", "start", "end", "score", "split"} <= set(rows[0])
    assert sorted({r["sequence"] for r in rows}) == [0, 1] and rows[0]["split"] == "xsub/val"
    timeline = out.timeline()
    assert [len(s["truth"]) for s in timeline] == [3, 2] and timeline[0]["length"] == out.lengths[0]


def test_no_signal_scores_low(tmp_path):
    """The metric can fail: without the cue the same pipeline cannot find the classes."""
    path = write_toy_store(tmp_path / "flat", [[0, 1, 2], [2, 0, 1]], [[1, 0, 2]], signal=0.0)
    out = run_detection(ctx_for(raw_encoder(HANDS8, 3, 2, 16), path), DetectionConfig())
    assert out.metrics["map@0.5"] < 50.0


def test_registered_task_is_deterministic_and_leaves_the_encoder_frozen(toy_path):
    loaded = tiny_encoder()
    before = {k: v.clone() for k, v in loaded.encoder.state_dict().items()}
    spec = get_task("detection")
    cfg = from_dict(spec.config, {"features": "window", "max_train_frames": 400, "epochs": 5,
                                  "milestones": [3]})
    first = spec.run(ctx_for(loaded, toy_path / "untrimmed", seed=3), cfg)
    second = spec.run(ctx_for(loaded, toy_path / "untrimmed", seed=3), cfg)
    assert first == second and all(isinstance(v, float) for v in first.values())
    after = loaded.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert not loaded.encoder.training


def test_seed_changes_the_training_subsample(toy_path):
    cfg = DetectionConfig(max_train_frames=200, epochs=3, milestones=[2])
    raw = raw_encoder(HANDS8, 3, 2, 16)
    a = run_detection(ctx_for(raw, toy_path, seed=0), cfg)
    b = run_detection(ctx_for(raw, toy_path, seed=1), cfg)
    assert a.metrics != b.metrics or a.predictions != b.predictions


# ------------------------------------------------------------------------------- errors


def test_trimmed_store_without_untrimmed_part(tiny_store_path):
    with pytest.raises(Pcm3Error, match="no untrimmed sequences"):
        run_detection(ctx_for(raw_encoder(HANDS8, 3, 2, 16), tiny_store_path), DetectionConfig())


def test_train_split_without_intervals(tmp_path):
    path = write_toy_store(tmp_path / "empty", [[], []], [[0, 1]])
    with pytest.raises(Pcm3Error, match="no action intervals in split 'xsub/train'"):
        run_detection(ctx_for(raw_encoder(HANDS8, 3, 2, 16), path), DetectionConfig())


def test_class_in_test_but_not_in_train(tmp_path):
    path = write_toy_store(tmp_path / "unseen", [[0, 1], [1, 0]], [[2, 0]])
    raw = raw_encoder(HANDS8, 3, 2, 16)
    with pytest.raises(Pcm3Error, match="absent from training split 'xsub/train': 2 'both'"):
        run_detection(ctx_for(raw, path), DetectionConfig())
    out = run_detection(ctx_for(raw, path), DetectionConfig(unseen_test_classes="ignore"))
    assert out.ignored_classes == [2] and out.ground_truth[0][:, 0].tolist() == [0]


def test_layout_and_shape_mismatch(toy_path):
    with pytest.raises(Pcm3Error, match="expects layout 'ntu25'"):
        run_detection(ctx_for(raw_encoder(NTU25, 3, 2, 16), toy_path), DetectionConfig())
    one_person = random_encoder(load_config(PretrainConfig, None, TINY_MODEL), HANDS8, 3, 1)
    with pytest.raises(Pcm3Error, match=r"C=3, M=1; the store .* has layout .hands8. \(8 joints\), C=3, M=2"):
        run_detection(ctx_for(one_person, toy_path), DetectionConfig())


def test_split_and_config_errors(toy_path):
    raw = raw_encoder(HANDS8, 3, 2, 16)
    with pytest.raises(Pcm3Error, match="both 'xsub/val'"):
        run_detection(ctx_for(raw, toy_path), DetectionConfig(train_split="xsub/val", test_split="xsub/val"))
    with pytest.raises(Pcm3Error, match="no split 'xview/val'"):
        run_detection(ctx_for(raw, toy_path), DetectionConfig(test_split="xview/val"))
    store = open_untrimmed(toy_path)
    with pytest.raises(Pcm3Error, match="share sequences"):
        detect(raw, store.split("xsub/train"), store, DetectionConfig(), 0, CPU)
    with pytest.raises(ConfigError, match="features"):
        from_dict(DetectionConfig, {"features": "clip"})
    with pytest.raises(ConfigError, match="tious"):
        from_dict(DetectionConfig, {"tious": [0.0]})
