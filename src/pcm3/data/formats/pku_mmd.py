"""Reader ``pku-mmd``: PKU-MMD (Part I or II) -> untrimmed sequences and trimmed samples.

Layout of ``src`` (official folder names accepted too)::

    skeleton/<video>.txt      (or PKU_Skeleton_Renew/) one line per frame, 150 numbers =
                              2 bodies x 25 joints x (x, y, z)
    labels/<video>.txt        (or label/, Train_Label_PKU_final/, or ``options.labels``)
                              one line per action: ``label(1..51),start,end,confidence``
    splits/cross-subject.txt  "Training videos:" line, a comma-separated list line, then
    splits/cross-view.txt     "Validation videos:" (or the official "Validataion") and a list
    actions.csv               optional ``label,action`` table (else the built-in 51 names)

Every skeleton file with a label file gives one :class:`Sequence` ``x (3, T, 25, M)`` with
intervals ``(label - 1, start, end)``, frames ``[start, end)`` 0-based, and one
:class:`Sample` per interval (id ``<video>_<k>``, ``k`` 0-based). ``M = options.max_bodies``
bodies of highest motion energy (per sequence, per clip). An ``end`` one past the last frame
is clipped (counted in ``source["clipped_intervals"]``). Splits ``xsub/*`` and ``xview/*`` for
both samples and sequences. Options read: ``labels``, ``split_file`` (xsub), ``max_bodies``,
``skip_bad``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions
from pcm3.data.formats.text_numbers import parse_numeric_text
from pcm3.data.records import Converted, Sample, Sequence
from pcm3.errors import ConfigError, DataError
from pcm3.layouts import NTU25

BODIES, JOINTS = 2, 25
VALUES_PER_FRAME = BODIES * JOINTS * 3
SKELETON_DIRS = ("skeleton", "PKU_Skeleton_Renew")
LABEL_DIRS = ("labels", "label", "Train_Label_PKU_final")
SPLIT_DIRS = ("splits", "split", "Split", ".")
SPLIT_FILES = {
    "xsub": ("cross-subject.txt", "cross_subject_v2.txt", "pku_cross_subject_v2.txt"),
    "xview": ("cross-view.txt", "cross_view_v2.txt", "pku_cross_view_v2.txt"),
}
# the 51 PKU-MMD classes, labels 1..51 (the official Actions.xlsx)
PKU_ACTION_NAMES = (
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up",
    "clapping", "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack",
    "falling", "giving something to other person", "hand waving", "handshaking",
    "hopping (one foot jumping)", "hugging other person", "jump up", "kicking other person",
    "kicking something", "make a phone call/answer phone", "pat on back of other person",
    "pickup", "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person",
    "pushing other person", "put on a hat/cap", "put something inside pocket", "reading",
    "rub two hands together", "salute", "sitting down", "standing up", "take off a hat/cap",
    "take off glasses", "take off jacket", "take out something from pocket",
    "taking a selfie", "tear up paper", "throw", "touch back (backache)",
    "touch chest (stomachache/heart pain)", "touch head (headache)", "touch neck (neckache)",
    "typing on a keyboard", "use a fan (with hand or paper)/feeling warm", "wear jacket",
    "wear on glasses", "wipe face", "writing",
)  # fmt: skip


def read_skeleton_bodies(path: Path) -> np.ndarray:
    """One skeleton file as ``(2, T, 25, 3)`` float32 bodies (every line: 150 finite numbers)."""
    text = parse_numeric_text(path)
    n_frames = text.last_line + 1
    text.require_counts(np.arange(n_frames), VALUES_PER_FRAME, "frame")
    text.require_finite(np.arange(text.values.size), "coordinates")
    frames = text.values.reshape(n_frames, BODIES, JOINTS, 3)
    return np.ascontiguousarray(frames.transpose(1, 0, 2, 3), dtype=np.float32)


def read_intervals(path: Path, n_frames: int, n_classes: int) -> tuple[np.ndarray, int]:
    """``(K, 3)`` int64 rows ``(label - 1, start, end)`` of a label file and the number of
    intervals whose ``end == n_frames + 1`` was clipped to ``n_frames``."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read label file: {exc.strerror or exc}", path=path) from exc
    rows: list[tuple[int, int, int]] = []
    clipped = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) != 4:
                raise ValueError
            label, start, end = (int(f) for f in fields[:3])
            confidence = float(fields[3])
        except ValueError:
            raise DataError(
                f"expected 'label,start,end,confidence' (integers, then a number), got "
                f"{line.strip()[:60]!r}",
                path=path,
                line=number,
            ) from None
        if not 1 <= label <= n_classes:
            raise DataError(f"label {label} outside 1..{n_classes}", path=path, line=number)
        if not np.isfinite(confidence):
            raise DataError(f"confidence {fields[3]!r} is not finite", path=path, line=number)
        if start < 0 or start >= end or end > n_frames + 1:
            raise DataError(
                f"interval [{start}, {end}) is not inside the {n_frames} skeleton frames "
                f"(expected 0 <= start < end <= {n_frames})",
                path=path,
                line=number,
            )
        if end == n_frames + 1:
            end, clipped = n_frames, clipped + 1
            if start >= end:
                raise DataError(f"interval [{start}, {end}) is empty", path=path, line=number)
        rows.append((label - 1, start, end))
    if not rows:
        raise DataError("no action interval in the label file", path=path)
    return np.array(rows, dtype=np.int64), clipped


