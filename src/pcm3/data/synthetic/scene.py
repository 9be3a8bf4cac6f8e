"""From poses to recorded skeletons: idle motion, time warps, placing two people, a Kinect-like
camera, sensor noise and dropped joints.

Camera frame as Kinect's: metres, y up, z away from the camera, x to the camera's left (a
person facing the camera has the left shoulder at smaller x).
"""

from __future__ import annotations

import itertools

import numpy as np

from pcm3.data.synthetic.body import JOINT, Subject, forward_kinematics, rotation
from pcm3.data.synthetic.primitives import Pose, deg, pulse, smoothstep

# Joints a depth sensor loses now and then (occluded extremities), by name.
DROPPABLE = [j for name, j in JOINT.items()
             if name.split("_")[0] in ("elbow", "wrist", "hand", "thumb", "knee", "ankle", "foot")]
_NOISY = [j for name, j in JOINT.items() if name.startswith(("hand_tip", "thumb"))]


def smooth_noise(rng: np.random.Generator, t: int, components: int = 3) -> np.ndarray:
    """``(T,)`` slow random wobble in about [-1, 1] (periods of 1.5-10 s at 30 fps)."""
    freq = rng.uniform(1 / 300, 1 / 45, size=(components, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(components, 1))
    return np.sin(2 * np.pi * freq * np.arange(t) + phase).mean(axis=0) * np.sqrt(2)


def idle_pose(subject: Subject, t: int, rng: np.random.Generator) -> Pose:
    """Standing still: the subject's posture, slow sway, head and arm wobble, now and then a
    glance aside or a shift of weight onto one leg."""
    wobble = {
        "sway_pitch": 1.0, "sway_roll": 0.8, "trunk_pitch": 1.5, "trunk_yaw": 2.0,
        "neck_pitch": 4.0, "head_yaw": 8.0, "shoulder_flex_l": 3.0, "shoulder_flex_r": 3.0,
        "shoulder_abd_l": 2.0, "shoulder_abd_r": 2.0, "elbow_l": 4.0, "elbow_r": 4.0,
        "knee_l": 2.0, "knee_r": 2.0,
    }
    pose = {key: deg(scale) * smooth_noise(rng, t) for key, scale in wobble.items()}
    pose["trunk_pitch"] += subject.lean
    for s in "lr":
        pose[f"shoulder_abd_{s}"] += subject.arm_rest
        pose[f"elbow_{s}"] += deg(10.0)
        pose[f"knee_{s}"] += deg(3.0)
    frames = np.arange(t)
    for _ in range(rng.poisson(t / 150)):  # a glance aside
        glance = pulse(frames, rng.uniform(0, t), rng.uniform(20, 45))
        pose["head_yaw"] += deg(rng.uniform(15, 35)) * rng.choice([-1.0, 1.0]) * glance
    for _ in range(rng.poisson(t / 200)):  # the weight shifts onto one leg
        side = rng.choice([-1.0, 1.0])
        shift = side * smoothstep((frames - rng.uniform(0, t)) / 15)
        pose["sway_roll"] += deg(2.0) * shift
        pose["knee_l"] += deg(10.0) * np.maximum(-shift, 0)
        pose["knee_r"] += deg(10.0) * np.maximum(shift, 0)
    return pose


# How people stand between actions (left arm angles in degrees; the right arm mirrors them):
# name -> (probability, both arms?, shoulder flex, abd, twist, elbow).
REST_POSTURES = {
    "arms hanging": (0.35, True, 0, 0, 0, 0),
    "hands on hips": (0.15, True, 0, 50, -90, 80),
    "one hand on hip": (0.1, False, 0, 50, -90, 80),
    "arms crossed": (0.15, True, 30, 0, -90, 100),
    "hands in front": (0.15, True, 10, -10, -45, 10),
    "hands behind back": (0.1, True, -40, -10, -30, 40),
}
_ARM_KEYS = ("shoulder_flex", "shoulder_abd", "shoulder_twist", "elbow")


def rest_posture(rng: np.random.Generator) -> Pose:
    """A random way of holding the arms while idle (constant angles, per arm)."""
    names = list(REST_POSTURES)
    prob = np.array([REST_POSTURES[n][0] for n in names])
    _, both, *angles = REST_POSTURES[names[int(rng.choice(len(names), p=prob / prob.sum()))]]
    sides = "lr" if both else str(rng.choice(["l", "r"]))
    return {f"{key}_{s}": deg(angle + rng.uniform(-6, 6))
            for s in sides for key, angle in zip(_ARM_KEYS, angles, strict=True)}


def arms_used(pose: Pose) -> set[str]:
    """The sides (``l`` / ``r``) whose arm moves noticeably in ``pose``."""
    return {s for s in "lr" if any(np.ptp(pose.get(f"{k}_{s}", np.zeros(1))) > deg(12)
                                    for k in _ARM_KEYS)}


def rest_layer(
    postures: list[Pose], changes: list[int], frames: int,
    windows: list[tuple[int, int, set[str]]],
) -> Pose:
    """Idle arm postures over ``frames`` frames: ``postures[i + 1]`` takes over from
    ``postures[i]`` around frame ``changes[i]``; each arm lets go of its posture around the
    action windows ``(start, end, arms)`` that use it."""
    t = np.arange(frames)
    free = {s: np.ones(frames) for s in "lr"}
    for start, end, sides in windows:
        engaged = smoothstep((t - start + 12) / 16) * (1 - smoothstep((t - end + 4) / 16))
        for s in sides:
            free[s] *= 1 - engaged
    out: Pose = {}
    for key in set().union(*postures):
        value = postures[0].get(key, 0.0) + np.zeros(frames)
        for change, (a, b) in zip(changes, itertools.pairwise(postures), strict=True):
            value += (b.get(key, 0.0) - a.get(key, 0.0)) * smoothstep((t - change + 8) / 16)
        out[key] = value * free[key[-1]]
    return out


def time_warp(frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(frames,)`` monotone phase from 0 to 1 with random local speed-ups and slow-downs."""
    s = np.linspace(0.0, 1.0, frames)
    a1, a2 = rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15)
    return s + a1 * np.sin(2 * np.pi * s) / (2 * np.pi) + a2 * np.sin(4 * np.pi * s) / (4 * np.pi)


def full(pose: Pose, t: int) -> Pose:
    """Every entry as a float ``(T,)`` array (makers may return scalars)."""
    return {k: np.broadcast_to(np.asarray(v, dtype=float), (t,)).copy() for k, v in pose.items()}


def add(*poses: Pose) -> Pose:
    out: Pose = {}
    for pose in poses:
        for key, value in pose.items():
            out[key] = out[key] + value if key in out else value.copy()
    return out


def join(segments: list[Pose], lengths: list[int], gaps: list[int]) -> tuple[Pose, list[int]]:
    """Segments in time order with ``gaps`` (head, between..., tail) frames around them.

    Gaps ease from the end of one segment to the start of the next (the head and tail hold
    the first / last values). Returns the joined pose and each segment's first frame.
    """
    keys = sorted(set().union(*segments))
    zero = {k: 0.0 for k in keys}
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    starts, frame = [], 0
    for i, gap in enumerate(gaps):
        prev = {k: segments[i - 1][k][-1] for k in segments[i - 1]} if i > 0 else None
        nxt = {k: segments[i][k][0] for k in segments[i]} if i < len(segments) else None
        ease = smoothstep(np.linspace(0.0, 1.0, gap + 2)[1:-1])
        for k in keys:
            a = (prev or nxt or zero).get(k, 0.0)
            b = (nxt or prev or zero).get(k, 0.0)
            pieces[k].append(a + (b - a) * ease)
        frame += gap
        if i < len(segments):
            starts.append(frame)
            for k in keys:
                pieces[k].append(segments[i].get(k, np.zeros(lengths[i])))
            frame += lengths[i]
    return {k: np.concatenate(v) for k, v in pieces.items()}, starts


def perform(
    subject: Subject, pose: Pose, rng: np.random.Generator, at: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """``(T, V, 3)`` scene positions of ``subject`` doing ``pose`` (plus idle motion).

    ``at = (distance, yaw)``: stand ``distance`` m ahead of the origin, turned by ``yaw``.
    """
    t = len(next(iter(pose.values())))
    body = forward_kinematics(subject, add(idle_pose(subject, t, rng), pose))
    distance, yaw = at
    return body @ rotation("y", np.array(yaw)).T + np.array([0.0, 0.0, distance])


def camera_view(
    scene: np.ndarray, center: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Scene points ``(..., 3)`` (ground y = 0) seen by a random camera looking at ``center``.

    Yaw +-45 deg around the scene, 2-4.5 m away, 0.5-1.8 m high, tilted to look at chest
    height (+-4 deg), roll +-3 deg, the scene off the optical axis by up to 0.6 m sideways.
    """
    yaw = deg(rng.uniform(-45, 45))
    distance, height = rng.uniform(2.0, 4.5), rng.uniform(0.5, 1.8)
    pitch = -np.arctan2(height - 1.1, distance) + deg(rng.uniform(-4, 4))  # look at the chest
    tilt = rotation("x", np.array(pitch)) @ rotation("z", np.array(deg(rng.uniform(-3, 3))))
    rot = tilt @ rotation("y", np.array(np.pi - yaw))
    eye = np.array([rng.uniform(-0.6, 0.6), height, 0.0])  # camera, relative to the ground
    shift = -(tilt @ eye) + tilt @ np.array([0.0, 0.0, distance])
    return (scene - center) @ rot.T + shift


def sensor_noise(x: np.ndarray, rng: np.random.Generator, drops: int) -> np.ndarray:
    """Add ~1 cm Gaussian jitter (2 cm at finger joints) to ``(T, V, 3)`` positions of one
    body and zero ``drops`` short runs (2-8 frames) of 1-3 extremity joints, as Kinect does."""
    x = x + rng.normal(0.0, 0.01, size=x.shape)
    x[:, _NOISY] += rng.normal(0.0, 0.017, size=(len(x), len(_NOISY), 3))
    for _ in range(drops):
        joints = rng.choice(DROPPABLE, size=int(rng.integers(1, 4)), replace=False)
        start = int(rng.integers(0, len(x)))
        x[start : start + int(rng.integers(2, 9)), joints] = 0.0
    return x
