"""Few-shot recognition of classes unseen in pre-training (survey §4.4 "Unsupervised Few-shot
Learning", after Lu et al. 2022).

The novel classes (config ``novel_classes``, or every 4th class: indices 3, 7, 11, ...) of the
store ``data`` (default: the task's store) must be unseen in pre-training: ``pcm3 bench``
pre-trains without them, or the store is another dataset than pre-training's (NTU-60 ->
NTU-120); :func:`novel_class_indices` is shared by both sides. Features of
the novel-class clips are computed once with the frozen encoder on the evaluation view. Each
N-way K-shot episode draws ``ways`` distinct novel classes, ``shots`` support clips per class
from the training split and ``queries`` query clips per class from the test split; a linear
SVM (scikit-learn ``LinearSVC``) is fitted on the L2-normalised support features and scores
the queries. Metrics: ``acc_5way1shot`` (mean over episodes, percent) and
``acc_5way1shot_ci95`` (1.96 · std / sqrt(episodes)), per shot count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcm3.data.store import SkeletonStore
from pcm3.errors import ConfigError, DataError
from pcm3.tasks.base import TaskContext, check_compatible, register_task
from pcm3.tasks.features import cached_features, open_trimmed, split_pair
from pcm3.tasks.subsets import sample_episodes

NOVEL_EVERY = 4  # default novel classes: indices 3, 7, 11, ... (every 4th class)


def novel_class_indices(store: SkeletonStore, spec: list[int | str] | None) -> list[int]:
    """Sorted class indices of ``spec``: class names (exact) or indices of ``store``'s classes.

    None: every 4th class, indices 3, 7, 11, ... (a quarter of the classes, spread over the
    list). Unknown names and out-of-range indices are errors naming the allowed values.
    """
    names = list(store.class_names)
    if spec is None:
        chosen = list(range(NOVEL_EVERY - 1, len(names), NOVEL_EVERY))
        if not chosen:
            raise ConfigError(f"store {store.path} has {len(names)} classes; the default novel classes "
                              f"(every {NOVEL_EVERY}th) need at least {NOVEL_EVERY}: set novel_classes")
        return chosen
    out, absent = set(), []
    for item in spec:
        if isinstance(item, str) and item in names:
            out.add(names.index(item))
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            out.add(item)
        else:
            absent.append(item)
    if absent:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ConfigError(f"novel classes {absent} are not classes of store {store.path} (names, or indices "
                          f"0..{len(names) - 1}; its {len(names)} classes: {shown})")
    if not out:
        raise ConfigError("novel_classes is empty")
    return sorted(out)


@dataclass
class FewshotConfig:
    """Defaults: 5-way 1-/5-shot, 600 episodes, 15 queries per class (the common episode protocol)."""

    data: str | None = None  # the store of the novel classes (default: the task's store)
    train_split: str | None = None
    test_split: str | None = None
    novel_classes: list[int | str] | None = None
    ways: int = 5
    shots: list[int] = field(default_factory=lambda: [1, 5])
    episodes: int = 600
    queries: int = 15
    svm_c: float = 1.0
    batch_size: int = 256


def episode_accuracies(support_features: np.ndarray, support_labels: np.ndarray,
                       query_features: np.ndarray, query_labels: np.ndarray, classes: list[int],
                       ways: int, shots: int, queries: int, episodes: int, seed: int,
                       svm_c: float = 1.0, split_names: tuple[str, str] = ("support", "query"),
                       class_names: list[str] | None = None) -> np.ndarray:
    """``(episodes,)`` query accuracies (fractions) of a linear SVM per episode.

    Features ``(N, D)`` are L2-normalised here; labels are class ids of the full class list.
    Speed: a linear SVM depends on its inputs only through inner products, so each episode is
    expressed in an orthonormal basis of its support clips' span (``K·W`` coordinates instead
    of ``D``): the same solution and decisions, several times faster for wide features.
    """
    from sklearn.preprocessing import normalize
    from sklearn.svm import LinearSVC

    eps = sample_episodes(support_labels, query_labels, classes, ways, shots, queries, episodes, seed,
                          split_names, class_names)
    support_features, query_features = normalize(support_features), normalize(query_features)
    y_support = np.repeat(np.arange(ways), shots)
    y_query = np.repeat(np.arange(ways), queries)
    acc = np.empty(episodes)
    for e in range(episodes):
        support = support_features[eps.support[e].ravel()]  # (W*K, D), way-major like y_support
        basis, coords = np.linalg.qr(support.T)  # support.T = basis @ coords
        svm = LinearSVC(C=svm_c, dual=True, random_state=seed, max_iter=2000)
        svm.fit(coords.T, y_support)
        predicted = svm.predict(query_features[eps.query[e].ravel()] @ basis)
        acc[e] = np.mean(predicted == y_query)
    return acc


def fewshot_store(cfg: FewshotConfig, default: SkeletonStore | str | Path) -> SkeletonStore:
    """The store the episodes come from: ``cfg.data``, else ``default`` (a store or its path)."""
    if cfg.data is None and isinstance(default, SkeletonStore):
        return default
    return open_trimmed(cfg.data or default, "fewshot")  # type: ignore[arg-type]


@register_task("fewshot", FewshotConfig, "N-way K-shot episodes on novel classes, SVM on frozen features")
def run(ctx: TaskContext, cfg: FewshotConfig) -> dict[str, float]:
    store = fewshot_store(cfg, ctx.store_path)
    check_compatible(ctx.encoder, store)
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    novel = novel_class_indices(store, cfg.novel_classes)
    if len(novel) < cfg.ways:
        raise ConfigError(f"{cfg.ways}-way episodes need at least {cfg.ways} novel classes, got {len(novel)} "
                          f"({[store.class_names[c] for c in novel]})")
    pools = []
    for split in (train, test):  # features of whole splits: cached, shared with other tasks
        rows = np.flatnonzero(np.isin(np.asarray(split.labels), novel))
        if len(rows) == 0:
            raise DataError(f"split {split.split_name!r} has no clips of the novel classes "
                            f"{[store.class_names[c] for c in novel]}", path=store.path)
        features = cached_features(ctx.encoder, split, ctx.device, cfg.batch_size)
        pools.append((features[rows], np.asarray(split.labels)[rows]))
    (f_support, y_support), (f_query, y_query) = pools
    metrics: dict[str, float] = {}
    for shots in cfg.shots:
        acc = 100.0 * episode_accuracies(
            f_support, y_support, f_query, y_query, novel, cfg.ways, shots, cfg.queries, cfg.episodes,
            ctx.seed, cfg.svm_c, (train.split_name, test.split_name), store.class_names)
        key = f"acc_{cfg.ways}way{shots}shot"
        metrics[key] = float(acc.mean())
        metrics[f"{key}_ci95"] = float(1.96 * acc.std() / np.sqrt(len(acc)))
    return metrics
