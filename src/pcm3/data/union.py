"""Several trimmed stores (or splits of them) read as one store: hybrid pre-training data.

:class:`StoreUnion` has the API the pre-training loop and the clip readers use: ``x``
``(N, C, T, V, M)``, ``lengths``, ``labels``, ``ids``, ``layout``, ``fingerprint``,
``split_name``, ``class_names``, ``split(...)``, ``len``. Its rows are the first part's rows, then
the second part's, and so on; nothing is copied (``x`` reads each part's memory map on indexing).

The parts must share the layout (the same joint definition: mapping one layout onto another is
not supported), the channels ``C`` and the persons ``M``; their padded length ``T`` may differ
(the union pads with zeros, as every store pads after a sample's valid length). A part's class
``k`` is the union's class ``offset + k``, the parts' class names concatenated (an action in two
datasets is two classes; -1 stays unlabelled). The fingerprint joins the parts' fingerprints
with ``+``, so whatever records it (checkpoints, exports) records each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pcm3.data.store import LazyRows, SkeletonStore
from pcm3.errors import ConfigError


def _describe(store: SkeletonStore) -> str:
    return f"{store.path} (split {store.split_name!r})"


class UnionRows:
    """The rows of several ``(n_p, C, T_p, V, M)`` arrays as one ``(sum n_p, C, max T_p, V, M)``
    array, read only when indexed (integer, slice or index array; each part read in sorted order)."""

    def __init__(self, parts: Sequence[np.ndarray | LazyRows]) -> None:
        self.parts = list(parts)
        self.starts = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])]).astype(np.int64)
        first = self.parts[0].shape
        self._shape = (int(self.starts[-1]), first[1], max(p.shape[2] for p in self.parts), *first[3:])
        self.dtype = self.parts[0].dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def ndim(self) -> int:
        return len(self._shape)

    def __len__(self) -> int:
        return self._shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows = self[key[0]]
            return rows[key[1:]] if np.isscalar(key[0]) else rows[(slice(None), *key[1:])]
        rows = np.arange(len(self))[key]
        if np.isscalar(rows):
            return self[np.array([rows])][0]
        out = np.zeros((len(rows), *self._shape[1:]), dtype=self.dtype)
        part = np.searchsorted(self.starts, rows, side="right") - 1
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            local = rows[where] - self.starts[p]
            order = np.argsort(local, kind="stable")  # sorted reads are kind to a memory map
            block = np.asarray(self.parts[p][local[order]])
            out[where[order], :, : block.shape[2]] = block
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


def _check_parts(parts: list[SkeletonStore]) -> None:
    """Refuse parts that differ in layout, channels or persons, or that share samples."""
    first = parts[0]
    for other in parts[1:]:
        if other.layout.to_dict() != first.layout.to_dict():
            raise ConfigError(
                f"stores {_describe(first)} and {_describe(other)} have different layouts: "
                f"{first.layout.name!r} ({first.layout.num_joints} joints) and {other.layout.name!r} "
                f"({other.layout.num_joints} joints); a union of stores needs one layout (mapping one "
                "layout onto another is not supported: convert both with the same layout)")
        for axis, what in ((1, "channels C"), (4, "persons M")):
            ours, theirs = first.x.shape[axis], other.x.shape[axis]
            if ours != theirs:
                raise ConfigError(f"stores {_describe(first)} and {_describe(other)} differ in {what}: "
                                  f"{ours} and {theirs}; a union needs the same in every store")
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            shared = np.intersect1d(a.indices, b.indices) if a.fingerprint == b.fingerprint else []
            if len(shared):
                example = str(a.ids[np.flatnonzero(a.indices == shared[0])[0]])
                raise ConfigError(f"{_describe(a)} and {_describe(b)} share {len(shared)} samples of the "
                                  f"same store (e.g. {example!r}); a union would read them twice")


class StoreUnion:
    """Trimmed stores (or splits of them) as one store; see the module docstring."""

    kind = "trimmed"

    def __init__(self, parts: Sequence[SkeletonStore]) -> None:
        parts = list(parts)
        if not parts:
            raise ConfigError("a union of stores needs at least one store")
        _check_parts(parts)
        first = parts[0]
        self.parts = parts
        self.layout = first.layout
        self.x = UnionRows([p.x for p in parts])
        self.lengths = np.concatenate([p.lengths for p in parts])
        class_offsets = np.cumsum([0] + [p.num_classes for p in parts[:-1]])
        self.labels = np.concatenate([np.where(p.labels >= 0, p.labels + offset, -1)
                                      for p, offset in zip(parts, class_offsets, strict=True)])
        self.ids = np.concatenate([p.ids for p in parts])
        self.class_names = [name for p in parts for name in p.class_names]
        self.fingerprint = "+".join(p.fingerprint for p in parts)
        self.split_name = " + ".join(f"{p.path.name}:{p.split_name}" for p in parts)
        self.confidence = None

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        return f"StoreUnion({', '.join(repr(p) for p in self.parts)})"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def max_length(self) -> int:
        return int(self.x.shape[2])

    @property
    def split_names(self) -> list[str]:
        """The split names every part has."""
        return sorted(set.intersection(*(set(p.split_names) for p in self.parts)))

    def split(self, names: str | Sequence[str]) -> StoreUnion:
        """The union of the parts' splits: one name for every part, or one name per part."""
        names = [names] * len(self.parts) if isinstance(names, str) else list(names)
        if len(names) != len(self.parts):
            raise ConfigError(f"{len(names)} split names {names} for a union of {len(self.parts)} stores; "
                              "give one per store")
        return StoreUnion([p.split(n) for p, n in zip(self.parts, names, strict=True)])

    def sample(self, i: int) -> np.ndarray:
        """Sample ``i`` cut to its valid length: ``(C, T_i, V, M)``."""
        return self.x[i][:, : int(self.lengths[i])]

    def sources(self) -> list[dict[str, Any]]:
        """Per part: its store path, fingerprint, split and sample count (provenance)."""
        return [{"path": str(p.path), "fingerprint": p.fingerprint, "split": p.split_name, "samples": len(p)}
                for p in self.parts]