def read_split_file(path: Path) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...]}`` video names of an official PKU-MMD split file."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read split file: {exc.strerror or exc}", path=path) from exc
    lists: dict[str, list[str]] = {"train": [], "val": []}
    headers: set[str] = set()
    current: str | None = None
    for number, line in enumerate(lines, start=1):
        head, colon, rest = line.partition(":")
        key = head.strip().lower()
        if colon and key.endswith("videos") and key.startswith(("train", "valid", "test")):
            current = "train" if key.startswith("train") else "val"
            headers.add(current)
            line = rest
        names = [n.removesuffix(".txt") for n in re.split(r"[,\s]+", line) if n]
        if names and current is None:
            raise DataError("video names before a 'Training videos:' line", path=path, line=number)
        if current is not None:
            lists[current].extend(names)
    if headers != {"train", "val"}:
        raise DataError(
            "expected a 'Training videos:' and a 'Validation videos:' line, each followed by a "
            "comma-separated list of video names",
            path=path,
        )
    both = set(lists["train"]) & set(lists["val"])
    if both:
        raise DataError(f"videos in both training and validation lists: {sorted(both)[:5]}",
                        path=path)  # fmt: skip
    return lists


def read_class_names(path: Path) -> list[str]:
    """Class names from an ``actions.csv`` ``label,action`` table (labels 1..K in order)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = [r for r in csv.reader(handle) if any(c.strip() for c in r)]
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]  # header
    labels = [r[0].strip() for r in rows]
    if not rows or any(len(r) < 2 for r in rows) or labels != [str(i + 1) for i in range(len(rows))]:
        raise DataError("expected 'label,action' rows with labels 1, 2, ..., K", path=path)
    return [r[1].strip() for r in rows]


def _first_dir(root: Path, names: tuple[str, ...], what: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"no {what} folder; expected one of {', '.join(names)}", path=root)


def _split_path(root: Path, kind: str, options: ReadOptions) -> Path | None:
    if kind == "xsub" and options.split_file is not None:
        return Path(options.split_file)
    for folder in SPLIT_DIRS:
        for name in SPLIT_FILES[kind]:
            if (root / folder / name).is_file():
                return root / folder / name
    if kind == "xview" and options.split_file is not None:
        return None  # a custom xsub split without a cross-view file: no xview split
    raise DataError(f"split file not found; expected {root / SPLIT_DIRS[0] / SPLIT_FILES[kind][0]}",
                    path=root)  # fmt: skip


def _to_ctvm(bodies: np.ndarray, keep: int) -> np.ndarray:
    """``(B, T, 25, 3)`` bodies -> ``(3, T, 25, keep)`` float32 of the most moving ones."""
    from pcm3.data.preprocess import select_bodies  # lazy: preprocess sits downstream of us

    return np.ascontiguousarray(select_bodies(bodies, keep).transpose(3, 1, 2, 0), np.float32)


def read_video(
    skeleton: Path, labels: Path, n_classes: int, keep: int
) -> tuple[Sequence, list[Sample], int]:
    """One video: its sequence, one sample per interval, and the number of clipped ends."""
    bodies = read_skeleton_bodies(skeleton)
    intervals, clipped = read_intervals(labels, bodies.shape[1], n_classes)
    video = skeleton.stem
    samples = [
        Sample(f"{video}_{k}", _to_ctvm(bodies[:, start:end], keep), int(label))
        for k, (label, start, end) in enumerate(intervals.tolist())
    ]
    return Sequence(video, _to_ctvm(bodies, keep), intervals), samples, clipped


def read(src: Path, options: ReadOptions) -> Converted:
    """Read a PKU-MMD root folder into sequences, trimmed samples and xsub/xview splits."""
    if options.max_bodies < 1:
        raise ConfigError(f"max_bodies must be >= 1, got {options.max_bodies}")
    if not src.is_dir():
        raise DataError("expected a PKU-MMD root folder", path=src)
    skeleton_dir = _first_dir(src, SKELETON_DIRS, "skeleton")
    if options.labels is not None:
        label_dir = Path(options.labels)
        if not label_dir.is_dir():
            raise DataError("expected a folder of PKU-MMD label files", path=label_dir)
    else:
        label_dir = _first_dir(src, LABEL_DIRS, "label")
    split_paths = {kind: _split_path(src, kind, options) for kind in SPLIT_FILES}
    split_lists = {k: read_split_file(p) for k, p in split_paths.items() if p is not None}
    csv_path = src / "actions.csv"
    class_names = read_class_names(csv_path) if csv_path.is_file() else list(PKU_ACTION_NAMES)

    skeletons = sorted(skeleton_dir.glob("*.txt"))
    labelled = [p for p in skeletons if (label_dir / p.name).is_file()]
    if not labelled:
        raise DataError(
            f"no skeleton file with a label file of the same name in {label_dir}",
            path=skeleton_dir,
        )
    bad = BadSamples(options.skip_bad)
    sequences: list[Sequence] = []
    samples: list[Sample] = []
    clipped = 0
    for path in labelled:
        result = bad.attempt(
            lambda p=path: read_video(p, label_dir / p.name, len(class_names), options.max_bodies),
            path,
            path.stem,
        )
        if result is not None:
            sequences.append(result[0])
            samples.extend(result[1])
            clipped += result[2]
    if not sequences:
        raise DataError(f"no readable video ({len(bad.skipped)} skipped)", path=src)

    splits: dict[str, list[str]] = {}
    sequence_splits: dict[str, list[str]] = {}
    for kind, lists in split_lists.items():
        for part, names in lists.items():
            members = set(names)
            sequence_splits[f"{kind}/{part}"] = [s.id for s in sequences if s.id in members]
            splits[f"{kind}/{part}"] = [s.id for s in samples if s.id.rsplit("_", 1)[0] in members]
    return Converted(
        layout=NTU25,
        class_names=class_names,
        samples=samples,
        splits=splits,
        sequences=sequences,
        sequence_splits=sequence_splits,
        skipped=bad.skipped,
        source={
            "format": "pku-mmd",
            "path": str(src),
            "skeleton_dir": str(skeleton_dir),
            "label_dir": str(label_dir),
            "split_files": {k: str(p) for k, p in split_paths.items() if p is not None},
            "class_names": str(csv_path) if csv_path.is_file() else "built-in",
            "unlabelled_skeletons": sorted({p.stem for p in skeletons} - {p.stem for p in labelled}),
            "clipped_intervals": clipped,
        },
    )
