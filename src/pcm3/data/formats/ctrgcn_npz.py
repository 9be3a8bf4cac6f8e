"""The CTR-GCN / MAMP ``.npz`` layout (``src`` is the file).

Members ``x_train (N, T, M*V*3)``, ``y_train`` (one-hot ``(N, K)`` or ints ``(N,)``), ``x_test``,
``y_test``. Each frame's features are ordered (person, joint, xyz), as CTR-GCN reshapes them:
``x.reshape(N, T, M, V, 3)``. V comes from the layout (default ``ntu25``; NTU files have
M = 2, V = 25). The valid length is the last frame with a non-zero coordinate + 1.
Splits ``train`` and ``test``; sample ids ``train_000123``.

Options read: ``layout``, ``labels`` (class names file), ``max_bodies``, ``skip_bad``.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions, check_coordinates
from pcm3.data.formats.stgcn_npy import (
    class_names_for,
    cut_to_length,
    integral_labels,
    limit_bodies,
    pickle_hint,
)
from pcm3.data.records import Converted, Sample
from pcm3.errors import DataError
from pcm3.layouts import Layout, get_layout

SPLITS = ("train", "test")


def _mapped_member(fh: BinaryIO, info: zipfile.ZipInfo, path: Path) -> np.ndarray | None:
    """A stored (uncompressed) ``.npy`` member as a read-only memory map, if possible."""
    fh.seek(info.header_offset)
    local = fh.read(30)
    if local[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            return None
    except ValueError:
        return None
    if dtype.hasobject or int(np.prod(shape)) == 0:
        return None  # refused / handled by the regular loader
    return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape,
                     order="F" if fortran else "C")


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every member of an ``.npz``: memory-mapped when stored uncompressed, else loaded.

    Pickled (object) members are refused with a :class:`DataError`.
    """
    out: dict[str, np.ndarray] = {}
    key = "?"
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                arr = _mapped_member(fh, info, path) if info.compress_type == 0 else None
                if arr is None:
                    with zf.open(info) as member:
                        arr = np.lib.format.read_array(member, allow_pickle=False)
                out[key] = arr
    except FileNotFoundError as exc:
        raise DataError("file not found", path=path) from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"not an .npz file ({exc})", path=path) from exc
    except ValueError as exc:
        raise DataError(f"cannot read array {key!r}: {exc}{pickle_hint(exc)}", path=path) from exc
    return out


def labels_from(y: np.ndarray, n: int, path: Path, split: str) -> np.ndarray:
    """``(N,)`` int64 from one-hot ``(N, K)`` rows or integer labels ``(N,)``."""
    if y.shape[:1] != (n,) or y.ndim not in (1, 2):
        raise DataError(f"y_{split} has shape {y.shape}, expected ({n},) or ({n}, K) one-hot",
                        path=path)
    if y.ndim == 1:
        return integral_labels(y, path, f"y_{split}")
    y = np.asarray(y, dtype=np.float64)
    bad = ~(np.isin(y, (0.0, 1.0)).all(axis=1) & (y.sum(axis=1) == 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"y_{split} row {i} is not one-hot (one 1, the rest 0)", path=path,
                        sample=f"{split}_{i:06d}")
    return y.argmax(axis=1).astype(np.int64)


def _check_x(x: np.ndarray, split: str, path: Path, layout: Layout) -> None:
    v = layout.num_joints
    if x.ndim != 3 or x.shape[2] % (v * 3) or x.shape[2] == 0:
        raise DataError(f"x_{split} has shape {x.shape}, expected (N, T, M*{v}*3) for layout "
                        f"{layout.name!r}", path=path)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"x_{split} must hold numbers, got dtype {x.dtype}", path=path)


def _read_split(x: np.ndarray, labels: np.ndarray, split: str, path: Path, layout: Layout,
                options: ReadOptions, bad: BadSamples) -> list[Sample]:
    v = layout.num_joints
    n, t, features = x.shape
    m = features // (v * 3)
    keep = min(options.max_bodies, m)

    def one(i: int, sid: str) -> Sample:
        clip = np.asarray(x[i], dtype=np.float32).reshape(t, m, v, 3).transpose(3, 0, 2, 1)
        clip = cut_to_length(clip, None, path, sid)  # (3, T_i, V, M)
        check_coordinates(clip, path, sid, v)
        return Sample(id=sid, x=limit_bodies(clip, keep), label=int(labels[i]))

    ids = [f"{split}_{i:06d}" for i in range(n)]
    samples = [bad.attempt(lambda i=i: one(i, ids[i]), path, ids[i]) for i in range(n)]
    return [s for s in samples if s is not None]


def read(src: Path, options: ReadOptions) -> Converted:
    """Read the ``train`` and ``test`` members of ``src`` (see the module docstring)."""
    src = Path(src)
    layout = get_layout(options.layout or "ntu25")
    arrays = npz_arrays(src)
    present = [split for split in SPLITS if f"x_{split}" in arrays]
    if not present:
        raise DataError(f"no x_train / x_test member (members: {sorted(arrays)})", path=src)
    bad = BadSamples(options.skip_bad)
    samples: list[Sample] = []
    splits: dict[str, list[str]] = {}
    all_labels = []
    for split in present:
        x = arrays[f"x_{split}"]
        if f"y_{split}" not in arrays:
            raise DataError(f"x_{split} has no matching y_{split}", path=src)
        _check_x(x, split, src, layout)
        labels = labels_from(arrays[f"y_{split}"], len(x), src, split)
        split_samples = _read_split(x, labels, split, src, layout, options, bad)
        splits[split] = [s.id for s in split_samples]
        samples.extend(split_samples)
        all_labels.append(labels)
        y = arrays[f"y_{split}"]
        if y.ndim == 2:  # one-hot width = number of classes, even if the last ones are unused
            all_labels.append(np.array([y.shape[1] - 1]))
    return Converted(
        layout=layout,
        class_names=class_names_for(np.concatenate(all_labels), options.labels),
        samples=samples,
        splits=splits,
        skipped=bad.skipped,
        source={"format": "ctrgcn-npz", "path": str(src), "splits": present},
    )
