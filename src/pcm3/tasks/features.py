"""Frozen-encoder features on the deterministic evaluation view, 1-NN retrieval (both in
:mod:`pcm3.engine.features`, re-exported here), and what the feature-based tasks share: their
train / test splits and a small in-process feature cache."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcm3.data.store import SkeletonStore, open_store
from pcm3.engine.features import (  # noqa: F401  (re-exported: tasks and scripts import them from here)
    MakeView,
    ViewTransform,
    encode_views,
    extract_features,
    knn_top1,
    random_crop_features,
)
from pcm3.errors import Pcm3Error


@dataclass
class FrozenFeatureConfig:
    """Config fields of every task on frozen sequence features: the splits (None = the store's
    ``*/train`` and matching ``*/val`` or ``*/test``) and the evaluation view."""

    train_split: str | None = None
    test_split: str | None = None
    crop_ratio: float = 0.95  # evaluation view: the centre of each clip, resized
    feature_batch_size: int = 256


# ------------------------------------------------------------------------------ task splits


def open_trimmed(path: str | Path, task: str) -> SkeletonStore:
    """The trimmed store at ``path`` (a task on clips refuses an untrimmed store)."""
    store = open_store(path)
    if not isinstance(store, SkeletonStore):
        raise Pcm3Error(f"{path}: the {task} task needs trimmed clips; this is an untrimmed store")
    return store


def split_pair(store: SkeletonStore, train_split: str | None,
               test_split: str | None) -> tuple[SkeletonStore, SkeletonStore]:
    """(train, test) views of ``store``.

    ``train_split`` None: the split ``<prefix>/train`` matching ``test_split``, or else ``train``,
    ``xsub/train`` or the first (sorted) ``*/train`` split, in this order. ``test_split`` None:
    ``<prefix>/val`` or else ``<prefix>/test`` of the train split. Refuses a missing split,
    train == test, and splits that share samples: no task evaluates on its training data.
    """
    names = store.split_names
    if train_split is None:
        if test_split is not None and f"{_prefix(test_split)}train" in names:
            train_split = f"{_prefix(test_split)}train"
        else:
            preferred = [s for s in ("train", "xsub/train") if s in names]
            train_split = next(iter(preferred + [s for s in names if s.endswith("/train")]), None)
        if train_split is None:
            raise Pcm3Error(f"store {store.path} has no '*/train' split (splits: {names}); "
                            f"set train_split=NAME")
    if test_split is None:
        base = train_split[: -len("train")] if train_split.endswith("train") else _prefix(train_split)
        test_split = next((base + s for s in ("val", "test") if base + s in names), None)
        if test_split is None:
            raise Pcm3Error(f"store {store.path} has no test split matching {train_split!r} "
                            f"(looked for {base}val, {base}test; splits: {names}); set test_split=NAME")
    if train_split == test_split:
        raise Pcm3Error(f"train_split and test_split are both {train_split!r}: "
                        f"a task never evaluates on its training split")
    train, test = store.split(train_split), store.split(test_split)
    shared = np.intersect1d(train.indices, test.indices)
    if shared.size:
        raise Pcm3Error(f"splits {train_split!r} and {test_split!r} of store {store.path} share "
                        f"{shared.size} samples (e.g. {store.ids[shared[0]]!r}); they must be disjoint")
    return train, test


def _prefix(split: str) -> str:
    return split.rsplit("/", 1)[0] + "/" if "/" in split else ""


def labelled_rows(store: SkeletonStore) -> np.ndarray:
    """Positions of the labelled samples of a training split (unlabelled ones are left out)."""
    rows = np.flatnonzero(store.labels >= 0)
    if rows.size == 0:
        raise Pcm3Error(f"store {store.path} has no labels in split {store.split_name!r}")
    return rows


def evaluation_labels(store: SkeletonStore) -> np.ndarray:
    """The labels of a test split, which must all be known."""
    missing = int((store.labels < 0).sum())
    if missing:
        raise Pcm3Error(f"store {store.path}: {missing} of {len(store)} samples of test split "
                        f"{store.split_name!r} are unlabelled; a test split must be fully labelled")
    if len(store) == 0:
        raise Pcm3Error(f"store {store.path}: test split {store.split_name!r} is empty")
    return np.asarray(store.labels, dtype=np.int64)


# ---------------------------------------------------------------------------- feature cache

_CACHE: OrderedDict[tuple, tuple[Any, tuple, np.ndarray]] = OrderedDict()
CACHE_MAX_BYTES = 2 << 30


def _weights_version(module: torch.nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place."""
    return tuple((t.data_ptr(), t._version) for t in module.state_dict().values())


def cached_features(loaded: Any, store: SkeletonStore, device: torch.device, batch_size: int = 256,
                    crop_ratio: float = 0.95) -> np.ndarray:
    """:func:`extract_features` of a :class:`~pcm3.tasks.encoders.LoadedEncoder` on the
    evaluation view, computed once per (encoder, store split, view) in this process.

    The encoder is moved to ``device``. The entry is dropped when the encoder is garbage
    collected or any of its weights change; the cache holds at most ``CACHE_MAX_BYTES``. The
    returned array is read-only (shared between tasks): copy it before changing it.
    """
    module = loaded.encoder.to(device)
    key = (id(module), str(Path(store.path).resolve()), store.fingerprint, store.split_name,
           len(store), hash(store.indices.tobytes()), loaded.view_frames, loaded.stream,
           float(crop_ratio), str(device))
    version = _weights_version(module)
    for stale in [k for k, v in _CACHE.items() if v[0]() is None]:
        del _CACHE[stale]
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is module and hit[1] == version:
        _CACHE.move_to_end(key)
        return hit[2]
    features = extract_features(module, store, device, loaded.view_frames, loaded.stream,
                                batch_size, crop_ratio)
    features.setflags(write=False)
    _CACHE[key] = (weakref.ref(module), version, features)
    while sum(v[2].nbytes for v in _CACHE.values()) > CACHE_MAX_BYTES and len(_CACHE) > 1:
        _CACHE.popitem(last=False)
    return features


def clear_feature_cache() -> None:
    _CACHE.clear()


def labelled_splits(ctx, cfg, task: str) -> tuple[SkeletonStore, SkeletonStore, SkeletonStore, np.ndarray,
                                                  np.ndarray]:
    """What every classification task starts with: ``(store, train, test, rows, y_test)`` for
    the trimmed store of ``ctx`` checked against its encoder, the splits of ``cfg``
    (``train_split`` / ``test_split``), the labelled training rows and the test labels."""
    store = open_trimmed(ctx.store_path, task)
    from pcm3.tasks.base import check_compatible

    check_compatible(ctx.encoder, store)
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    return store, train, test, labelled_rows(train), evaluation_labels(test)
