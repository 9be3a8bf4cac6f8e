"""Joint layouts as data: joint names, the parent of each joint, body parts, alignment joints.

Nothing outside this file hard-codes a joint index. Every layout gives

- ``joint_names``: V names;
- ``parents``: the parent of each joint (the root is its own parent), so bones are the
  ``(child, parent)`` pairs and the bone stream of the root is zero;
- ``parts``: named groups of joints (body parts) used by part masks, mixing and occlusion;
- ``center``: the joint subtracted when centring (optional);
- ``up`` / ``across``: joint pairs ``(a, b)`` whose vector ``b - a`` is rotated onto +z / +x
  during view alignment (optional: a layout without them skips that step).

A custom layout is read from a small YAML file (see ``docs/custom_data.md``)::

    name: hands8
    joints: [l_shoulder, l_elbow, l_wrist, l_hand, r_shoulder, r_elbow, r_wrist, r_hand]
    parents: [l_shoulder, l_shoulder, l_elbow, l_wrist, l_shoulder, r_shoulder, r_elbow, r_wrist]
    parts: {left_arm: [l_shoulder, l_elbow, l_wrist, l_hand], right_arm: [r_shoulder, ...]}
    center: l_shoulder        # optional
    up: [l_hand, l_shoulder]  # optional
    across: [l_shoulder, r_shoulder]  # optional

Joints may be given by name or by 0-based index everywhere. ``JOINT_MAPPINGS`` (end of the
file) maps built-in layouts onto each other by joint name; ``pcm3.layout_mapping`` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pcm3.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """A skeleton layout; see the module docstring for the meaning of each field."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    parts: tuple[tuple[str, tuple[int, ...]], ...]
    center: int | None = None
    up: tuple[int, int] | None = None
    across: tuple[int, int] | None = None
    source: str = field(default="builtin", compare=False)

    def __post_init__(self) -> None:
        v = len(self.joint_names)
        where = f"layout {self.name!r}"
        if v == 0:
            raise ConfigError(f"{where}: no joints")
        if len(set(self.joint_names)) != v:
            raise ConfigError(f"{where}: joint names are not unique")
        if len(self.parents) != v:
            raise ConfigError(f"{where}: {len(self.parents)} parents for {v} joints")
        for j, p in enumerate(self.parents):
            if not 0 <= p < v:
                raise ConfigError(f"{where}: parent {p} of joint {j} is not a joint index")
        if not self.parts:
            raise ConfigError(f"{where}: at least one body part is required")
        for part, joints in self.parts:
            if not joints:
                raise ConfigError(f"{where}: body part {part!r} has no joints")
            bad = [j for j in joints if not 0 <= j < v]
            if bad:
                raise ConfigError(f"{where}: body part {part!r} has joints {bad} outside 0..{v - 1}")
        for key in ("up", "across"):
            pair = getattr(self, key)
            if pair is not None and not all(0 <= j < v for j in pair):
                raise ConfigError(f"{where}: {key} pair {pair} outside 0..{v - 1}")
        if self.center is not None and not 0 <= self.center < v:
            raise ConfigError(f"{where}: center {self.center} outside 0..{v - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parts)

    @property
    def part_joints(self) -> tuple[tuple[int, ...], ...]:
        return tuple(joints for _, joints in self.parts)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """``(child, parent)`` pairs for every non-root joint."""
        return tuple((j, p) for j, p in enumerate(self.parents) if j != p)

    def part_membership(self) -> np.ndarray:
        """Boolean ``(P, V)`` matrix: ``[p, v]`` is true when joint v belongs to part p."""
        member = np.zeros((len(self.parts), self.num_joints), dtype=bool)
        for i, (_, joints) in enumerate(self.parts):
            member[i, list(joints)] = True
        return member

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-friendly description that :func:`layout_from_dict` reads back."""
        return {
            "name": self.name,
            "joints": list(self.joint_names),
            "parents": list(self.parents),
            "parts": {name: list(joints) for name, joints in self.parts},
            "center": self.center,
            "up": None if self.up is None else list(self.up),
            "across": None if self.across is None else list(self.across),
        }


def _joint_index(names: tuple[str, ...], ref: Any, what: str, layout: str) -> int:
    if isinstance(ref, bool):
        raise ConfigError(f"layout {layout!r}: {what}: {ref!r} is not a joint name or index")
    if isinstance(ref, int):
        if not 0 <= ref < len(names):
            raise ConfigError(f"layout {layout!r}: {what}: index {ref} outside 0..{len(names) - 1}")
        return ref
    if isinstance(ref, str) and ref in names:
        return names.index(ref)
    raise ConfigError(f"layout {layout!r}: {what}: unknown joint {ref!r} (joints: {list(names)})")


_LAYOUT_KEYS = {"name", "joints", "parents", "parts", "center", "up", "across"}


def layout_from_dict(spec: dict[str, Any], source: str = "dict") -> Layout:
    """Build a layout from a plain mapping (the YAML form; joints by name or index)."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: a layout must be a mapping, got {type(spec).__name__}")
    unknown = set(spec) - _LAYOUT_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown layout keys {sorted(unknown)}; allowed: {sorted(_LAYOUT_KEYS)}")
    for key in ("name", "joints", "parents", "parts"):
        if key not in spec:
            raise ConfigError(f"{source}: layout is missing the key {key!r}")
    name = str(spec["name"])
    joints = spec["joints"]
    if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
        raise ConfigError(f"{source}: 'joints' must be a list of joint names")
    names = tuple(joints)
    if not isinstance(spec["parents"], list):
        raise ConfigError(f"{source}: 'parents' must be a list (one parent per joint)")
    parents = tuple(_joint_index(names, p, "parents", name) for p in spec["parents"])
    if not isinstance(spec["parts"], dict):
        raise ConfigError(f"{source}: 'parts' must map part names to lists of joints")
    parts = tuple(
        (str(part), tuple(_joint_index(names, j, f"part {part!r}", name) for j in members))
        for part, members in spec["parts"].items()
    )

    def pair(key: str) -> tuple[int, int] | None:
        value = spec.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise ConfigError(f"{source}: {key!r} must be a pair of joints [from, to]")
        return (_joint_index(names, value[0], key, name), _joint_index(names, value[1], key, name))

    center = spec.get("center")
    return Layout(
        name=name,
        joint_names=names,
        parents=parents,
        parts=parts,
        center=None if center is None else _joint_index(names, center, "center", name),
        up=pair("up"),
        across=pair("across"),
        source=source,
    )


