"""The ST-GCN / CMD / PCM3 array layout, plus the array helpers the other array readers share.

``src`` is a folder (or one ``{split}_data_joint.npy`` in it) holding, per split:

- ``{split}_data_joint.npy``: float ``(N, C, T, V, M)``, zero padded after each clip;
- ``{split}_label.pkl``: pickle of ``(sample_names, labels)`` (labels may be integral floats);
- ``{split}_num_frame.npy`` (optional): ``(N,)`` valid frames per clip (capped at T). Without it
  the valid length is the last frame with a non-zero coordinate + 1.

Options read: ``layout`` (default ``ntu25``), ``labels`` (a text file of class names, one per
line), ``max_bodies``, ``skip_bad``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions, check_coordinates
from pcm3.data.records import Converted, Sample
from pcm3.data.safe_pickle import safe_load_pickle
from pcm3.errors import DataError
from pcm3.layouts import Layout, get_layout

DATA_SUFFIX = "_data_joint.npy"

# ------------------------------------------------------------------ shared array helpers


def trailing_length(x: np.ndarray, path: Path | str, sample: str) -> int:
    """Valid frames of ``x (C, T, V, M)``: the last frame with a non-zero coordinate + 1."""
    frames = np.flatnonzero(np.any(x != 0, axis=(0, 2, 3)))
    if frames.size == 0:
        raise DataError("every coordinate is zero (empty sample)", path=path, sample=sample)
    return int(frames[-1]) + 1


def cut_to_length(x: np.ndarray, length: int | None, path: Path | str, sample: str) -> np.ndarray:
    """``x (C, T, V, M)`` cut to ``length`` frames (None: :func:`trailing_length`).

    Raises a :class:`DataError` when no non-zero coordinate is left.
    """
    x = x[:, : trailing_length(x, path, sample) if length is None else int(length)]
    if not x.any():
        raise DataError("every coordinate is zero (empty sample)", path=path, sample=sample)
    return np.ascontiguousarray(x)


def limit_bodies(x: np.ndarray, keep: int) -> np.ndarray:
    """``x (C, T, V, M)`` -> ``(C, T, V, keep)``.

    More than ``keep`` bodies: the ``keep`` most active ones (by motion energy, most active
    first); fewer: zero bodies appended; as many: ``x`` unchanged (order kept).
    """
    m = x.shape[3]
    if m == keep:
        return x
    if m < keep:
        return np.concatenate([x, np.zeros((*x.shape[:3], keep - m), dtype=x.dtype)], axis=3)
    from pcm3.data.preprocess import select_bodies

    kept = select_bodies(x.transpose(3, 1, 2, 0), keep=keep)  # (keep, T, V, C)
    return np.ascontiguousarray(np.asarray(kept, dtype=np.float32).transpose(3, 1, 2, 0))


def integral_labels(values: Any, path: Path | str, what: str = "labels",
                    minimum: int | None = -1) -> np.ndarray:
    """``(N,)`` int64 from ints or integral floats, each ``>= minimum`` (-1 = unlabelled)."""
    try:
        arr = np.asarray(values)
        numbers = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be a list of numbers ({exc})", path=path) from exc
    if arr.dtype == bool or numbers.ndim != 1:
        raise DataError(f"{what} must be a 1-D list of integers, got {arr.dtype} {arr.shape}",
                        path=path)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if minimum is not None:
        bad |= numbers < minimum
    if bad.any():
        i = int(np.argmax(bad))
        lower = "" if minimum is None else f" >= {minimum}" + " (-1 = unlabelled)" * (minimum == -1)
        raise DataError(f"{what}[{i}] = {numbers[i]:g} is not an integer{lower}", path=path)
    return numbers.astype(np.int64)


def class_names_for(labels: np.ndarray, names_file: Path | None) -> list[str]:
    """Class names from ``names_file`` (one per line) or ``label_0 .. label_{max}``."""
    top = int(labels.max(initial=-1))
    if names_file is None:
        return [f"label_{k}" for k in range(top + 1)]
    try:
        names = [line.strip() for line in Path(names_file).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DataError(f"cannot read the class names file: {exc}", path=names_file) from exc
    if top >= len(names):
        raise DataError(f"{len(names)} class names, but labels go up to {top}", path=names_file)
    return names


def pickle_hint(exc: Exception) -> str:
    """A hint for numpy's refusal to load object (pickled) arrays."""
    if "pickle" not in str(exc) and "Python objects" not in str(exc):
        return ""
    return " (object arrays are refused: store strings as np.array(..., dtype=str))"


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` without pickles; errors name the file."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as exc:
        raise DataError("file not found", path=path) from exc
    except ValueError as exc:
        raise DataError(f"cannot read array: {exc}{pickle_hint(exc)}", path=path) from exc
    except OSError as exc:
        raise DataError(f"not a .npy file: {exc}", path=path) from exc


# ------------------------------------------------------------------ the reader


def _split_files(src: Path) -> dict[str, Path]:
    if src.is_file() and src.name.endswith(DATA_SUFFIX):
        return {src.name[: -len(DATA_SUFFIX)]: src}
    if not src.is_dir():
        raise DataError(f"expected a folder with *{DATA_SUFFIX} files", path=src)
    found = {p.name[: -len(DATA_SUFFIX)]: p for p in sorted(src.glob("*" + DATA_SUFFIX))}
    if not found:
        raise DataError(f"no *{DATA_SUFFIX} file (e.g. train{DATA_SUFFIX})", path=src)
    return found


def _read_label_pickle(path: Path, n: int) -> tuple[list[str], np.ndarray]:
    content = safe_load_pickle(path)
    if not isinstance(content, (tuple, list)) or len(content) != 2:
        raise DataError("expected a pickle of (sample_names, labels)", path=path)
    if not isinstance(content[0], (list, tuple, np.ndarray)):
        raise DataError("sample_names must be a list of strings", path=path)
    names = [name.decode() if isinstance(name, bytes) else str(name) for name in content[0]]
    labels = integral_labels(content[1], path)
    if len(names) != n or len(labels) != n:
        raise DataError(f"{len(names)} names and {len(labels)} labels for {n} samples", path=path)
    if len(set(names)) != n:
        dup = next(name for name, count in Counter(names).items() if count > 1)
        raise DataError(f"sample name {dup!r} appears more than once", path=path)
    return names, labels


def _read_num_frame(path: Path, n: int, t: int) -> np.ndarray | None:
    if not path.exists():
        return None
    frames = load_npy(path)
    if frames.shape != (n,) or not np.issubdtype(frames.dtype, np.number):
        raise DataError(f"expected ({n},) numbers, got {frames.dtype} {frames.shape}", path=path)
    return np.minimum(integral_labels(frames, path, "num_frame", minimum=None), t)  # cap at T


def _read_split(data_path: Path, split: str, layout: Layout, options: ReadOptions,
                bad: BadSamples) -> tuple[list[Sample], list[str], np.ndarray]:
    x = load_npy(data_path, mmap=True)
    if x.ndim != 5 or x.shape[1] not in (2, 3) or x.shape[3] != layout.num_joints:
        raise DataError(f"shape {x.shape}, expected (N, C in 2|3, T, {layout.num_joints}, M) for "
                        f"layout {layout.name!r}", path=data_path)
    n, t = x.shape[0], x.shape[2]
    folder = data_path.parent
    names, labels = _read_label_pickle(folder / f"{split}_label.pkl", n)
    num_frame = _read_num_frame(folder / f"{split}_num_frame.npy", n, t)
    keep = min(options.max_bodies, x.shape[4])

    def one(i: int) -> Sample:
        if num_frame is not None and num_frame[i] < 1:
            raise DataError(f"num_frame {num_frame[i]} < 1", path=data_path, sample=names[i])
        clip = np.array(x[i], dtype=np.float32)  # one sample copied out of the memory map
        clip = cut_to_length(clip, None if num_frame is None else num_frame[i], data_path, names[i])
        check_coordinates(clip, data_path, names[i], layout.num_joints)
        return Sample(id=names[i], x=limit_bodies(clip, keep), label=int(labels[i]))

    samples = [bad.attempt(lambda i=i: one(i), data_path, names[i]) for i in range(n)]
    return [s for s in samples if s is not None], names, labels


def read(src: Path, options: ReadOptions) -> Converted:
    """Read every split of ``src`` (see the module docstring)."""
    layout = get_layout(options.layout or "ntu25")
    bad = BadSamples(options.skip_bad)
    per_split = {
        split: _read_split(path, split, layout, options, bad)
        for split, path in _split_files(Path(src)).items()
    }
    all_names = [name for _, names, _ in per_split.values() for name in names]
    prefix = len(set(all_names)) != len(all_names)  # names collide across splits
    samples: list[Sample] = []
    splits: dict[str, list[str]] = {}
    for split, (split_samples, _, _) in per_split.items():
        for s in split_samples:
            s.id = f"{split}/{s.id}" if prefix else s.id
        splits[split] = [s.id for s in split_samples]
        samples.extend(split_samples)
    labels = np.concatenate([lab for _, _, lab in per_split.values()])
    return Converted(
        layout=layout,
        class_names=class_names_for(labels, options.labels),
        samples=samples,
        splits=splits,
        skipped=bad.skipped,
        source={"format": "stgcn-npy", "path": str(src), "splits": sorted(per_split)},
    )