PickSplits = Callable[[Any, str | None, str | None], tuple[Any, Any]]


def pretraining_views(data: str | Sequence[str], split: str | Sequence[str] | None, eval_split: str | None,
                      open_one: Callable[[str], SkeletonStore],
                      pick_splits: PickSplits) -> tuple[Any, Any, Any]:
    """``(store, train, evaluation)`` of pre-training from the config's ``data`` / ``split`` /
    ``eval_split``: ``open_one(path)`` opens one store and ``pick_splits(store, split, eval_split)``
    returns its ``(training view, (gallery, query) or None)``.

    ``data`` one store: exactly ``open_one`` and ``pick_splits``. A list of stores: each store's
    training view from its own split name (``split``: one name per store, one name for all, or
    None for each store's default), joined as a :class:`StoreUnion`, which is both ``store`` and
    ``train`` (two entries may be splits of one store, so the whole stores are not joined); the
    online 1-NN ``evaluation`` comes from the first store alone (the stores' classes are not one
    label space).
    """
    if isinstance(data, str):
        if not (split is None or isinstance(split, str)):
            raise ConfigError(f"split is a list {list(split)} (one name per store) but data names one store "
                              f"{data!r}; give data a list of stores or split one name")
        store = open_one(data)
        return (store, *pick_splits(store, split, eval_split))
    data = list(data)
    names = [split] * len(data) if split is None or isinstance(split, str) else list(split)
    if not data or len(names) != len(data):
        raise ConfigError(f"data lists {len(data)} stores and split {len(names)} names {names}: "
                          "give one split name per store (or one for all)")
    stores = [open_one(path) for path in data]
    picked = [pick_splits(s, n, eval_split if i == 0 else None)
              for i, (s, n) in enumerate(zip(stores, names, strict=True))]
    train = StoreUnion([view for view, _ in picked])
    return train, train, picked[0][1]
