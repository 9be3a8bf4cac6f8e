"""Whole-body actions (legs, trunk, posture changes): one maker per class (see
:mod:`.primitives` for the contract), plus the sitting posture other actions are done in.
"""

from __future__ import annotations

import itertools

import numpy as np

from pcm3.data.synthetic.primitives import Pose, deg, hold, keyframes, smoothstep, window


def kick(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    t1 = rng.uniform(0.2, 0.3)
    t2, t3 = t1 + rng.uniform(0.1, 0.2), t1 + rng.uniform(0.25, 0.35)
    times = [0, t1, t2, t3, t3 + rng.uniform(0.15, 0.25), 1]
    hip, ext = rng.uniform(50, 65) * amp, rng.uniform(70, 95) * amp
    return {
        "hip_flex_l": deg(keyframes(u, times, [0, hip, ext, hip, 0, 0])),
        "knee_l": deg(keyframes(u, times, [0, 90, rng.uniform(0, 20), 90, 0, 0])),
        "ankle_l": deg(keyframes(u, times, [0, 20, 40, 20, 0, 0])),
        "knee_r": deg(keyframes(u, times, [0, 10, 12, 10, 0, 0])),
        "trunk_pitch": deg(keyframes(u, times, [0, -5, -rng.uniform(5, 15), -5, 0, 0])),
        "shoulder_abd_l": deg(keyframes(u, times, [0, 20, 25, 20, 0, 0])),
        "shoulder_abd_r": deg(keyframes(u, times, [0, 20, 25, 20, 0, 0])),
    }, None


def bow(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    bend = deg(rng.uniform(35, 70) * amp) * hold(u, rng, rise=0.3)
    hang = rng.uniform(0.75, 0.95) * bend
    return {"trunk_pitch": bend, "neck_pitch": rng.uniform(0.1, 0.4) * bend,
            "shoulder_flex_l": hang, "shoulder_flex_r": hang}, None


def squat(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.35)
    arms = deg(rng.uniform(0, 90)) * env
    return {
        "hip_flex_l": deg(rng.uniform(95, 120) * amp) * env,
        "hip_flex_r": deg(rng.uniform(95, 120) * amp) * env,
        "knee_l": deg(rng.uniform(110, 140) * amp) * env,
        "knee_r": deg(rng.uniform(110, 140) * amp) * env,
        "trunk_pitch": deg(rng.uniform(25, 45)) * env,
        "shoulder_flex_l": arms, "shoulder_flex_r": arms,
    }, None


def pick_up(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    """Bend down (stooping or squatting), take something from the floor, hold it in front."""
    t1 = rng.uniform(0.25, 0.4)
    t2 = t1 + rng.uniform(0.05, 0.15)
    times = [0, t1, t2, min(t2 + rng.uniform(0.25, 0.35), 0.95), 1]
    down = keyframes(u, times, [0, 1, 1, 0, 0])
    carry = keyframes(u, times, [0, 0, 0, 1, 1])
    stoop = rng.uniform(0.0, 1.0)
    trunk, hip = 65 + 30 * stoop, 100 - 20 * stoop
    return {"trunk_pitch": deg(trunk) * down, "neck_pitch": deg(15) * down,
            "hip_flex_l": deg(hip) * down, "hip_flex_r": deg(hip) * down,
            "knee_l": deg(1.2 * hip) * down, "knee_r": deg(1.2 * hip) * down,
            "shoulder_flex_r": deg(trunk + rng.uniform(-5, 10)) * down
            + deg(rng.uniform(25, 40)) * carry,
            "elbow_r": deg(rng.uniform(70, 95)) * carry,
            "shoulder_flex_l": deg(0.6 * trunk) * down}, None


def put_down(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    return pick_up(1.0 - u, rng, amp)


def jump(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    n = int(rng.integers(1, 3)) if len(u) >= 90 else 1
    edges = np.linspace(rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0), n + 1)
    pose: Pose = {}
    times = [0, 0.3, 0.5, 0.7, 0.85, 1]
    for a, b in itertools.pairwise(edges):
        s = window(u, a, b)
        height = rng.uniform(0.1, 0.3) * amp
        q = window(s, 0.5, 0.7)
        parts = {
            "hip_flex": keyframes(s, times, [0, 45, 0, 0, 35, 0]),
            "knee": keyframes(s, times, [0, 80, 0, 10, 60, 0]),
            "ankle": keyframes(s, times, [0, 0, 30, 20, 0, 0]),
            "shoulder_flex": keyframes(s, times, [0, -25, 80 * amp, 40, 10, 0]),
        }
        for key, value in parts.items():
            for side in "lr":
                pose[f"{key}_{side}"] = pose.get(f"{key}_{side}", 0.0) + deg(value)
        pose["trunk_pitch"] = pose.get("trunk_pitch", 0.0) + deg(
            keyframes(s, times, [0, 25, 0, 0, 15, 0]))
        pose["lift"] = pose.get("lift", 0.0) + height * 4.0 * q * (1.0 - q)
    return pose, None


def turn_around(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    a, b = rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)
    s = window(u, a, b)
    direction = rng.choice([-1.0, 1.0])
    steps = np.sin(np.pi * rng.integers(2, 5) * s)
    lift = deg(rng.uniform(15, 30))
    return {
        "yaw": direction * deg(rng.uniform(165, 195)) * smoothstep(s),
        "hip_flex_l": lift * np.maximum(steps, 0), "knee_l": 2 * lift * np.maximum(steps, 0),
        "hip_flex_r": lift * np.maximum(-steps, 0), "knee_r": 2 * lift * np.maximum(-steps, 0),
        "shoulder_abd_l": deg(8) * np.sin(np.pi * s), "shoulder_abd_r": deg(8) * np.sin(np.pi * s),
    }, None


def walk_in_place(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    a, b = rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0)
    env = keyframes(u, [a, a + 0.1, b - 0.1, b], [0, 1, 1, 0])
    phase = 2 * np.pi * rng.uniform(2.0, 4.0) * window(u, a, b)
    hip, arm = deg(rng.uniform(25, 45) * amp), deg(rng.uniform(10, 30) * amp)
    up_l, up_r = np.maximum(np.sin(phase), 0) * env, np.maximum(-np.sin(phase), 0) * env
    return {
        "hip_flex_l": hip * up_l, "knee_l": 1.8 * hip * up_l,
        "hip_flex_r": hip * up_r, "knee_r": 1.8 * hip * up_r,
        "shoulder_flex_l": -arm * np.sin(phase) * env, "shoulder_flex_r": arm * np.sin(phase) * env,
        "elbow_l": deg(25) * env, "elbow_r": deg(25) * env,
    }, None


def sit_down(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    t1 = rng.uniform(0.1, 0.25)
    t2, t3 = t1 + rng.uniform(0.3, 0.45), min(t1 + rng.uniform(0.5, 0.65), 0.95)
    times = [0, t1, t2, t3, 1]
    seat = rng.uniform(88, 105)
    lean = rng.uniform(30, 50)
    return {
        "trunk_pitch": deg(keyframes(u, times, [0, 15, lean, 15, rng.uniform(0, 15)])),
        "hip_flex_l": deg(keyframes(u, times, [0, 10, 80, seat, seat])),
        "hip_flex_r": deg(keyframes(u, times, [0, 10, 80, seat, seat])),
        "knee_l": deg(keyframes(u, times, [0, 10, 80, seat - 5, seat - 5])),
        "knee_r": deg(keyframes(u, times, [0, 10, 80, seat - 5, seat - 5])),
        "shoulder_flex_l": deg(keyframes(u, times, [0, 20, 35 * amp, 15, 20])),
        "shoulder_flex_r": deg(keyframes(u, times, [0, 20, 35 * amp, 15, 20])),
        "elbow_l": deg(keyframes(u, times, [0, 10, 20, 30, 40])),
        "elbow_r": deg(keyframes(u, times, [0, 10, 20, 30, 40])),
    }, None


def sitting(frames: int, rng: np.random.Generator) -> Pose:
    """Sitting on a chair (legs and trunk only), to add under upper-body actions."""
    seat = deg(rng.uniform(85, 105))
    pose = {"hip_flex_l": seat, "hip_flex_r": seat, "knee_l": seat - deg(rng.uniform(0, 15)),
            "knee_r": seat - deg(rng.uniform(0, 15)), "trunk_pitch": deg(rng.uniform(-5, 10))}
    return {k: np.full(frames, v) for k, v in pose.items()}


def stand_up(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    return sit_down(1.0 - u, rng, amp)
