"""The canonical on-disk skeleton store that every later stage reads.

A trimmed store is a folder::

    meta.json        kind, shape, layout (full definition), class names, channels,
                     pre-processing applied, source, fingerprint
    x.npy            float32 (N, C, T, V, M), zero padded after each sample's valid length
    lengths.npy      int64 (N,)  valid frames per sample
    labels.npy       int64 (N,)  0-based class, -1 = unlabelled
    ids.json         [N sample ids]
    splits.json      {split name: [sample indices]}
    confidence.npy   optional float32 (N, T, V, M) per-joint scores (2D pose estimators)

An untrimmed store (detection) lives in the sibling folder ``untrimmed/``::

    x.npy            float32 (sum of T_i, C, V, M): all sequences concatenated in time
    offsets.npy      int64 (S + 1,)  sequence s is frames offsets[s]:offsets[s + 1]
    intervals.npy    int64 (K, 4)  rows (sequence index, label, start, end), end exclusive
    ids.json, splits.json, meta.json as above

Arrays are opened memory-mapped, so a 40,000-sample NTU store is never read whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.records import Converted, Sample, Sequence
from pcm3.errors import DataError
from pcm3.layouts import Layout, layout_from_dict

FORMAT_VERSION = 1
UNTRIMMED_DIR = "untrimmed"
_CHUNK = 512

# (x (n, C, T, V, M), lengths (n,)) -> (x, lengths): a batch pre-processing step.
BatchTransform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class LazyRows:
    """Rows ``indices`` of a (memory-mapped) array, read only when indexed.

    Behaves like an array of shape ``(len(indices),) + base.shape[1:]`` for ``len``,
    ``shape``, integer / slice / index-array access and ``np.asarray``.
    """

    def __init__(self, base: np.ndarray | LazyRows, indices: np.ndarray) -> None:
        if isinstance(base, LazyRows):
            indices = base.indices[indices]
            base = base.base
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows = self[key[0]]
            return rows[key[1:]] if np.isscalar(key[0]) else rows[(slice(None), *key[1:])]
        rows = self.indices[key]
        if np.isscalar(rows):
            return np.asarray(self.base[int(rows)])
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.base.shape[1:]), dtype=self.base.dtype)
        out[order] = self.base[rows[order]]  # sorted reads are kind to a memory map
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(len(self.indices))]
        return out if dtype is None else out.astype(dtype)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError("missing store file (is this a pcm3 store?)", path=path) from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc}", path=path) from exc


def _load_array(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError("missing store file (is this a pcm3 store?)", path=path) from exc
    except ValueError as exc:
        raise DataError(f"cannot read array: {exc}", path=path) from exc


class _Store:
    """What trimmed and untrimmed stores share: metadata, layout, class names, named splits."""

    kind = ""

    def _open(self, path: str | Path, name: str) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = _read_json(self.path / "meta.json")
        if self.meta.get("kind") != self.kind:
            raise DataError(f"not a {self.kind} store (kind={self.meta.get('kind')!r})", path=self.path)
        self.layout: Layout = layout_from_dict(self.meta["layout"], source=str(self.path))
        self.class_names: list[str] = list(self.meta["class_names"])
        self.fingerprint: str = self.meta["fingerprint"]
        self.split_name = name
        self._all_splits: dict[str, np.ndarray] = {
            k: np.asarray(v, dtype=np.int64) for k, v in _read_json(self.path / "splits.json").items()
        }
        self.indices = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, split={self.split_name!r}, n={len(self)})"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def split_names(self) -> list[str]:
        return sorted(self._all_splits)

    def split(self, name: str):  # -> the same store type
        """The members of split ``name`` (e.g. ``"xsub/train"``), as a store of the same kind."""
        if name not in self._all_splits:
            raise DataError(f"no split {name!r}; splits: {self.split_names}", path=self.path)
        members = self._all_splits[name]
        if self.split_name != "all":
            members = np.intersect1d(members, self.indices)
        return type(self)(self.path, members, name=name)


class SkeletonStore(_Store):
    """A trimmed store, or a split of one (same API; arrays are views, never copies)."""

    kind = "trimmed"

    def __init__(self, path: str | Path, indices: np.ndarray | None = None, name: str = "all"):
        self._open(path, name)
        full_x = _load_array(self.path / "x.npy", mmap=True)
        full_lengths = _load_array(self.path / "lengths.npy")
        full_labels = _load_array(self.path / "labels.npy")
        full_ids = np.asarray(_read_json(self.path / "ids.json"), dtype=str)
        conf_path = self.path / "confidence.npy"
        full_conf = _load_array(conf_path, mmap=True) if conf_path.exists() else None
        n = full_x.shape[0]
        if not (len(full_lengths) == len(full_labels) == len(full_ids) == n):
            raise DataError("x, lengths, labels and ids disagree on the sample count", path=self.path)
        if indices is None:
            self.indices = np.arange(n)
            self.x: np.ndarray | LazyRows = full_x
            self.confidence = full_conf
        else:
            self.indices = np.asarray(indices, dtype=np.int64)
            self.x = LazyRows(full_x, self.indices)
            self.confidence = None if full_conf is None else LazyRows(full_conf, self.indices)
        self.lengths: np.ndarray = full_lengths[self.indices]
        self.labels: np.ndarray = full_labels[self.indices]
        self.ids: np.ndarray = full_ids[self.indices]

    @property
    def max_length(self) -> int:
        return int(self.meta["shape"][2])

    def sample(self, i: int) -> np.ndarray:
        """Sample ``i`` cut to its valid length: ``(C, T_i, V, M)``."""
        return np.asarray(self.x[i])[:, : int(self.lengths[i])]


class UntrimmedStore(_Store):
    """An untrimmed store: whole recordings with their action intervals."""

    kind = "untrimmed"

    def __init__(self, path: str | Path, indices: np.ndarray | None = None, name: str = "all"):
        self._open(path, name)
        self.frames = _load_array(self.path / "x.npy", mmap=True)
        self.offsets = _load_array(self.path / "offsets.npy")
        self._intervals = _load_array(self.path / "intervals.npy").reshape(-1, 4)
        all_ids = np.asarray(_read_json(self.path / "ids.json"), dtype=str)
        self.indices = np.arange(len(all_ids)) if indices is None else np.asarray(indices, np.int64)
        self.ids = all_ids[self.indices]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)[self.indices]

    def sequence(self, i: int) -> np.ndarray:
        """Recording ``i`` of this view: ``(C, T_i, V, M)`` (read from the memory map)."""
        s = int(self.indices[i])
        return np.asarray(self.frames[self.offsets[s] : self.offsets[s + 1]]).transpose(1, 0, 2, 3)

    def intervals(self, i: int) -> np.ndarray:
        """``(K, 3)`` rows ``(label, start, end)`` of recording ``i`` of this view."""
        s = int(self.indices[i])
        return self._intervals[self._intervals[:, 0] == s, 1:]

    @property
    def num_intervals(self) -> int:
        return int(np.isin(self._intervals[:, 0], self.indices).sum())


def open_store(path: str | Path) -> SkeletonStore | UntrimmedStore:
    """Open a store folder: trimmed if it holds one, else its untrimmed part."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such store folder", path=path)
    if (path / "meta.json").exists():
        kind = _read_json(path / "meta.json").get("kind")
        return UntrimmedStore(path) if kind == "untrimmed" else SkeletonStore(path)
    if (path / UNTRIMMED_DIR / "meta.json").exists():
        return UntrimmedStore(path / UNTRIMMED_DIR)
    raise DataError("not a pcm3 store (no meta.json); create one with `pcm3 data convert`", path=path)


