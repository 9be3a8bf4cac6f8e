"""Kinematic body model on the ``ntu25`` layout: per-subject rest skeletons, forward kinematics.

Body frame: X = the person's left, Y = up, Z = the person's forward (right-handed), metres,
feet on the ground plane Y = 0. A *pose* is a dict of named joint angles over time (radians,
each a ``(T,)`` array; a missing name means zero), see :data:`POSE_KEYS`. Angles rotate the
bone that ends at a joint, and everything below it, relative to the parent bone:

- whole body: ``yaw`` (heading, + turns left), ``sway_pitch`` / ``sway_roll`` (tilt about
  the feet, + forward / + to the left), ``lift`` (m, airborne), ``shift_x`` / ``shift_z``
  (m, a step to the left / forward);
- trunk: ``trunk_pitch`` (bend forward), ``trunk_roll`` (bend left), ``trunk_yaw`` (twist
  left), ``neck_pitch`` (nod), ``head_yaw``;
- per side ``s`` in ``l`` / ``r``: ``shoulder_flex_s`` (arm forward-up; pi = overhead),
  ``shoulder_abd_s`` (arm outward), ``shoulder_twist_s`` (external rotation), ``elbow_s``,
  ``wrist_s``, ``hip_flex_s`` (thigh forward), ``hip_abd_s``, ``knee_s``, ``ankle_s``
  (toes down; feet otherwise stay flat).

Forward kinematics keeps the supporting foot planted (see :func:`forward_kinematics`), so
squats lower the pelvis, kicks shift the weight and sitting moves the pelvis back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcm3.layouts import NTU25

JOINT = {name: i for i, name in enumerate(NTU25.joint_names)}
SIDES = {"l": "left", "r": "right"}

# The kinematic tree: the layout's bones rooted at the pelvis (its spine chain reversed).
FK_PARENTS = list(NTU25.parents)
FK_PARENTS[JOINT["spine_base"]] = JOINT["spine_base"]
FK_PARENTS[JOINT["spine_mid"]] = JOINT["spine_base"]
FK_PARENTS[JOINT["spine_shoulder"]] = JOINT["spine_mid"]


def _topological_order() -> list[int]:
    order = [JOINT["spine_base"]]
    while len(order) < len(FK_PARENTS):
        order += [j for j, p in enumerate(FK_PARENTS) if p in order and j not in order]
    return order


FK_ORDER = _topological_order()
FK_BONES = [(j, FK_PARENTS[j]) for j in FK_ORDER[1:]]

# Rest joint positions (m) of a 1.70 m person, left side (the right side mirrors X).
_REST_170 = {
    "spine_base": (0.0, 0.93, -0.01), "spine_mid": (0.0, 1.19, -0.02),
    "spine_shoulder": (0.0, 1.41, 0.0), "neck": (0.0, 1.48, 0.01), "head": (0.0, 1.60, 0.045),
    "shoulder_left": (0.17, 1.37, -0.01), "elbow_left": (0.19, 1.10, -0.02),
    "wrist_left": (0.20, 0.855, 0.0), "hand_left": (0.20, 0.79, 0.01),
    "hand_tip_left": (0.20, 0.73, 0.02), "thumb_left": (0.18, 0.78, 0.05),
    "hip_left": (0.08, 0.91, 0.0), "knee_left": (0.09, 0.50, 0.01),
    "ankle_left": (0.09, 0.08, -0.01), "foot_left": (0.10, 0.02, 0.10),
}
# Bone groups that vary together between subjects, and their relative spread.
_GROUPS = {
    "torso": (("spine_mid", "spine_shoulder"), 0.04),
    "head": (("neck", "head"), 0.05),
    "shoulder": (("shoulder_left", "shoulder_right"), 0.07),
    "arm": (("elbow", "wrist"), 0.04),
    "hand": (("hand", "hand_tip", "thumb"), 0.10),
    "hip": (("hip_left", "hip_right"), 0.08),
    "leg": (("knee", "ankle"), 0.04),
    "foot": (("foot",), 0.08),
}
_CONTACTS = [JOINT[n] for n in ("foot_left", "foot_right", "ankle_left", "ankle_right")]


def _rest_positions_170() -> np.ndarray:
    rest = np.zeros((len(JOINT), 3))
    for name, pos in _REST_170.items():
        rest[JOINT[name]] = pos
        if name.endswith("_left"):
            rest[JOINT[name.replace("_left", "_right")]] = (-pos[0], pos[1], pos[2])
    return rest


@dataclass(frozen=True)
class Subject:
    """A performer: rest bone offsets (``(V, 3)``, each joint from its FK parent; the root's
    row is its rest position) and a personal style (tempo and amplitude factors, posture,
    handedness)."""

    id: int
    height: float
    offsets: np.ndarray
    speed: float
    amplitude: float
    lean: float
    arm_rest: float
    left_handed: bool = False

    def rest_positions(self) -> np.ndarray:
        """``(V, 3)`` rest joint positions in the body frame."""
        pos = np.zeros_like(self.offsets)
        for j in FK_ORDER:
            p = FK_PARENTS[j]
            pos[j] = self.offsets[j] + (pos[p] if p != j else 0.0)
        return pos


def make_subject(subject_id: int, rng: np.random.Generator) -> Subject:
    """A random performer of height 1.5-1.9 m with individual proportions and style."""
    height = float(rng.uniform(1.5, 1.9))
    rest = _rest_positions_170()
    offsets = np.array([rest[j] - (rest[FK_PARENTS[j]] if FK_PARENTS[j] != j else 0.0)
                        for j in range(len(JOINT))])
    factor = np.ones(len(JOINT))
    for keys, spread in _GROUPS.values():
        g = rng.normal(1.0, spread)
        for name, j in JOINT.items():
            if any(name == k or name.startswith(k + "_") for k in keys):
                factor[j] = g
    factor *= rng.normal(1.0, 0.015, size=len(JOINT))  # slight asymmetry
    offsets = offsets * factor[:, None] * (height / 1.70)
    foot = JOINT["foot_left"]
    probe = Subject(subject_id, height, offsets, 1.0, 1.0, 0.0, 0.0).rest_positions()
    offsets[JOINT["spine_base"], 1] += rest[foot, 1] * height / 1.70 - probe[foot, 1]
    return Subject(
        id=subject_id, height=height, offsets=offsets,
        speed=float(rng.uniform(0.85, 1.15)), amplitude=float(rng.uniform(0.85, 1.1)),
        lean=float(rng.normal(0.03, 0.03)), arm_rest=float(rng.uniform(0.05, 0.2)),
        left_handed=bool(rng.random() < 0.25),
    )


def rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """``(T,)`` angles -> ``(T, 3, 3)`` right-handed rotations about ``axis`` in x / y / z."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros((*np.shape(angle), 3, 3))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - i - j
    r[..., k, k] = 1.0
    r[..., i, i], r[..., j, j] = c, c
    r[..., i, j], r[..., j, i] = -s, s
    return r


