"""Northwestern-UCLA Multiview Action 3D in the ``all_sqe`` JSON packaging (CTR-GCN family).

``src`` is the folder holding ``all_sqe/*.json`` or the ``all_sqe`` folder itself. Each file
``aAA_sSS_eEE_vVV.json`` is ``{"file_name": str, "skeletons": T x 20 x 3, "label": 1..10}``:
one body, Kinect v1 joints (layout ``kinect_v1_20``). Splits: ``xview/train`` (views 1, 2),
``xview/val`` (view 3) and one split per view (``view1``, ``view2``, ``view3``).

Options read: ``layout`` (a 20-joint override of ``kinect_v1_20``), ``skip_bad``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions, check_coordinates
from pcm3.data.records import Converted, Sample
from pcm3.errors import DataError
from pcm3.layouts import KINECT_V1_20, Layout, get_layout

CLASS_NAMES = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
    "stand up", "donning", "doffing", "throw", "carry",
)
XVIEW_TRAIN_VIEWS = (1, 2)
XVIEW_VAL_VIEWS = (3,)
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)")
_KEYS = ("file_name", "skeletons", "label")


def clip_folder(src: Path) -> Path:
    """The folder holding the ``*.json`` clips: ``src/all_sqe`` or ``src`` itself."""
    if not src.is_dir():
        raise DataError("expected a folder holding all_sqe/*.json (NW-UCLA)", path=src)
    for folder in (src / "all_sqe", src):
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    raise DataError("no NW-UCLA clips: expected all_sqe/*.json or *.json here", path=src)


def view_of(stem: str, path: Path) -> int:
    """The camera view encoded in a clip name ``aAA_sSS_eEE_vVV``."""
    match = _NAME.fullmatch(stem)
    if match is None:
        raise DataError("file name is not of the form aAA_sSS_eEE_vVV (needed for the view)",
                        path=path, sample=stem)
    return int(match.group(4))


def read_clip(path: Path, layout: Layout) -> tuple[Sample, int]:
    """One clip file -> ``(Sample with x (3, T, 20, 1), view)``."""
    sid = path.stem
    try:
        record = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"malformed JSON: {exc}", path=path, sample=sid) from exc
    if not isinstance(record, dict) or any(k not in record for k in _KEYS):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise DataError(f"expected a JSON object with keys {list(_KEYS)}, got {keys}",
                        path=path, sample=sid)
    label = record["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= len(CLASS_NAMES):
        raise DataError(f"label {label!r} is not an integer in 1..{len(CLASS_NAMES)}",
                        path=path, sample=sid)
    try:
        joints = np.asarray(record["skeletons"], dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise DataError(f"'skeletons' is not a T x {layout.num_joints} x 3 list of numbers ({exc})",
                        path=path, sample=sid) from exc
    if joints.size == 0:
        raise DataError("empty skeleton (0 frames)", path=path, sample=sid)
    if joints.ndim != 3 or joints.shape[1:] != (layout.num_joints, 3):
        raise DataError(f"'skeletons' has shape {joints.shape}, expected "
                        f"(T, {layout.num_joints}, 3)", path=path, sample=sid)
    x = np.ascontiguousarray(joints.transpose(2, 0, 1)[..., None])  # (3, T, V, 1)
    check_coordinates(x, path, sid, layout.num_joints)
    if not x.any():
        raise DataError("every coordinate is zero (empty skeleton)", path=path, sample=sid)
    return Sample(id=sid, x=x, label=label - 1), view_of(sid, path)


def _layout(options: ReadOptions) -> Layout:
    if options.layout is None:
        return KINECT_V1_20
    layout = get_layout(options.layout)
    if layout.num_joints != KINECT_V1_20.num_joints:
        raise DataError(f"NW-UCLA has {KINECT_V1_20.num_joints} joints; layout {layout.name!r} has "
                        f"{layout.num_joints}")
    return layout


def read(src: Path, options: ReadOptions) -> Converted:
    """Read every clip of ``src`` (see the module docstring)."""
    layout = _layout(options)
    folder = clip_folder(Path(src))
    bad = BadSamples(options.skip_bad)
    samples: list[Sample] = []
    views: list[int] = []
    for path in sorted(folder.glob("*.json")):
        result = bad.attempt(lambda p=path: read_clip(p, layout), path, path.stem)
        if result is not None:
            samples.append(result[0])
            views.append(result[1])
    view_arr = np.asarray(views, dtype=np.int64)
    ids = np.asarray([s.id for s in samples], dtype=object)
    splits = {
        "xview/train": ids[np.isin(view_arr, XVIEW_TRAIN_VIEWS)].tolist(),
        "xview/val": ids[np.isin(view_arr, XVIEW_VAL_VIEWS)].tolist(),
    }
    for view in np.unique(view_arr).tolist():
        splits[f"view{view}"] = ids[view_arr == view].tolist()
    return Converted(
        layout=layout,
        class_names=list(CLASS_NAMES),
        samples=samples,
        splits={name: members for name, members in splits.items() if members},
        skipped=bad.skipped,
        source={"format": "nw-ucla", "path": str(folder), "files": len(samples) + len(bad.skipped)},
    )
