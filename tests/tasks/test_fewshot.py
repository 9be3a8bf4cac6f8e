import numpy as np
import pytest
import torch
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from pcm3.config import from_dict
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.errors import ConfigError, DataError
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.features import extract_features, split_pair
from pcm3.tasks.fewshot import FewshotConfig, episode_accuracies, novel_class_indices
from pcm3.tasks.subsets import sample_episodes, subset_store

from ..conftest import HANDS8, tiny_store_path  # noqa: F401
from .test_finetune import tiny_encoder

CPU = torch.device("cpu")
CLASSES = [f"act{k}" for k in range(8)]


@pytest.fixture(scope="module")
def eight_class_store(tmp_path_factory):
    """8 classes, 6 training and 4 test clips each; class k raises joint k (separable)."""
    rng = np.random.default_rng(0)
    samples, train, val = [], [], []
    for i in range(80):
        label, t = i % 8, int(rng.integers(10, 20))
        x = rng.normal(scale=0.05, size=(3, t, 8, 2)).astype(np.float32)
        x[1, :, label, 0] += 1.0
        samples.append(Sample(f"s{i:03d}", x, label))
        (train if i < 48 else val).append(samples[-1].id)
    path = tmp_path_factory.mktemp("fewshot") / "eight"
    write_store(path, Converted(HANDS8, CLASSES, samples, {"xsub/train": train, "xsub/val": val}))
    return path


def test_novel_class_indices(eight_class_store, tiny_store_path):  # noqa: F811
    store = open_store(eight_class_store)
    assert novel_class_indices(store, None) == [3, 7]  # every 4th class
    assert novel_class_indices(store, ["act5", 1, "act1", 0]) == [0, 1, 5]
    with pytest.raises(ConfigError, match=r"novel classes \['jump', 8\] are not classes of store .*"
                                          r"indices 0\.\.7; its 8 classes: act0, act1"):
        novel_class_indices(store, ["jump", 1, 8])
    with pytest.raises(ConfigError, match="novel_classes is empty"):
        novel_class_indices(store, [])
    with pytest.raises(ConfigError, match="has 3 classes; the default novel classes"):
        novel_class_indices(open_store(tiny_store_path), None)
    cfg = from_dict(FewshotConfig, {"novel_classes": ["act2", 4]})  # names and indices through the config
    assert novel_class_indices(store, cfg.novel_classes) == [2, 4]


def test_episode_svm_equals_a_plain_linear_svc():
    rng = np.random.default_rng(1)
    support_labels, query_labels = np.repeat(np.arange(6), 7), np.repeat(np.arange(6), 9)
    centres = rng.normal(size=(6, 40))
    support = centres[support_labels] + 2.0 * rng.normal(size=(42, 40))
    query = centres[query_labels] + 2.0 * rng.normal(size=(54, 40))
    acc = episode_accuracies(support, support_labels, query, query_labels, list(range(6)),
                             ways=3, shots=2, queries=4, episodes=30, seed=5)
    eps = sample_episodes(support_labels, query_labels, list(range(6)), 3, 2, 4, 30, seed=5)
    reference = []
    for e in range(30):
        svm = LinearSVC(C=1.0, random_state=5).fit(normalize(support)[eps.support[e].ravel()],
                                                   np.repeat(np.arange(3), 2))
        predicted = svm.predict(normalize(query)[eps.query[e].ravel()])
        reference.append(np.mean(predicted == np.repeat(np.arange(3), 4)))
    np.testing.assert_allclose(acc, reference)
    assert 0.3 < acc.mean() < 1.0  # a non-trivial problem


def test_separable_novel_classes_are_recognised(eight_class_store):
    spec = get_task("fewshot")
    cfg = from_dict(spec.config, {"novel_classes": [0, 1, 2, 4, 5, 6], "shots": [1, 3], "queries": 3,
                                  "episodes": 40})
    metrics = spec.run(TaskContext(raw_encoder(HANDS8, 3, 2, frames=16), eight_class_store, CPU), cfg)
    assert metrics == {"acc_5way1shot": 100.0, "acc_5way1shot_ci95": 0.0,
                       "acc_5way3shot": 100.0, "acc_5way3shot_ci95": 0.0}


def test_metrics_are_the_episode_mean_and_ci95(eight_class_store):
    spec = get_task("fewshot")
    settings = {"novel_classes": CLASSES[:6], "ways": 3, "shots": [2], "queries": 4, "episodes": 25}
    enc = tiny_encoder()
    metrics = spec.run(TaskContext(enc, eight_class_store, CPU, seed=2), from_dict(spec.config, settings))
    train, test = split_pair(open_store(eight_class_store), None, None)
    pools = []
    for split in (train, test):
        part = subset_store(split, np.flatnonzero(split.labels < 6))
        pools += [extract_features(enc.encoder, part, CPU, frames=16), part.labels]
    acc = 100 * episode_accuracies(*pools, list(range(6)), 3, 2, 4, 25, seed=2)
    assert metrics["acc_3way2shot"] == pytest.approx(acc.mean())
    assert metrics["acc_3way2shot_ci95"] == pytest.approx(1.96 * acc.std() / 5)
    again = spec.run(TaskContext(enc, eight_class_store, CPU, seed=2), from_dict(spec.config, settings))
    assert again == metrics


def test_too_few_classes_or_samples(eight_class_store):
    spec = get_task("fewshot")
    ctx = TaskContext(raw_encoder(HANDS8, 3, 2, frames=16), eight_class_store, CPU)
    with pytest.raises(ConfigError, match=r"need at least 5 novel classes, got 2 \(\['act3', 'act7'\]\)"):
        spec.run(ctx, from_dict(spec.config, {}))
    few = {"novel_classes": [0, 1, 2], "ways": 2, "episodes": 3}
    with pytest.raises(DataError, match="7-shot 2-way episodes need 7 samples of class 'act0' in "
                                        "split 'xsub/train', found 6"):
        spec.run(ctx, from_dict(spec.config, {**few, "shots": [7]}))
    with pytest.raises(DataError, match="need 5 samples of class 'act0' in split 'xsub/val', found 4"):
        spec.run(ctx, from_dict(spec.config, {**few, "shots": [1], "queries": 5}))
