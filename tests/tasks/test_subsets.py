import numpy as np
import pytest

from pcm3.data import open_store
from pcm3.errors import ConfigError, DataError
from pcm3.tasks.subsets import sample_episodes, stratified_subset, subset_store

from ..conftest import tiny_store_path  # noqa: F401


def test_subset_store_keeps_the_chosen_rows(tiny_store_path):  # noqa: F811
    train = open_store(tiny_store_path).split("xsub/train")
    part = subset_store(train, np.array([5, 1, 5]))
    assert list(part.ids) == [train.ids[1], train.ids[5]]
    np.testing.assert_array_equal(np.asarray(part.x[1]), np.asarray(train.x[5]))
    assert list(part.labels) == [train.labels[1], train.labels[5]]
    with pytest.raises(ConfigError, match=r"subset rows must be in 0\.\.15"):
        subset_store(train, np.array([16]))


def test_stratified_subset_counts_by_hand():
    labels = np.array([0] * 10 + [1] * 20 + [2] * 5 + [-1] * 3)
    rows = stratified_subset(labels, 0.2, seed=0)  # quotas 2, 4, 1 -> 7 = round(0.2 * 35)
    assert np.bincount(labels[rows]).tolist() == [2, 4, 1]
    assert (labels[rows] >= 0).all() and np.all(np.diff(rows) > 0)
    # a tiny ratio still labels one clip of every class
    assert np.bincount(labels[stratified_subset(labels, 0.01, seed=0)]).tolist() == [1, 1, 1]
    # largest remainders: quotas 1.5, 1.5, 2 -> 1, 1, 2 plus one more for the first tied class
    labels = np.array([0] * 3 + [1] * 3 + [2] * 4)
    assert np.bincount(labels[stratified_subset(labels, 0.5, seed=3)]).tolist() == [2, 1, 2]
    assert len(stratified_subset(labels, 1.0, seed=0)) == 10


def test_stratified_subset_depends_on_the_seed_only():
    labels = np.repeat(np.arange(4), 25)
    a, b, c = (stratified_subset(labels, 0.2, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(labels[c]).tolist() == [5, 5, 5, 5]
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="ratio must be in"):
            stratified_subset(labels, bad, seed=0)
    with pytest.raises(ConfigError, match="no labelled samples"):
        stratified_subset(np.full(5, -1), 0.5, seed=0)


def test_episodes_have_distinct_classes_and_disjoint_support_and_query():
    labels = np.repeat(np.arange(6), 8)
    eps = sample_episodes(labels, None, [0, 1, 2, 3, 4, 5], ways=4, shots=3, queries=5, episodes=200, seed=0)
    assert eps.classes.shape == (200, 4)
    assert eps.support.shape == (200, 4, 3) and eps.query.shape == (200, 4, 5)
    for e in range(200):
        assert len(set(eps.classes[e])) == 4
        support, query = set(eps.support[e].ravel()), set(eps.query[e].ravel())
        assert len(support) == 12 and len(query) == 20 and not support & query
        assert (labels[eps.support[e]] == eps.classes[e][:, None]).all()
        assert (labels[eps.query[e]] == eps.classes[e][:, None]).all()
    assert len({tuple(sorted(c)) for c in eps.classes}) > 1  # the class sets vary
    again = sample_episodes(labels, None, list(range(6)), 4, 3, 5, 200, seed=0)
    np.testing.assert_array_equal(eps.query, again.query)
    other = sample_episodes(labels, None, list(range(6)), 4, 3, 5, 200, seed=1)
    assert not np.array_equal(eps.support, other.support)


def test_episodes_from_two_pools_and_their_errors():
    support_labels, query_labels = np.repeat(np.arange(5), 2), np.repeat(np.arange(5), 4)
    eps = sample_episodes(support_labels, query_labels, [1, 2, 4], 2, 2, 3, 50, seed=0)
    assert set(eps.classes.ravel()) <= {1, 2, 4}
    assert (query_labels[eps.query] == eps.classes[:, :, None]).all()
    assert (support_labels[eps.support] == eps.classes[:, :, None]).all()
    with pytest.raises(ConfigError, match="need at least 4 novel classes, got 3"):
        sample_episodes(support_labels, query_labels, [1, 2, 4], 4, 1, 1, 5, seed=0)
    with pytest.raises(DataError, match="need 3 samples of class 'b' in split 'xsub/train', found 2"):
        sample_episodes(support_labels, query_labels, [1, 2], 2, 3, 1, 5, seed=0,
                        split_names=("xsub/train", "xsub/val"), class_names=list("abcde"))
    with pytest.raises(DataError, match="need 5 samples of class '1' in split 'query', found 4"):
        sample_episodes(support_labels, query_labels, [1, 2], 2, 1, 5, 5, seed=0)
    with pytest.raises(ConfigError, match="ways >= 2"):
        sample_episodes(support_labels, query_labels, [1, 2], 1, 1, 1, 5, seed=0)