def open_untrimmed(path: str | Path) -> UntrimmedStore:
    """Open the untrimmed store at ``path`` or in its ``untrimmed/`` sub-folder."""
    path = Path(path)
    if (path / UNTRIMMED_DIR / "meta.json").exists():
        return UntrimmedStore(path / UNTRIMMED_DIR)
    store = open_store(path)
    if not isinstance(store, UntrimmedStore):
        raise DataError("this store has no untrimmed sequences (needed for detection)", path=path)
    return store


# ---------------------------------------------------------------------------------- writing


@dataclass
class WriteOptions:
    """``max_frames`` caps T (longer samples are truncated and counted in the metadata)."""

    max_frames: int | None = None


def _hash_update(h: Any, arr: np.ndarray) -> None:
    h.update(str(arr.dtype).encode() + str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())


def _atomic_dir(out: Path) -> Path:
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _finish_dir(tmp: Path, out: Path, keep: tuple[str, ...] = ()) -> None:
    """Move ``tmp`` into place at ``out``, carrying over sub-folders named in ``keep``."""
    if out.exists():
        for name in keep:
            if (out / name).exists() and not (tmp / name).exists():
                os.replace(out / name, tmp / name)
        shutil.rmtree(out)
    os.replace(tmp, out)


def _split_indices(splits: dict[str, list[str]], ids: list[str], where: str) -> dict[str, list[int]]:
    position = {sid: i for i, sid in enumerate(ids)}
    if len(position) != len(ids):
        dup = next(sid for sid, count in Counter(ids).items() if count > 1)
        raise DataError(f"duplicate sample id {dup!r}", path=where)
    out = {}
    for name, members in splits.items():
        missing = [m for m in members if m not in position]
        out[name] = sorted(position[m] for m in members if m in position)
        if missing and len(missing) == len(members) and members:
            raise DataError(f"split {name!r} names no sample of this store", path=where)
    return out


