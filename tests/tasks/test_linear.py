import numpy as np
import pytest
import torch

from pcm3.config import from_dict, load_config
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.encoders import random_encoder
from pcm3.tasks.features import (
    cached_features,
    evaluation_labels,
    labelled_rows,
    random_crop_features,
    split_pair,
)

from ..conftest import HANDS8, TINY_MODEL


def separable_store(path, n=18, labels=None, splits=None):
    """Clips of 3 classes; class k moves coordinate k of every joint by +1: raw coordinates
    separate them (features for the labels ``i % 3``; ``labels`` may say otherwise)."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        label = i % 3 if labels is None else labels[i]
        x = rng.normal(scale=0.01, size=(3, int(rng.integers(10, 20)), 8, 2)).astype(np.float32)
        x[i % 3] += 1.0
        samples.append(Sample(f"s{i:02d}", x, label))
    ids = [s.id for s in samples]
    splits = splits or {"xsub/train": ids[:12], "xsub/val": ids[12:]}
    write_store(path, Converted(layout=HANDS8, class_names=["a", "b", "c"], samples=samples, splits=splits))
    return path


def _run(encoder, store_path, seed=0, **overrides):
    spec = get_task("linear")
    ctx = TaskContext(encoder, store_path, torch.device("cpu"), seed)
    return spec.run(ctx, from_dict(spec.config, overrides))


def _tiny_encoder(seed=0):
    return random_encoder(load_config(PretrainConfig, None, TINY_MODEL), HANDS8, 3, 2, seed)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_encoder_is_frozen_including_batchnorm_statistics(tiny_store_path):
    loaded = _tiny_encoder()
    before = _snapshot(loaded.encoder)
    assert any("running_mean" in k for k in before)
    metrics = _run(loaded, tiny_store_path, epochs=2)
    metrics_aug = _run(loaded, tiny_store_path, epochs=2, augment=True)
    assert _same(before, _snapshot(loaded.encoder))
    assert set(metrics) == set(metrics_aug) == {"top1", "top5"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    # the comparison can fail: one train-mode pass moves the BatchNorm running statistics
    loaded.encoder.train()(torch.randn(2, 3, 16, 8, 2))
    assert not _same(before, _snapshot(loaded.encoder))


def test_separable_features_reach_100_percent(tmp_path):
    path = separable_store(tmp_path / "sep")
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    assert _run(raw, path, epochs=20) == {"top1": 100.0, "top5": 100.0}
    # labels that do not follow the features: the test split cannot be learned perfectly
    shuffled = separable_store(tmp_path / "shuffled", labels=[(i // 3) % 3 for i in range(18)])
    assert _run(raw, shuffled, epochs=20)["top1"] < 100.0


def test_augmented_views_are_fresh_every_epoch_and_seeded(tiny_store_path):
    loaded = _tiny_encoder()
    train = open_store(tiny_store_path).split("xsub/train")

    def crops(seed, times):
        g = torch.Generator().manual_seed(seed)
        return [random_crop_features(loaded.encoder, train, torch.device("cpu"), g, 16) for _ in range(times)]

    first, second = crops(3, 2)
    assert first.shape == (16, loaded.feature_dim) and not np.allclose(first, second)
    np.testing.assert_array_equal(crops(3, 1)[0], first)
    assert _run(loaded, tiny_store_path, seed=4, epochs=2, augment=True) == _run(
        loaded, tiny_store_path, seed=4, epochs=2, augment=True)


def test_feature_cache_is_shared_and_notices_changed_weights(tiny_store_path):
    loaded = _tiny_encoder()
    test = open_store(tiny_store_path).split("xsub/val")
    a = cached_features(loaded, test, torch.device("cpu"))
    assert cached_features(loaded, test, torch.device("cpu")) is a and not a.flags.writeable
    other = _tiny_encoder(seed=1)
    assert not np.allclose(cached_features(other, test, torch.device("cpu")), a)
    with torch.no_grad():
        next(loaded.encoder.parameters()).mul_(2.0)
    b = cached_features(loaded, test, torch.device("cpu"))
    assert b is not a and not np.allclose(a, b)


def test_split_resolution_and_refusals(tmp_path):
    ids = [f"s{i:02d}" for i in range(18)]
    path = separable_store(tmp_path / "s", splits={"xsub/train": ids[:12], "xsub/val": ids[12:],
                                                   "xview/train": ids[6:], "xview/test": ids[:6],
                                                   "xset/train": ids[:9], "xset/val": ids[9:],
                                                   "odd": ids[10:14]})
    store = open_store(path)
    train, test = split_pair(store, None, None)
    assert (train.split_name, test.split_name) == ("xsub/train", "xsub/val")  # xsub before xset
    train, test = split_pair(store, None, "xview/test")
    assert (train.split_name, test.split_name) == ("xview/train", "xview/test")
    assert split_pair(store, "xview/train", None)[1].split_name == "xview/test"
    with pytest.raises(Pcm3Error, match="both 'xsub/val'"):
        split_pair(store, "xsub/val", "xsub/val")
    with pytest.raises(Pcm3Error, match="share 2 samples"):
        split_pair(store, "xsub/train", "odd")
    with pytest.raises(Pcm3Error, match="no test split matching 'odd'"):
        split_pair(store, "odd", None)
    with pytest.raises(Pcm3Error, match="no split 'xsub/tset'"):
        split_pair(store, None, "xsub/tset")
    bare = separable_store(tmp_path / "bare", splits={"a": ids[:9], "b": ids[9:]})
    with pytest.raises(Pcm3Error, match=r"no '\*/train' split"):
        _run(raw_encoder(HANDS8, 3, 2, 16), bare)


def test_unlabelled_samples(tmp_path):
    labels = [-1] * 12 + [0, 1, 2, -1, 1, 2]
    store = open_store(separable_store(tmp_path / "u", labels=labels))
    with pytest.raises(Pcm3Error, match="no labels in split 'xsub/train'"):
        labelled_rows(store.split("xsub/train"))
    with pytest.raises(Pcm3Error, match="1 of 6 samples of test split 'xsub/val' are unlabelled"):
        evaluation_labels(store.split("xsub/val"))


def test_config_defaults_and_checks():
    cfg = from_dict(get_task("linear").config, {})
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size, cfg.epochs) == (0.1, 0.9, 0.0, 64, 80)
    assert cfg.milestones == [50, 70] and cfg.augment is False and cfg.standardize is True
    with pytest.raises(ConfigError, match="crop_scale"):
        from_dict(get_task("linear").config, {"crop_scale": [0.0, 1.0]})
    with pytest.raises(ConfigError, match="unknown config key 'lr_decay'"):
        from_dict(get_task("linear").config, {"lr_decay": 1})