def load_layout_yaml(path: str | Path) -> Layout:
    """Read a custom layout from a YAML file."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read layout YAML: {exc}") from exc
    return layout_from_dict(spec, source=str(path))


def _one_based(pairs: list[tuple[int, int]], num_joints: int) -> tuple[int, ...]:
    parents = list(range(num_joints))
    for child, parent in pairs:
        parents[child - 1] = parent - 1
    return tuple(parents)


# NTU RGB+D / PKU-MMD (Kinect v2). Bone pairs (child, parent), 1-based, as in the official
# code; joint 21 (spine shoulder) is the root. Body parts as in the official PCM3 code, in the
# official order; the official names are mirrored ("left_hand" is NTU's right arm), ours are not.
NTU25 = Layout(
    name="ntu25",
    joint_names=(
        "spine_base", "spine_mid", "neck", "head",
        "shoulder_left", "elbow_left", "wrist_left", "hand_left",
        "shoulder_right", "elbow_right", "wrist_right", "hand_right",
        "hip_left", "knee_left", "ankle_left", "foot_left",
        "hip_right", "knee_right", "ankle_right", "foot_right",
        "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right",
    ),
    parents=_one_based(
        [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
         (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
         (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12)],
        25,
    ),
    parts=(
        ("trunk", (3, 2, 20, 1, 0)),
        ("right_arm", (8, 9, 10, 11, 23, 24)),
        ("left_arm", (4, 5, 6, 7, 21, 22)),
        ("right_leg", (16, 17, 18, 19)),
        ("left_leg", (12, 13, 14, 15)),
    ),
    center=1,
    up=(0, 1),
    across=(4, 8),
)

# NW-UCLA, MSR Action3D, UTKinect (Kinect v1, 20 joints); bones as in the CTR-GCN family,
# root = shoulder centre.
KINECT_V1_20 = Layout(
    name="kinect_v1_20",
    joint_names=(
        "hip_center", "spine", "shoulder_center", "head",
        "shoulder_left", "elbow_left", "wrist_left", "hand_left",
        "shoulder_right", "elbow_right", "wrist_right", "hand_right",
        "hip_left", "knee_left", "ankle_left", "foot_left",
        "hip_right", "knee_right", "ankle_right", "foot_right",
    ),
    parents=_one_based(
        [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
         (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)],
        20,
    ),
    parts=(
        ("trunk", (3, 2, 1, 0)),
        ("right_arm", (8, 9, 10, 11)),
        ("left_arm", (4, 5, 6, 7)),
        ("right_leg", (16, 17, 18, 19)),
        ("left_leg", (12, 13, 14, 15)),
    ),
    center=1,
    up=(0, 1),
    across=(4, 8),
)

# COCO-17 keypoints (2D pose estimators; pyskl). No spine joint: no centre and no up pair;
# alignment of 2D data is left to the user.
COCO17 = Layout(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    parents=(0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    parts=(
        ("trunk", (0, 1, 2, 3, 4)),
        ("right_arm", (6, 8, 10)),
        ("left_arm", (5, 7, 9)),
        ("right_leg", (12, 14, 16)),
        ("left_leg", (11, 13, 15)),
    ),
    center=None,
    up=None,
    across=(5, 6),
)

# MediaPipe Pose (BlazePose) 33 landmarks.
MEDIAPIPE33 = Layout(
    name="mediapipe33",
    joint_names=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    parents=(
        0, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0,
        0, 0, 11, 12, 13, 14,
        15, 16, 15, 16, 15, 16,
        11, 12, 23, 24, 25, 26,
        27, 28, 27, 28,
    ),
    parts=(
        ("trunk", (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)),
        ("right_arm", (12, 14, 16, 18, 20, 22)),
        ("left_arm", (11, 13, 15, 17, 19, 21)),
        ("right_leg", (24, 26, 28, 30, 32)),
        ("left_leg", (23, 25, 27, 29, 31)),
    ),
    center=None,
    up=None,
    across=(11, 12),
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (NTU25, KINECT_V1_20, COCO17, MEDIAPIPE33)
}


def get_layout(name_or_path: str | Path | Layout) -> Layout:
    """A built-in layout by name, or a custom one from a ``.yaml`` / ``.yml`` file."""
    if isinstance(name_or_path, Layout):
        return name_or_path
    key = str(name_or_path)
    if key in LAYOUTS:
        return LAYOUTS[key]
    if key.endswith((".yaml", ".yml")):
        return load_layout_yaml(key)
    raise ConfigError(
        f"unknown layout {key!r}; built-in layouts: {sorted(LAYOUTS)}, or a path to a layout .yaml"
    )


# ----------------------------------------------------------------------------- joint mappings

# Joint mappings between built-in layouts, by joint name: (source layout, target layout) ->
# {target joint: source joints}. One source joint is a direct correspondence; several are a
# synthesised joint, their mean (a tuple) or a weighted mean (a dict of weights summing to 1).
# A target joint not listed is absent from the source; ``pcm3.layout_mapping`` fills it and
# ``docs/layouts.md`` lists every table. The weights place the Kinect torso joints where the
# Kinect puts them, measured on NTU RGB+D (Kinect v2) and NW-UCLA (Kinect v1) skeletons: NTU's
# spine_mid lies 0.6 of the way from the hip midpoint to the shoulder midpoint and its neck
# halfway from the shoulder midpoint to the head; Kinect v1's hip_center lies 0.2 and its spine
# 0.35 of the way up, its shoulder_center a third of the way from the shoulder midpoint to the
# head. The head is the midpoint of the ears; a Kinect hand is the mean of the wrist and the
# index and pinky knuckles; a Kinect foot lies halfway between the ankle and the middle of the sole.
JointSources = tuple[str, ...] | dict[str, float]

_SPINE_MID_NTU = {"left_hip": 0.2, "right_hip": 0.2, "left_shoulder": 0.3, "right_shoulder": 0.3}
_NECK_NTU = {"left_shoulder": 0.25, "right_shoulder": 0.25, "left_ear": 0.25, "right_ear": 0.25}
_HIP_CENTER_V1 = {"left_hip": 0.4, "right_hip": 0.4, "left_shoulder": 0.1, "right_shoulder": 0.1}
_SPINE_V1 = {"left_hip": 0.325, "right_hip": 0.325, "left_shoulder": 0.175, "right_shoulder": 0.175}
_SHOULDER_CENTER_V1 = {"left_shoulder": 1 / 3, "right_shoulder": 1 / 3, "left_ear": 1 / 6, "right_ear": 1 / 6}


def _limbs(side: str, kinect_side: str, hand: bool, foot: bool) -> dict[str, JointSources]:
    """One side's arm and leg from a COCO / MediaPipe source onto a Kinect target."""
    out: dict[str, JointSources] = {
        f"{j}_{kinect_side}": (f"{side}_{j}",)
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    }
    if hand:
        out[f"hand_{kinect_side}"] = (f"{side}_wrist", f"{side}_index", f"{side}_pinky")
    if foot:
        out[f"foot_{kinect_side}"] = {f"{side}_ankle": 0.5, f"{side}_heel": 0.25, f"{side}_foot_index": 0.25}
    return out


