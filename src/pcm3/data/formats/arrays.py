"""Plain NumPy arrays: the documented way in for your own data (see ``docs/custom_data.md``).

Trimmed clips: ``src`` is an ``.npz`` file, or a folder holding ``x.npy`` and friends (or one
``.npz``). Arrays (loaded without pickles):

- ``x``: float ``(N, T, V, C)`` or ``(N, M, T, V, C)``, C in {2, 3}, V = the layout's joints;
- ``y`` ``(N,)`` ints (-1 = unlabelled), ``lengths`` ``(N,)`` in 1..T (default: last frame
  with a non-zero coordinate + 1), ``ids`` ``(N,)`` strings, ``class_names`` ``(K,)`` strings;
- ``split_<name>``: int indices or a boolean mask of length N -> split ``<name>``, ``__``
  standing for ``/`` (``split_xsub__train`` -> ``xsub/train``).

Untrimmed sequences (detection), in a folder ``src``: ``sequences/<id>.npy`` of shape
``(T, V, C)`` or ``(M, T, V, C)``, ``intervals.csv`` with header ``sequence,label,start,end``
(end exclusive; label a 0-based int or a name in ``class_names.txt``), and optionally
``sequence_splits.csv`` with header ``sequence,split``. A folder may hold both kinds.

Options read: ``layout`` (required), ``max_bodies``, ``skip_bad``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions, check_coordinates
from pcm3.data.formats.ctrgcn_npz import npz_arrays
from pcm3.data.formats.stgcn_npy import cut_to_length, integral_labels, limit_bodies, load_npy
from pcm3.data.records import Converted, Sample, Sequence
from pcm3.errors import DataError
from pcm3.layouts import Layout, get_layout

SEQUENCES_DIR = "sequences"
INTERVALS_FILE = "intervals.csv"
SEQUENCE_SPLITS_FILE = "sequence_splits.csv"
CLASS_NAMES_FILE = "class_names.txt"
_TRIMMED_KEYS = ("x", "y", "lengths", "ids", "class_names")


def _trimmed_source(src: Path) -> tuple[dict[str, np.ndarray], Path] | None:
    """The trimmed arrays of ``src`` and the file they came from, or None if it has none."""
    if src.is_file():
        if src.suffix != ".npz":
            raise DataError("expected an .npz file or a folder (x.npy, ... or sequences/)",
                            path=src)
        return npz_arrays(src), src
    if not src.is_dir():
        raise DataError("no such file or folder", path=src)
    npz = sorted(src.glob("*.npz"))
    if (src / "x.npy").exists():
        if npz:
            raise DataError(f"both x.npy and {npz[0].name}: keep one source of clips", path=src)
        return {p.stem: load_npy(p, mmap=True) for p in sorted(src.glob("*.npy"))}, src / "x.npy"
    if len(npz) > 1:
        raise DataError(f"several .npz files ({[p.name for p in npz]}); pass one", path=src)
    return (npz_arrays(npz[0]), npz[0]) if npz else None


def _strings(arr: np.ndarray, n: int | None, path: Path, key: str) -> list[str]:
    if arr.ndim != 1 or arr.dtype.kind not in "US" or (n is not None and len(arr) != n):
        want = f"({n},)" if n is not None else "1-D"
        raise DataError(f"{key!r} must be {want} strings (dtype=str), got {arr.dtype} {arr.shape}",
                        path=path)
    return [s.decode() if isinstance(s, bytes) else str(s) for s in arr.tolist()]


def _class_names(arrays: dict[str, np.ndarray], folder: Path, path: Path) -> list[str] | None:
    from_array = _strings(arrays["class_names"], None, path, "class_names") \
        if "class_names" in arrays else None
    text = folder / CLASS_NAMES_FILE
    try:
        lines = text.read_text().splitlines() if text.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read class names: {exc}", path=text) from exc
    from_text = None if lines is None else [s.strip() for s in lines if s.strip()]
    if from_array is not None and from_text is not None and from_array != from_text:
        raise DataError(f"class_names in {path.name} and {CLASS_NAMES_FILE} differ", path=folder)
    return from_array if from_array is not None else from_text


def _split_members(arr: np.ndarray, n: int, key: str, path: Path) -> np.ndarray:
    """Indices from ``split_*`` int indices or a boolean mask of length N."""
    if arr.ndim != 1:
        raise DataError(f"{key!r} must be 1-D, got shape {arr.shape}", path=path)
    if arr.dtype == bool:
        if len(arr) != n:
            raise DataError(f"boolean mask {key!r} has length {len(arr)}, expected {n}", path=path)
        return np.flatnonzero(arr)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{key!r} must hold int indices or a boolean mask, got {arr.dtype}",
                        path=path)
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise DataError(f"{key!r} index {int(arr[np.argmax(bad)])} outside 0..{n - 1}", path=path)
    return np.unique(arr)


def read_trimmed(arrays: dict[str, np.ndarray], path: Path, layout: Layout, options: ReadOptions,
                 bad: BadSamples, num_classes: int | None) -> tuple[list[Sample], dict[str, list]]:
    """``x`` and friends -> samples ``(C, T, V, M)`` and splits."""
    unknown = [k for k in arrays if k not in _TRIMMED_KEYS and not k.startswith("split_")]
    if unknown or "x" not in arrays:
        problem = f"unknown arrays {unknown}" if unknown else "no array 'x'"
        raise DataError(f"{problem}; expected x, y, lengths, ids, class_names, split_<name>",
                        path=path)
    x = arrays["x"]
    if x.ndim == 4:
        x = x[:, None]
    v = layout.num_joints
    if x.ndim != 5 or x.shape[3] != v or x.shape[4] not in (2, 3) or x.shape[2] == 0:
        raise DataError(f"x has shape {arrays['x'].shape}, expected (N, T, {v}, C) or "
                        f"(N, M, T, {v}, C) with C = 2 or 3 for layout {layout.name!r}", path=path)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"x must hold numbers, got dtype {x.dtype}", path=path)
    n, m, t = x.shape[:3]

    def column(key: str) -> np.ndarray | None:
        if key not in arrays:
            return None
        values = integral_labels(arrays[key], path, key, minimum=-1 if key == "y" else None)
        if len(values) != n:
            raise DataError(f"{key!r} has {len(values)} entries for {n} clips", path=path)
        return values

    y, lengths = column("y"), column("lengths")
    ids = _strings(arrays["ids"], n, path, "ids") if "ids" in arrays \
        else [f"sample_{i:06d}" for i in range(n)]
    if len(set(ids)) != n:
        raise DataError("'ids' are not unique", path=path)
    keep = min(options.max_bodies, m)

    def one(i: int) -> Sample:
        label = -1 if y is None else int(y[i])
        if num_classes is not None and label >= num_classes:
            raise DataError(f"label {label} outside 0..{num_classes - 1} (class_names)",
                            path=path, sample=ids[i])
        clip = np.asarray(x[i], dtype=np.float32).transpose(3, 1, 2, 0)  # (C, T, V, M)
        if lengths is not None and not 1 <= lengths[i] <= t:
            raise DataError(f"length {lengths[i]} outside 1..{t}", path=path, sample=ids[i])
        clip = cut_to_length(clip, None if lengths is None else lengths[i], path, ids[i])
        check_coordinates(clip, path, ids[i], v)
        return Sample(id=ids[i], x=limit_bodies(clip, keep), label=label)

    attempts = [bad.attempt(lambda i=i: one(i), path, ids[i]) for i in range(n)]
    samples = [s for s in attempts if s is not None]
    read_ids = {s.id for s in samples}
    splits = {}
    for key in sorted(k for k in arrays if k.startswith("split_")):
        members = _split_members(arrays[key], n, key, path)
        splits[key[len("split_"):].replace("__", "/")] = [
            ids[i] for i in members.tolist() if ids[i] in read_ids
        ]
    return samples, splits


def csv_rows(path: Path, header: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs of a CSV file whose header is exactly ``header``."""
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh, skipinitialspace=True)
            if tuple(reader.fieldnames or ()) != header:
                raise DataError(f"header {reader.fieldnames}, expected {','.join(header)}",
                                path=path, line=1)
            return [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read CSV: {exc}", path=path) from exc


def interval_row(row: dict[str, str], line: int, t: int, names: list[str] | None,
              path: Path) -> tuple[int, int, int]:
    seq, label = row["sequence"], (row["label"] or "").strip()
    try:
        start, end = int(row["start"]), int(row["end"])
    except (TypeError, ValueError) as exc:
        raise DataError("start and end must be integers", path=path, line=line, sample=seq) from exc
    if label.lstrip("-").isdigit():
        k = int(label)
    elif names is not None and label in names:
        k = names.index(label)
    else:
        known = f"; class names: {names}" if names else f" (no {CLASS_NAMES_FILE})"
        raise DataError(f"label {label!r} is neither an int nor a class name{known}",
                        path=path, line=line, sample=seq)
    if k < 0 or (names is not None and k >= len(names)):
        raise DataError(f"label {k} outside 0..{len(names or [0]) - 1}", path=path, line=line,
                        sample=seq)
    if not 0 <= start < end <= t:
        raise DataError(f"interval [{start}, {end}) is not inside the sequence's {t} frames "
                        "(need 0 <= start < end <= T)", path=path, line=line, sample=seq)
    return k, start, end


def read_untrimmed(folder: Path, layout: Layout, options: ReadOptions, bad: BadSamples,
                   names: list[str] | None) -> tuple[list[Sequence], dict[str, list[str]]]:
    """``sequences/*.npy`` + ``intervals.csv`` (+ ``sequence_splits.csv``) -> sequences."""
    files = {p.stem: p for p in sorted((folder / SEQUENCES_DIR).glob("*.npy"))}
    if not files:
        raise DataError("no .npy sequence in this folder", path=folder / SEQUENCES_DIR)
    csv_path = folder / INTERVALS_FILE
    rows_of: dict[str, list[tuple[int, dict[str, str]]]] = {sid: [] for sid in files}
    for line, row in csv_rows(csv_path, ("sequence", "label", "start", "end")):
        if row["sequence"] not in rows_of:
            raise DataError(f"unknown sequence {row['sequence']!r} (no {SEQUENCES_DIR}/"
                            f"{row['sequence']}.npy)", path=csv_path, line=line)
        rows_of[row["sequence"]].append((line, row))
    arrays = {sid: load_npy(p, mmap=True) for sid, p in files.items()}
    keep = max(1, min(options.max_bodies, max(a.shape[0] if a.ndim == 4 else 1
                                              for a in arrays.values())))
    first = next(iter(arrays.values()))
    channels = first.shape[-1] if first.ndim else 0

    def one(sid: str) -> Sequence:
        arr, v = arrays[sid], layout.num_joints
        if arr.ndim not in (3, 4) or arr.shape[-2:] != (v, channels) or channels not in (2, 3):
            raise DataError(f"shape {arr.shape}, expected (T, {v}, C) or (M, T, {v}, C) with the "
                            f"same C (2 or 3) in every sequence", path=files[sid], sample=sid)
        seq = np.asarray(arr if arr.ndim == 4 else arr[None], dtype=np.float32)
        x = np.ascontiguousarray(seq.transpose(3, 1, 2, 0))  # (C, T, V, M)
        check_coordinates(x, files[sid], sid, v)
        if not x.any():
            raise DataError("every coordinate is zero", path=files[sid], sample=sid)
        t = x.shape[1]
        rows = [interval_row(row, line, t, names, csv_path) for line, row in rows_of[sid]]
        intervals = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        return Sequence(id=sid, x=limit_bodies(x, keep), intervals=intervals)

    attempts = [bad.attempt(lambda sid=sid: one(sid), files[sid], sid) for sid in files]
    sequences = [s for s in attempts if s is not None]
    splits: dict[str, list[str]] = {}
    split_path = folder / SEQUENCE_SPLITS_FILE
    if split_path.exists():
        read_ids = {s.id for s in sequences}
        for line, row in csv_rows(split_path, ("sequence", "split")):
            if row["sequence"] not in files:
                raise DataError(f"unknown sequence {row['sequence']!r}", path=split_path, line=line)
            split = (row["split"] or "").strip()
            if not split:
                raise DataError("empty split name", path=split_path, line=line)
            if row["sequence"] in read_ids:
                splits.setdefault(split, []).append(row["sequence"])
    return sequences, splits


def read(src: Path, options: ReadOptions) -> Converted:
    """Read the trimmed arrays and/or untrimmed sequences of ``src`` (module docstring)."""
    src = Path(src)
    if options.layout is None:
        raise DataError("the arrays format needs a layout: --layout NAME or --layout layout.yaml",
                        path=src)
    layout = get_layout(options.layout)
    trimmed = _trimmed_source(src)
    has_sequences = src.is_dir() and (src / SEQUENCES_DIR).is_dir()
    if trimmed is None and not has_sequences:
        raise DataError("found no x.npy, .npz or sequences/ folder", path=src)
    folder = src if src.is_dir() else src.parent
    names = _class_names(trimmed[0] if trimmed else {}, folder, trimmed[1] if trimmed else src)
    bad = BadSamples(options.skip_bad)
    out = Converted(layout=layout, class_names=[], skipped=bad.skipped,
                    source={"format": "arrays", "path": str(src)})
    if trimmed is not None:
        out.samples, out.splits = read_trimmed(*trimmed, layout, options, bad,
                                               None if names is None else len(names))
    if has_sequences:
        out.sequences, out.sequence_splits = read_untrimmed(src, layout, options, bad, names)
    top = max([s.label for s in out.samples]
              + [int(s.intervals[:, 0].max(initial=-1)) for s in out.sequences], default=-1)
    out.class_names = names if names is not None else [f"label_{k}" for k in range(top + 1)]
    return out
