"""``Embedder.encode``: NumPy clips -> features, fed exactly as the tasks feed the encoder."""

import numpy as np
import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.data.preprocess import make_transform, select_bodies
from pcm3.data.store import Converted, Sequence, write_untrimmed
from pcm3.embedding import Embedder, default_lengths
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layout_mapping import map_joints
from pcm3.layouts import NTU25
from pcm3.tasks.detection import DetectionConfig
from pcm3.tasks.detection_features import frame_features
from pcm3.tasks.encoders import random_encoder
from pcm3.tasks.features import extract_features

from .conftest import HANDS8, TINY_MODEL


def _encoder(stream: str = "joint", layout=HANDS8, persons: int = 2):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"stream={stream}"])
    return random_encoder(cfg, layout, 3, persons, seed=3)


def _store_clips(store):
    """The store's clips as (N, M, T, V, C) and their lengths."""
    return np.asarray(store.x[:]).transpose(0, 4, 2, 3, 1), store.lengths


@pytest.mark.parametrize("stream", ["joint", "motion", "bone"])
def test_clip_features_are_the_tasks_features(tiny_store_path, stream):
    store = open_store(tiny_store_path)
    loaded = _encoder(stream)
    expected = extract_features(loaded.encoder, store, torch.device("cpu"), loaded.view_frames, stream)
    x, lengths = _store_clips(store)
    embedder = Embedder(loaded, batch_size=5)
    got = embedder.encode(x, lengths, preprocess=False)
    assert got.shape == (len(store), embedder.feature_dim)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_dense_features_are_the_detection_tasks(tiny_store_path, tmp_path):
    store = open_store(tiny_store_path)
    loaded = _encoder("motion")
    x, lengths = _store_clips(store)
    seqs = [Sequence(str(i), store.sample(i), np.zeros((0, 3), np.int64)) for i in range(6)]
    untrimmed = write_untrimmed(tmp_path / "u", Converted(HANDS8, ["a"], sequences=seqs))
    for mode in ("window", "sequence"):
        opts = DetectionConfig(features=mode).feature_options()
        expected = frame_features(loaded.encoder, untrimmed, "motion", opts, torch.device("cpu"))
        got = Embedder(loaded, dense_options=opts).encode(x[:6], lengths[:6], dense=True, preprocess=False)
        assert got.shape == (6, x.shape[2], loaded.feature_dim)
        for i in range(6):
            np.testing.assert_allclose(got[i, : lengths[i]], expected[i].numpy(), rtol=1e-5, atol=1e-6)
            assert not got[i, lengths[i] :].any()


def test_persons_are_padded_or_the_most_active_kept(tiny_store_path):
    rng = np.random.default_rng(0)
    embedder = Embedder(_encoder())
    one = rng.normal(size=(3, 20, 8, 3)).astype(np.float32)  # (N, T, V, C): one person
    two = np.stack([one, np.zeros_like(one)], axis=1)
    np.testing.assert_allclose(embedder.encode(one, preprocess=False), embedder.encode(two, preprocess=False))
    three = rng.normal(size=(3, 3, 20, 8, 3)).astype(np.float32)
    three[:, 1] *= 0.01  # the least active person
    kept = np.stack([select_bodies(b, 2) for b in three])
    np.testing.assert_allclose(embedder.encode(three, preprocess=False),
                               embedder.encode(kept, preprocess=False))


def test_default_lengths_and_preprocessing():
    rng = np.random.default_rng(1)
    x = np.zeros((4, 30, 25, 3), dtype=np.float32)
    lengths = np.array([30, 12, 20, 7])
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, 25, 3))
    assert default_lengths(x[:, None].transpose(0, 4, 2, 3, 1)).tolist() == lengths.tolist()
    embedder = Embedder(_encoder(layout=NTU25, persons=1))
    np.testing.assert_allclose(embedder.encode(x), embedder.encode(x, lengths))
    store_x = x[:, None].transpose(0, 4, 2, 3, 1)  # (N, C, T, V, M)
    done, done_lengths = make_transform(NTU25)(store_x, lengths)
    by_hand = embedder.encode(done.transpose(0, 4, 2, 3, 1), done_lengths, preprocess=False)
    np.testing.assert_allclose(embedder.encode(x, lengths), by_hand, rtol=1e-5, atol=1e-6)
    assert not np.allclose(embedder.encode(x, lengths, preprocess=False), by_hand)


def test_another_layout_is_mapped_first():
    rng = np.random.default_rng(2)
    coco = rng.normal(size=(3, 16, 17, 3)).astype(np.float32) + 2
    embedder = Embedder(_encoder(layout=NTU25, persons=1))
    mapped = map_joints(coco, "coco17", "ntu25")
    np.testing.assert_allclose(embedder.encode(coco, layout="coco17"), embedder.encode(mapped), rtol=1e-5)
    zero = map_joints(coco, "coco17", "ntu25", absent="zero")
    np.testing.assert_allclose(embedder.encode(coco, layout="coco17", absent="zero", preprocess=False),
                               embedder.encode(zero, lengths=[16] * 3, preprocess=False), rtol=1e-5)


def test_bad_clips_are_refused():
    embedder = Embedder(_encoder(layout=NTU25, persons=1))
    good = np.ones((2, 10, 25, 3), dtype=np.float32)
    with pytest.raises(ConfigError, match=r"V=17 joints; layout 'ntu25' has 25 \(pass layout="):
        embedder.encode(np.ones((2, 10, 17, 3)))
    with pytest.raises(ConfigError, match="reads C=3 coordinates per joint; the clips have 2"):
        embedder.encode(np.ones((2, 10, 25, 2)))
    with pytest.raises(ConfigError, match=r"expected clips \(N, T, V, C\)"):
        embedder.encode(np.ones((10, 25, 3)))
    with pytest.raises(ConfigError, match=r"lengths: expected 2 values in 1..10"):
        embedder.encode(good, lengths=[10, 11])
    with pytest.raises(ConfigError, match="NaN or infinite"):
        embedder.encode(np.where(good > 0, np.nan, good))
    with pytest.raises(ConfigError, match="clip 1 has no non-zero coordinate"):
        embedder.encode(np.stack([good[0], np.zeros_like(good[0])]))