def _base_meta(converted: Converted, kind: str, channels: int) -> dict[str, Any]:
    from pcm3 import __version__

    names = ["x", "y", "z"][:channels] if channels <= 3 else [f"c{i}" for i in range(channels)]
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "layout_name": converted.layout.name,
        "layout": converted.layout.to_dict(),
        "class_names": list(converted.class_names),
        "channels": names,
        "source": converted.source,
        "pcm3_version": __version__,
    }


def write_trimmed(
    out: str | Path,
    converted: Converted,
    options: WriteOptions | None = None,
    transform: BatchTransform | None = None,
    preprocessing: dict[str, Any] | None = None,
) -> SkeletonStore:
    """Write ``converted.samples`` as a trimmed store at ``out`` (atomically) and open it.

    ``transform`` (e.g. :func:`pcm3.data.preprocess.make_transform`) runs on padded chunks
    of the store in place; ``preprocessing`` describes it in the metadata.
    """
    out = Path(out)
    options = options or WriteOptions()
    samples: list[Sample] = converted.samples
    if not samples:
        raise DataError("no samples to write (every sample was empty or skipped)", path=out)
    c, _, v, m = samples[0].x.shape
    for s in samples:
        if s.x.ndim != 4 or s.x.shape[0] != c or s.x.shape[2:] != (v, m) or s.x.shape[1] < 1:
            raise DataError(
                f"sample shape {s.x.shape} does not match (C={c}, T>=1, V={v}, M={m})",
                path=out, sample=s.id,
            )
    if v != converted.layout.num_joints:
        raise DataError(
            f"{v} joints per frame but layout {converted.layout.name!r} has "
            f"{converted.layout.num_joints}", path=out,
        )
    raw_lengths = np.array([s.x.shape[1] for s in samples], dtype=np.int64)
    t = int(raw_lengths.max()) if options.max_frames is None else int(options.max_frames)
    lengths = np.minimum(raw_lengths, t)
    n = len(samples)
    has_conf = any(s.confidence is not None for s in samples)
    tmp = _atomic_dir(out)
    x = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.float32, shape=(n, c, t, v, m))
    conf = (
        np.lib.format.open_memmap(tmp / "confidence.npy", mode="w+", dtype=np.float32, shape=(n, t, v, m))
        if has_conf else None
    )
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk = np.zeros((stop - start, c, t, v, m), dtype=np.float32)
        for i in range(start, stop):
            chunk[i - start, :, : lengths[i]] = samples[i].x[:, : lengths[i]]
            if conf is not None and samples[i].confidence is not None:
                conf[i, : lengths[i]] = samples[i].confidence[: lengths[i]]
        if transform is not None:
            try:
                chunk, lengths[start:stop] = transform(chunk, lengths[start:stop].copy())
            except DataError as exc:  # the transform names the row in the chunk
                row = int(exc.sample) if (exc.sample or "").isdigit() else None
                sample = samples[start + row].id if row is not None else exc.sample
                raise DataError(exc.problem, path=out, sample=sample) from exc
        if not np.isfinite(chunk).all():
            bad = int(np.nonzero(~np.isfinite(chunk).reshape(len(chunk), -1).all(1))[0][0]) + start
            raise DataError("non-finite coordinates after pre-processing", path=out,
                            sample=samples[bad].id)
        x[start:stop] = chunk
    x.flush()
    labels = np.array([s.label for s in samples], dtype=np.int64)
    ids = [s.id for s in samples]
    bad_labels = labels[(labels < -1) | (labels >= max(len(converted.class_names), 0))]
    if converted.class_names and bad_labels.size:
        shown = sorted(set(bad_labels.tolist()))[:5]
        raise DataError(f"labels {shown} outside 0..{len(converted.class_names) - 1}", path=out)
    splits = _split_indices(converted.splits, ids, str(out))
    np.save(tmp / "lengths.npy", lengths)
    np.save(tmp / "labels.npy", labels)
    (tmp / "ids.json").write_text(json.dumps(ids))
    (tmp / "splits.json").write_text(json.dumps(splits))
    h = hashlib.sha256()
    for start in range(0, n, _CHUNK):
        _hash_update(h, x[start : start + _CHUNK])
    for arr in (lengths, labels):
        _hash_update(h, arr)
    h.update(json.dumps([ids, splits, converted.class_names], sort_keys=True).encode())
    del x, conf
    meta = _base_meta(converted, "trimmed", c)
    meta.update(
        num_samples=n,
        shape=[n, c, t, v, m],
        truncated_samples=int((raw_lengths > t).sum()),
        has_confidence=has_conf,
        preprocessing=preprocessing or {},
        skipped=[s.to_dict() for s in converted.skipped],
        fingerprint=h.hexdigest()[:16],
    )
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    _finish_dir(tmp, out, keep=(UNTRIMMED_DIR,))
    return SkeletonStore(out)