POSE_KEYS = (
    "yaw", "sway_pitch", "sway_roll", "lift", "shift_x", "shift_z",
    "trunk_pitch", "trunk_roll", "trunk_yaw", "neck_pitch", "head_yaw",
    *(f"{k}_{s}" for s in SIDES for k in (
        "shoulder_flex", "shoulder_abd", "shoulder_twist", "elbow", "wrist",
        "hip_flex", "hip_abd", "knee", "ankle")),
)
_LATERAL = {"yaw", "sway_roll", "shift_x", "trunk_roll", "trunk_yaw", "head_yaw"}


def mirror(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The left-right mirror image of a pose (sides swapped, lateral angles negated)."""
    out = {}
    for key, value in pose.items():
        if key[-2:] in ("_l", "_r"):
            out[key[:-1] + ("r" if key.endswith("_l") else "l")] = value
        else:
            out[key] = -value if key in _LATERAL else value
    return out


def _bone_rotations(pose: dict[str, np.ndarray], t: int) -> dict[int, np.ndarray]:
    """Local rotation ``(T, 3, 3)`` of each bone that moves, keyed by the joint it ends at."""
    zero = np.zeros(t)

    def a(key: str) -> np.ndarray:
        return pose.get(key, zero)

    rot: dict[int, np.ndarray] = {
        JOINT["spine_base"]: rotation("y", a("yaw")) @ rotation("x", a("sway_pitch"))
        @ rotation("z", -a("sway_roll")),
        JOINT["head"]: rotation("y", a("head_yaw")) @ rotation("x", 0.6 * a("neck_pitch")),
        JOINT["neck"]: rotation("x", 0.4 * a("neck_pitch")),
    }
    for joint, share in (("spine_mid", 0.6), ("spine_shoulder", 0.4)):
        rot[JOINT[joint]] = (rotation("y", 0.5 * a("trunk_yaw"))
                             @ rotation("x", share * a("trunk_pitch"))
                             @ rotation("z", -0.5 * a("trunk_roll")))
    for s, side in SIDES.items():
        sign = 1.0 if s == "l" else -1.0
        rot[JOINT[f"elbow_{side}"]] = (rotation("x", -a(f"shoulder_flex_{s}"))
                                       @ rotation("z", sign * a(f"shoulder_abd_{s}"))
                                       @ rotation("y", sign * a(f"shoulder_twist_{s}")))
        rot[JOINT[f"wrist_{side}"]] = rotation("x", -a(f"elbow_{s}"))
        rot[JOINT[f"hand_{side}"]] = rotation("x", -a(f"wrist_{s}"))
        rot[JOINT[f"knee_{side}"]] = (rotation("z", sign * a(f"hip_abd_{s}"))
                                      @ rotation("x", -a(f"hip_flex_{s}")))
        rot[JOINT[f"ankle_{side}"]] = rotation("x", a(f"knee_{s}"))
    return rot


def forward_kinematics(subject: Subject, pose: dict[str, np.ndarray]) -> np.ndarray:
    """Joint positions ``(T, V, 3)`` in the body frame for a pose over T frames.

    The feet stay flat (heading-aligned, pitched by ``ankle_s``). The lowest contact point
    (foot or heel) touches the ground in every frame, and the body moves horizontally so
    that the supporting contact points (soft-weighted towards the low and still ones) do not
    slide; ``lift`` and ``shift_x`` / ``shift_z`` are added afterwards.
    """
    t = len(next(iter(pose.values()))) if pose else 1
    rot = _bone_rotations(pose, t)
    root = JOINT["spine_base"]
    glob = {root: rot[root]}
    pos = np.zeros((t, len(JOINT), 3))
    pos[:, root] = glob[root] @ subject.offsets[root]
    heading = rotation("y", pose.get("yaw", np.zeros(t)))
    for j in FK_ORDER[1:]:
        p = FK_PARENTS[j]
        name = NTU25.joint_names[j]
        if name.startswith("foot_"):
            s = name[5]
            glob[j] = heading @ rotation("x", pose.get(f"ankle_{s}", np.zeros(t)))
        else:
            glob[j] = glob[p] @ rot[j] if j in rot else glob[p]
        pos[:, j] = pos[:, p] + glob[j] @ subject.offsets[j]
    rest_height = subject.rest_positions()[_CONTACTS, 1]
    contact = pos[:, _CONTACTS]  # (T, 4, 3)
    height = contact[..., 1] - rest_height
    low = height.min(axis=1)
    slide = np.diff(contact[..., [0, 2]], axis=0, prepend=contact[:1, :, [0, 2]])
    # the support is the contact points that are low and still (soft, so weight shifts glide)
    cost = (height - low[:, None]) / 0.02 + np.linalg.norm(slide, axis=-1) / 0.01
    weight = np.exp(-(cost - cost.min(axis=1, keepdims=True)))
    weight /= weight.sum(axis=1, keepdims=True)
    drift = np.cumsum((weight[..., None] * slide).sum(axis=1), axis=0)  # (T, 2)
    zero = np.zeros(t)
    pos[..., 0] += (pose.get("shift_x", zero) - drift[:, 0])[:, None]
    pos[..., 1] += (pose.get("lift", zero) - low)[:, None]
    pos[..., 2] += (pose.get("shift_z", zero) - drift[:, 1])[:, None]
    return pos


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """``(..., V, 3)`` positions -> ``(..., B)`` lengths of the kinematic-tree bones."""
    child, parent = np.array(FK_BONES).T
    return np.linalg.norm(positions[..., child, :] - positions[..., parent, :], axis=-1)
