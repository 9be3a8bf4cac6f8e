"""Which samples a task uses: class-stratified labelled subsets (semi-supervised) and N-way
K-shot episodes (few-shot). (Train / test splits: :func:`pcm3.tasks.features.split_pair`.)

Row indices are positions inside a split store (``0 .. len(split) - 1``); :func:`subset_store`
turns them into a store of the same kind. Every random choice takes a seed and is vectorised
with NumPy (no per-sample Python).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcm3.data.store import SkeletonStore
from pcm3.errors import ConfigError, DataError


def subset_store(store: SkeletonStore, rows: np.ndarray, name: str | None = None) -> SkeletonStore:
    """The samples ``rows`` (positions in ``store``, kept in increasing order) as a store."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= len(store)):
        raise ConfigError(f"subset rows must be in 0..{len(store) - 1}, got {rows[0]}..{rows[-1]}")
    return SkeletonStore(store.path, store.indices[rows], name=name or f"{store.split_name}[subset]")


def stratified_subset(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Sorted rows of a class-stratified random subset holding ``ratio`` of the labelled samples.

    ``labels`` ``(N,)`` (-1 = unlabelled, never chosen). The total is ``round(ratio * N_labelled)``
    split over the classes in proportion to their sizes (largest remainders), but every class
    present gets at least one sample, so a tiny ratio may give more than ``ratio`` of the data.
    """
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"a labelled ratio must be in (0, 1], got {ratio}")
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.flatnonzero(labels >= 0)
    if len(rows) == 0:
        raise ConfigError("stratified_subset: no labelled samples")
    sizes = np.unique(labels[rows], return_counts=True)[1]
    quota = ratio * sizes
    take = np.floor(quota).astype(np.int64)
    extra = round(ratio * len(rows)) - int(take.sum())
    if extra > 0:  # largest remainders first; ties by class order
        take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1
    take = np.clip(take, 1, sizes)
    rng = np.random.default_rng(seed)
    shuffled = rows[rng.permutation(len(rows))]
    grouped = shuffled[np.argsort(labels[shuffled], kind="stable")]  # by class, random within
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(len(grouped)) - np.repeat(starts, sizes)
    keep = rank < np.repeat(take, sizes)
    return np.sort(grouped[keep])


@dataclass(frozen=True)
class Episodes:
    """``E`` episodes of ``W`` ways: ``classes (E, W)`` class ids, ``support (E, W, K)`` rows of
    the support pool, ``query (E, W, Q)`` rows of the query pool; way ``w`` of episode ``e`` is
    class ``classes[e, w]``."""

    classes: np.ndarray
    support: np.ndarray
    query: np.ndarray


def _pick(pool_labels: np.ndarray, classes: np.ndarray, count: int, rng: np.random.Generator,
          exclude: np.ndarray | None) -> np.ndarray:
    """``(E, W, count)`` rows: for each (episode, way) ``count`` distinct rows of that class."""
    out = np.empty((*classes.shape, count), dtype=np.int64)
    for c in np.unique(classes):
        members = np.flatnonzero(pool_labels == c)
        where = np.nonzero(classes == c)
        keys = rng.random((len(where[0]), len(members)))
        if exclude is not None:  # rows already used as support in the same episode
            used = exclude[where]
            keys[(used[:, :, None] == members[None, None, :]).any(1)] = np.inf
        out[where] = members[np.argsort(keys, axis=1)[:, :count]]
    return out


def sample_episodes(support_labels: np.ndarray, query_labels: np.ndarray | None, classes: list[int],
                    ways: int, shots: int, queries: int, episodes: int, seed: int,
                    split_names: tuple[str, str] = ("support", "query"),
                    class_names: list[str] | None = None) -> Episodes:
    """Draw ``episodes`` N-way K-shot episodes over ``classes``.

    Each episode: ``ways`` distinct classes; per class ``shots`` distinct support rows from
    ``support_labels`` and ``queries`` distinct query rows from ``query_labels``. With
    ``query_labels`` None the queries come from the support pool too, never a row that is
    support in the same episode. Errors name the class and split that are too small.
    """
    if ways < 2 or shots < 1 or queries < 1 or episodes < 1:
        raise ConfigError(f"few-shot needs ways >= 2, shots >= 1, queries >= 1, episodes >= 1; got "
                          f"ways={ways}, shots={shots}, queries={queries}, episodes={episodes}")
    classes = sorted(set(int(c) for c in classes))
    if len(classes) < ways:
        raise ConfigError(f"{ways}-way episodes need at least {ways} novel classes, got {len(classes)}")
    same_pool = query_labels is None
    pools = [(support_labels, shots + (queries if same_pool else 0), split_names[0])]
    if not same_pool:
        pools.append((query_labels, queries, split_names[1]))
    for labels, need, split in pools:
        counts = np.bincount(np.asarray(labels)[np.asarray(labels) >= 0], minlength=max(classes) + 1)
        for c in classes:
            if counts[c] < need:
                name = class_names[c] if class_names else str(c)
                raise DataError(f"{shots}-shot {ways}-way episodes need {need} samples of class {name!r} "
                                f"in split {split!r}, found {counts[c]}")
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((episodes, len(classes))), axis=1)[:, :ways]
    chosen = np.asarray(classes)[order]
    support = _pick(np.asarray(support_labels), chosen, shots, rng, None)
    if same_pool:
        query = _pick(np.asarray(support_labels), chosen, queries, rng, support)
    else:
        query = _pick(np.asarray(query_labels), chosen, queries, rng, None)
    return Episodes(chosen, support, query)