def _onto_kinect(target: str, mediapipe: bool) -> dict[str, JointSources]:
    out: dict[str, JointSources] = {"head": ("left_ear", "right_ear")}
    if target == "ntu25":
        out.update(spine_base=("left_hip", "right_hip"), spine_mid=_SPINE_MID_NTU, neck=_NECK_NTU,
                   spine_shoulder=("left_shoulder", "right_shoulder"))
    else:
        out.update(hip_center=_HIP_CENTER_V1, spine=_SPINE_V1, shoulder_center=_SHOULDER_CENTER_V1)
    for side in ("left", "right"):
        out.update(_limbs(side, side, hand=mediapipe, foot=mediapipe))
        if mediapipe and target == "ntu25":
            out[f"hand_tip_{side}"] = (f"{side}_index",)
            out[f"thumb_{side}"] = (f"{side}_thumb",)
    return out


def _onto_coco(head: str) -> dict[str, JointSources]:
    """A Kinect skeleton's COCO-17 subset: limbs directly, the five face points at the head."""
    out: dict[str, JointSources] = {j: (head,) for j in COCO17.joint_names[:5]}
    for side in ("left", "right"):
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            out[f"{side}_{j}"] = (f"{j}_{side}",)
    return out


JOINT_MAPPINGS: dict[tuple[str, str], dict[str, JointSources]] = {
    ("mediapipe33", "ntu25"): _onto_kinect("ntu25", mediapipe=True),
    ("mediapipe33", "kinect_v1_20"): _onto_kinect("kinect_v1_20", mediapipe=True),
    ("coco17", "ntu25"): _onto_kinect("ntu25", mediapipe=False),
    ("coco17", "kinect_v1_20"): _onto_kinect("kinect_v1_20", mediapipe=False),
    ("ntu25", "coco17"): _onto_coco("head"),
    ("kinect_v1_20", "coco17"): _onto_coco("head"),
}
