"""Videos -> skeletons with a pose estimator: MediaPipe Pose by default (``pip install 'pcm3[video]'``;
layout ``mediapipe33``, one person per video). See ``docs/video.md``.

Trimmed clips, labelled by folder: ``VIDEOS/<class>/<name>.mp4`` (any suffix of
:data:`~pcm3.data.pose.frames.VIDEO_SUFFIXES`); videos directly in ``VIDEOS`` are unlabelled
(label -1); ``src`` may also be one video file. Sample ids are the paths without suffix
(``<class>/<name>``). Classes are the folder names, sorted, or the order of ``class_names.txt``
when present. Optional ``clip_splits.csv`` with header ``clip,split`` puts clips into splits. Each
clip is cut to the frames from the first to the last one with a person; frames without one in
between stay empty (the store's null-frame repair handles what it can).

Untrimmed recordings (detection), as in the ``arrays`` format: ``VIDEOS/sequences/<id>.mp4``,
``intervals.csv`` (``sequence,label,start,end`` in video frames, end exclusive),
``class_names.txt``, optional ``sequence_splits.csv``. Recordings are never cut (the intervals
index their frames); frames without a person stay empty.

Options read: ``skip_bad`` (a bad video: unreadable, no frames, nobody in any frame) and
``video`` (:class:`~pcm3.data.pose.estimator.VideoPoseOptions`: coordinates, visibility threshold,
estimator, progress bars).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.formats.arrays import (
    CLASS_NAMES_FILE,
    INTERVALS_FILE,
    SEQUENCE_SPLITS_FILE,
    SEQUENCES_DIR,
    csv_rows,
    interval_row,
)
from pcm3.data.formats.base import BadSamples, ReadOptions
from pcm3.data.pose.estimator import VideoPoseOptions
from pcm3.data.pose.frames import VIDEO_SUFFIXES
from pcm3.data.pose.video_skeleton import VideoSkeleton, check_options, estimate_video
from pcm3.data.records import Converted, Sample, Sequence
from pcm3.errors import DataError
from pcm3.layouts import get_layout

CLIP_SPLITS_FILE = "clip_splits.csv"


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def find_clips(src: Path) -> list[tuple[str, Path, str | None]]:
    """``(sample id, path, class folder or None)`` of every trimmed clip under ``src``."""
    if src.is_file():
        return [(src.stem, src, None)]
    clips: list[tuple[str, Path, str | None]] = [(p.stem, p, None) for p in _videos(src)]
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and p.name != SEQUENCES_DIR
                         and not p.name.startswith(".")):
        clips += [(f"{folder.name}/{p.stem}", p, folder.name) for p in _videos(folder)]
    seen: dict[str, Path] = {}
    for sid, path, _ in clips:
        if sid in seen:
            raise DataError(f"two videos give the sample id {sid!r} ({seen[sid].name} and {path.name}); "
                            "rename one", path=path.parent)
        seen[sid] = path
    return clips


def _class_names(src: Path, folders: list[str]) -> list[str]:
    text = src / CLASS_NAMES_FILE
    if not text.is_file():
        return sorted(set(folders))
    try:
        names = [line.strip() for line in text.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read class names: {exc}", path=text) from exc
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise DataError(f"class folders {unknown} are not listed (classes: {names})", path=text)
    return names


def _splits(path: Path, header: tuple[str, str], known: set[str], read: set[str]) -> dict[str, list[str]]:
    """Split name -> the members that were read, from a CSV naming any of the ``known`` ones."""
    splits: dict[str, list[str]] = {}
    if not path.exists():
        return splits
    for line, row in csv_rows(path, header):
        member, split = row[header[0]], (row["split"] or "").strip()
        if member not in known:
            raise DataError(f"unknown {header[0]} {member!r}", path=path, line=line)
        if not split:
            raise DataError("empty split name", path=path, line=line)
        if member in read:
            splits.setdefault(split, []).append(member)
    return splits


def _sequence(src: Path, sid: str, skeleton: VideoSkeleton, rows: list[tuple[int, dict[str, str]]],
              names: list[str] | None) -> Sequence:
    t = skeleton.x.shape[1]
    intervals = [interval_row(row, line, t, names, src / INTERVALS_FILE) for line, row in rows]
    return Sequence(sid, skeleton.x[..., None], np.asarray(intervals, dtype=np.int64).reshape(-1, 3))


def read(src: Path, options: ReadOptions) -> Converted:
    """Estimate the pose in every video of ``src`` (module docstring) -> clips and recordings."""
    from tqdm.auto import tqdm

    src = Path(src)
    video_options = options.video or VideoPoseOptions()
    check_options(video_options)
    if not src.exists():
        raise DataError("no such video file or folder", path=src)
    if src.is_file() and src.suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(f"not a video file; suffixes read: {', '.join(VIDEO_SUFFIXES)}", path=src)
    clips = find_clips(src)
    seq_files = {p.stem: p for p in _videos(src / SEQUENCES_DIR)} if (src / SEQUENCES_DIR).is_dir() else {}
    if not clips and not seq_files:
        raise DataError(f"no videos found: expected <class>/<name>.mp4 or {SEQUENCES_DIR}/<id>.mp4 "
                        f"(suffixes: {', '.join(VIDEO_SUFFIXES)})", path=src)
    folder = src if src.is_dir() else src.parent
    names = _class_names(folder, [c for _, _, c in clips if c is not None]) if src.is_dir() else []
    rows_of: dict[str, list[tuple[int, dict[str, str]]]] = {sid: [] for sid in seq_files}
    if seq_files:
        csv_path = src / INTERVALS_FILE
        for line, row in csv_rows(csv_path, ("sequence", "label", "start", "end")):
            if row["sequence"] not in rows_of:
                raise DataError(f"unknown sequence {row['sequence']!r} (no {SEQUENCES_DIR}/"
                                f"{row['sequence']}.<video>)", path=csv_path, line=line)
            rows_of[row["sequence"]].append((line, row))
    bad = BadSamples(options.skip_bad)
    summaries: dict[str, dict[str, Any]] = {}
    skeletons: list[VideoSkeleton] = []
    samples: list[Sample] = []
    sequences: list[Sequence] = []
    work = [(sid, path, c, False) for sid, path, c in clips]
    work += [(sid, p, None, True) for sid, p in seq_files.items()]
    with tqdm(total=len(work), desc="videos", unit="video", disable=not video_options.progress,
              position=0) as bar:
        for sid, path, cls, untrimmed in work:
            skeleton = bad.attempt(lambda path=path: estimate_video(path, video_options), path, sid)
            bar.update()
            if skeleton is None:
                continue
            skeletons.append(skeleton)
            summaries[sid] = skeleton.summary()
            if untrimmed:
                seq = bad.attempt(lambda s=sid, k=skeleton: _sequence(src, s, k, rows_of[s], names or None),
                                  path, sid)
                sequences += [] if seq is None else [seq]
            else:
                start, stop = skeleton.person_span()
                label = -1 if cls is None else names.index(cls)
                samples.append(Sample(sid, skeleton.x[:, start:stop, :, None], label))
    if not skeletons:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in bad.skipped[:5])
        raise DataError(f"no video could be read ({reasons})", path=src)
    if len({(k.layout, k.x.shape[0]) for k in skeletons}) > 1:
        raise DataError("the pose estimator gave different layouts or coordinates across videos", path=src)
    top = max([int(s.intervals[:, 0].max(initial=-1)) for s in sequences], default=-1)
    class_names = names or [f"label_{k}" for k in range(top + 1)]
    return Converted(
        layout=get_layout(skeletons[0].layout),
        class_names=class_names,
        samples=samples,
        splits=_splits(folder / CLIP_SPLITS_FILE, ("clip", "split"), {c[0] for c in clips},
                       {s.id for s in samples}),
        sequences=sequences,
        sequence_splits=_splits(folder / SEQUENCE_SPLITS_FILE, ("sequence", "split"), set(seq_files),
                                {s.id for s in sequences}),
        skipped=bad.skipped,
        source={"format": "video", "path": str(src), "pose_estimator": skeletons[0].estimator,
                "coords": video_options.coords, "min_visibility": video_options.min_visibility,
                "videos": summaries},
    )
