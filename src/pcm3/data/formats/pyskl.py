"""pyskl / mmaction2 skeleton annotation pickles (``src`` is the ``.pkl`` file).

``{"split": {name: [frame_dir, ...]}, "annotations": [{"frame_dir": str, "label": int,
"keypoint": (M, T, V, C), "keypoint_score": (M, T, V) optional, "total_frames": T}, ...]}``,
optionally ``"class_names": [str, ...]``. C = 3 (3D) or 2 (2D pose estimates; the scores are
kept as ``Sample.confidence (T, V, M)``). Loaded with the restricted unpickler only.

The layout is ``options.layout`` or inferred from V (25 ntu25, 17 coco17, 20 kinect_v1_20,
33 mediapipe33). Every sample gets ``min(max_bodies, largest M in the file)`` bodies: the most
active ones when it has more, zero bodies appended when it has fewer.

Options read: ``layout``, ``max_bodies``, ``skip_bad``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions, check_coordinates
from pcm3.data.formats.stgcn_npy import limit_bodies
from pcm3.data.records import Converted, Sample
from pcm3.data.safe_pickle import safe_load_pickle
from pcm3.errors import DataError
from pcm3.layouts import Layout, get_layout

LAYOUT_BY_JOINTS = {25: "ntu25", 17: "coco17", 20: "kinect_v1_20", 33: "mediapipe33"}


def _keypoints(annotations: list[Any]) -> list[np.ndarray]:
    """The well-formed ``(M, T, V, C)`` keypoint arrays (used to infer V, C and M)."""
    return [a["keypoint"] for a in annotations if isinstance(a, dict)
            and isinstance(a.get("keypoint"), np.ndarray) and a["keypoint"].ndim == 4]


def _layout(options: ReadOptions, keypoints: list[np.ndarray], path: Path) -> Layout:
    if options.layout is not None:
        return get_layout(options.layout)
    if not keypoints:
        raise DataError("no annotation has a (M, T, V, C) 'keypoint' array", path=path)
    v = Counter(k.shape[2] for k in keypoints).most_common(1)[0][0]
    if v not in LAYOUT_BY_JOINTS:
        raise DataError(f"cannot infer the layout of {v} joints (known: "
                        f"{LAYOUT_BY_JOINTS}); pass --layout", path=path)
    return get_layout(LAYOUT_BY_JOINTS[v])


def _label(value: Any, num_classes: int | None, path: Path, sid: str) -> int:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value != int(value) or value < 0:
        raise DataError(f"label {value!r} is not an integer >= 0", path=path, sample=sid)
    if num_classes is not None and value >= num_classes:
        raise DataError(f"label {int(value)} outside 0..{num_classes - 1} (class_names)",
                        path=path, sample=sid)
    return int(value)


def _bodies_kept(x: np.ndarray, kept: np.ndarray) -> list[int | None]:
    """For each body of ``kept (C, T, V, K)``, the body of ``x (C, T, V, M)`` it is (or None)."""
    found: list[int | None] = []
    for k in range(kept.shape[3]):
        same = [j for j in range(x.shape[3]) if np.array_equal(kept[..., k], x[..., j])]
        found.append(same[0] if same else None)
    return found


def read_annotation(anno: Any, index: int, layout: Layout, channels: int, keep: int,
                    num_classes: int | None, path: Path) -> Sample:
    """One annotation dict -> a Sample with ``x (C, T, V, keep)`` (+ confidence)."""
    if not isinstance(anno, dict) or not isinstance(anno.get("frame_dir"), str):
        raise DataError("annotation is not a dict with a string 'frame_dir'", path=path,
                        sample=f"annotations[{index}]")
    sid = anno["frame_dir"]
    for key in ("label", "keypoint"):
        if key not in anno:
            raise DataError(f"annotation has no {key!r}", path=path, sample=sid)
    label = _label(anno["label"], num_classes, path, sid)
    kp = anno["keypoint"]
    v = layout.num_joints
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.shape[2:] != (v, channels):
        shape = kp.shape if isinstance(kp, np.ndarray) else type(kp).__name__
        raise DataError(f"keypoint is {shape}, expected (M, T, {v}, {channels}) for layout "
                        f"{layout.name!r}", path=path, sample=sid)
    if kp.shape[0] == 0:
        raise DataError("keypoint has no body (M = 0)", path=path, sample=sid)
    if not np.issubdtype(kp.dtype, np.number):
        raise DataError(f"keypoint dtype {kp.dtype} is not numeric", path=path, sample=sid)
    total = anno.get("total_frames", kp.shape[1])
    if total != kp.shape[1]:
        raise DataError(f"total_frames = {total!r} but keypoint has {kp.shape[1]} frames",
                        path=path, sample=sid)
    x = np.ascontiguousarray(kp.transpose(3, 1, 2, 0), dtype=np.float32)  # (C, T, V, M)
    check_coordinates(x, path, sid, v)
    if not x.any():
        raise DataError("every coordinate is zero (empty sample)", path=path, sample=sid)
    kept = limit_bodies(x, keep)
    score = anno.get("keypoint_score")
    if score is None:
        return Sample(id=sid, x=kept, label=label)
    if not isinstance(score, np.ndarray) or score.shape != kp.shape[:3]:
        shape = score.shape if isinstance(score, np.ndarray) else type(score).__name__
        raise DataError(f"keypoint_score is {shape}, expected {kp.shape[:3]} (M, T, V)",
                        path=path, sample=sid)
    score = score.astype(np.float32).transpose(1, 2, 0)  # (T, V, M)
    if not np.isfinite(score).all():
        raise DataError("keypoint_score has NaN or inf", path=path, sample=sid)
    confidence = np.zeros((*score.shape[:2], keep), dtype=np.float32)
    for k, j in enumerate(_bodies_kept(x, kept) if x.shape[3] > keep else range(x.shape[3])):
        if j is not None:
            confidence[..., k] = score[..., j]
    return Sample(id=sid, x=kept, label=label, confidence=confidence)


def _splits(content: dict[str, Any], known: set[str], read_ids: set[str],
            path: Path) -> dict[str, list[str]]:
    raw = content.get("split", {})
    if not isinstance(raw, dict):
        raise DataError("'split' must map split names to lists of frame_dir", path=path)
    splits = {}
    for name, members in raw.items():
        if not isinstance(members, (list, tuple)) or not all(isinstance(m, str) for m in members):
            raise DataError(f"split {name!r} must be a list of frame_dir strings", path=path)
        unknown = [m for m in members if m not in known]
        if unknown:
            raise DataError(f"split {name!r} names {len(unknown)} frame_dir(s) with no "
                            f"annotation, e.g. {unknown[:3]}", path=path)
        splits[str(name)] = [m for m in members if m in read_ids]
    return splits


def read(src: Path, options: ReadOptions) -> Converted:
    """Read the annotation pickle ``src`` (see the module docstring)."""
    src = Path(src)
    content = safe_load_pickle(src)
    if not isinstance(content, dict) or not isinstance(content.get("annotations"), list):
        raise DataError("expected a dict with an 'annotations' list (pyskl format)", path=src)
    annotations = content["annotations"]
    names = content.get("class_names")
    if names is not None and not (isinstance(names, (list, tuple))
                                  and all(isinstance(n, str) for n in names)):
        raise DataError("'class_names' must be a list of strings", path=src)
    keypoints = _keypoints(annotations)
    layout = _layout(options, keypoints, src)
    channels = Counter(k.shape[3] for k in keypoints).most_common(1)[0][0] if keypoints else 3
    if channels not in (2, 3):
        raise DataError(f"keypoints have {channels} coordinates, expected 2 or 3", path=src)
    keep = max(1, min(options.max_bodies, max((k.shape[0] for k in keypoints), default=1)))
    num_classes = None if names is None else len(names)
    bad = BadSamples(options.skip_bad)
    samples: list[Sample] = []
    for i, anno in enumerate(annotations):
        sid = anno.get("frame_dir") if isinstance(anno, dict) else None
        sample = bad.attempt(lambda a=anno, i=i: read_annotation(
            a, i, layout, channels, keep, num_classes, src), src, str(sid or f"annotations[{i}]"))
        if sample is not None:
            samples.append(sample)
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(sid for sid, count in Counter(ids).items() if count > 1)
        raise DataError(f"frame_dir {dup!r} appears in more than one annotation", path=src)
    known = {a["frame_dir"] for a in annotations
             if isinstance(a, dict) and isinstance(a.get("frame_dir"), str)}
    labels = [s.label for s in samples]
    return Converted(
        layout=layout,
        class_names=list(names) if names is not None
        else [f"label_{k}" for k in range(max(labels, default=-1) + 1)],
        samples=samples,
        splits=_splits(content, known, set(ids), src),
        skipped=bad.skipped,
        source={"format": "pyskl", "path": str(src), "annotations": len(annotations)},
    )