def write_untrimmed(
    out: str | Path,
    converted: Converted,
    transform: BatchTransform | None = None,
    preprocessing: dict[str, Any] | None = None,
) -> UntrimmedStore:
    """Write ``converted.sequences`` as an untrimmed store at ``out`` (atomically) and open it."""
    out = Path(out)
    seqs: list[Sequence] = converted.sequences
    if not seqs:
        raise DataError("no untrimmed sequences to write", path=out)
    c, _, v, m = seqs[0].x.shape
    for s in seqs:
        _check_sequence(s, (c, v, m), out, len(converted.class_names))
    lengths = np.array([s.x.shape[1] for s in seqs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tmp = _atomic_dir(out)
    frames = np.lib.format.open_memmap(
        tmp / "x.npy", mode="w+", dtype=np.float32, shape=(int(offsets[-1]), c, v, m)
    )
    for i, s in enumerate(seqs):
        x = s.x[None].astype(np.float32)
        if transform is not None:
            x, _ = transform(x, lengths[i : i + 1].copy())
        frames[offsets[i] : offsets[i + 1]] = x[0].transpose(1, 0, 2, 3)
    frames.flush()
    rows = [np.column_stack([np.full(len(s.intervals), i), s.intervals]) for i, s in enumerate(seqs)]
    intervals = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 4), np.int64)
    ids = [s.id for s in seqs]
    splits = _split_indices(converted.sequence_splits, ids, str(out))
    np.save(tmp / "offsets.npy", offsets)
    np.save(tmp / "intervals.npy", intervals)
    (tmp / "ids.json").write_text(json.dumps(ids))
    (tmp / "splits.json").write_text(json.dumps(splits))
    h = hashlib.sha256()
    for start in range(0, len(frames), 65536):
        _hash_update(h, frames[start : start + 65536])
    _hash_update(h, offsets)
    _hash_update(h, intervals)
    h.update(json.dumps([ids, splits, converted.class_names], sort_keys=True).encode())
    del frames
    meta = _base_meta(converted, "untrimmed", c)
    meta.update(
        num_sequences=len(seqs),
        num_intervals=len(intervals),
        num_frames=int(offsets[-1]),
        preprocessing=preprocessing or {},
        skipped=[s.to_dict() for s in converted.skipped],
        fingerprint=h.hexdigest()[:16],
    )
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    _finish_dir(tmp, out)
    return UntrimmedStore(out)


def _check_sequence(s: Sequence, cvm: tuple[int, int, int], out: Path, num_classes: int) -> None:
    c, v, m = cvm
    if s.x.ndim != 4 or (s.x.shape[0], s.x.shape[2], s.x.shape[3]) != (c, v, m) or s.x.shape[1] < 1:
        raise DataError(f"sequence shape {s.x.shape} does not match (C={c}, T>=1, V={v}, M={m})",
                        path=out, sample=s.id)
    iv = np.asarray(s.intervals).reshape(-1, 3)
    t = s.x.shape[1]
    bad = (iv[:, 1] < 0) | (iv[:, 2] > t) | (iv[:, 1] >= iv[:, 2])
    if bad.any():
        row = iv[np.argmax(bad)].tolist()
        raise DataError(f"interval (label, start, end) = {row} is not inside 0..{t} frames",
                        path=out, sample=s.id)
    if num_classes and ((iv[:, 0] < 0) | (iv[:, 0] >= num_classes)).any():
        raise DataError(f"interval labels outside 0..{num_classes - 1}", path=out, sample=s.id)


def write_store(
    out: str | Path,
    converted: Converted,
    options: WriteOptions | None = None,
    transform: BatchTransform | None = None,
    preprocessing: dict[str, Any] | None = None,
) -> SkeletonStore | UntrimmedStore:
    """Write whatever ``converted`` holds: trimmed samples at ``out``, sequences at ``out/untrimmed``.

    Returns the trimmed store when there is one, else the untrimmed one.
    """
    out = Path(out)
    untrimmed = None
    if converted.sequences:
        out.mkdir(parents=True, exist_ok=True)
        untrimmed = write_untrimmed(out / UNTRIMMED_DIR, converted, transform, preprocessing)
    if converted.samples:
        return write_trimmed(out, converted, options, transform, preprocessing)
    if untrimmed is None:
        raise DataError("the source produced neither samples nor sequences", path=out)
    return untrimmed


def iter_chunks(store: SkeletonStore, size: int = _CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, x[start:start+size])`` over a store, as in-memory chunks."""
    for start in range(0, len(store), size):
        yield start, np.asarray(store.x[start : start + size])
