"""Two-person actions: makers return the actor's and the partner's pose (partner facing the
actor; see :mod:`.primitives` for the contract)."""

from __future__ import annotations

import numpy as np

from pcm3.data.synthetic.primitives import Pose, deg, hold, keyframes, pulse, smoothstep, window


def _offer_hand(env: np.ndarray, rng: np.random.Generator, amp: float) -> Pose:
    shake = deg(rng.uniform(4, 10)) * np.sin(2 * np.pi * rng.uniform(2, 4) * env) * env**4
    return {"shoulder_flex_r": deg(rng.uniform(35, 55) * amp) * env + shake,
            "shoulder_abd_r": deg(rng.uniform(-30, -20)) * env,
            "elbow_r": deg(rng.uniform(30, 50)) * env, "trunk_pitch": deg(5) * env}


def handshake(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, Pose]:
    env = hold(u, rng, rise=0.3)
    lag = rng.uniform(0.0, 0.08)
    return _offer_hand(env, rng, amp), _offer_hand(hold(u - lag, rng, rise=0.3), rng, 1.0)


def push(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, Pose]:
    t1 = rng.uniform(0.2, 0.35)
    t2 = t1 + rng.uniform(0.08, 0.15)
    times = [0, t1, t2, t2 + 0.1, 1]
    flex = deg(keyframes(u, times, [0, 70, 85 * amp, 60, 0]))
    elbow = deg(keyframes(u, times, [0, 100, 10, 30, 0]))
    actor = {"shoulder_flex_l": flex, "shoulder_flex_r": flex, "elbow_l": elbow, "elbow_r": elbow,
             "trunk_pitch": deg(keyframes(u, times, [0, 5, 20, 10, 0])),
             "shift_z": keyframes(u, times, [0, 0.05, 0.15, 0.15, 0.15])}
    hit = window(u, t2 - 0.02, t2 + rng.uniform(0.1, 0.2))
    pushed = pulse(hit, 0.5, 1.0)
    back = rng.uniform(0.2, 0.4) * amp
    partner = {"shift_z": -back * smoothstep(hit), "trunk_pitch": deg(-15) * pushed,
               "shoulder_abd_l": deg(30) * pushed, "shoulder_abd_r": deg(30) * pushed,
               "hip_flex_l": deg(-20) * pushed, "neck_pitch": deg(10) * pushed}
    return actor, partner


def _embrace(env: np.ndarray, rng: np.random.Generator) -> Pose:
    flex, abd = deg(rng.uniform(70, 90)) * env, deg(rng.uniform(15, 30)) * env
    elbow, twist = deg(rng.uniform(60, 80)) * env, deg(rng.uniform(-70, -50)) * env
    return {"shoulder_flex_l": flex, "shoulder_flex_r": flex, "shoulder_abd_l": abd,
            "shoulder_abd_r": abd, "elbow_l": elbow, "elbow_r": elbow,
            "shoulder_twist_l": twist, "shoulder_twist_r": twist,
            "trunk_pitch": deg(10) * env, "shift_z": 0.08 * env}


def hug(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, Pose]:
    lag = rng.uniform(0.0, 0.1)
    return _embrace(hold(u, rng, rise=0.3), rng), _embrace(hold(u - lag, rng, rise=0.3), rng)


def point_at_other(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, Pose]:
    env = hold(u, rng, rise=0.25)
    actor = {"shoulder_flex_r": deg(rng.uniform(75, 95) * amp) * env,
             "shoulder_abd_r": deg(rng.uniform(-10, 5)) * env,
             "elbow_r": deg(rng.uniform(0, 10)) * env, "wrist_r": deg(-10) * env}
    look = hold(u - rng.uniform(0.0, 0.15), rng, rise=0.2)
    partner = {"neck_pitch": deg(rng.uniform(-5, 10)) * look,
               "trunk_pitch": deg(rng.uniform(-5, 5)) * look}
    return actor, partner


def high_five(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, Pose]:
    def slap(env: np.ndarray) -> Pose:
        return {"shoulder_flex_r": deg(rng.uniform(120, 150) * amp) * env,
                "shoulder_abd_r": deg(rng.uniform(-20, -5)) * env,
                "elbow_r": deg(rng.uniform(20, 45)) * env, "wrist_r": deg(-30) * env}

    rise = rng.uniform(0.15, 0.3)
    return slap(hold(u, rng, rise)), slap(hold(u - rng.uniform(0.0, 0.06), rng, rise))


def step_in(u: np.ndarray, rng: np.random.Generator, gap: float) -> Pose:
    """Walk ``gap`` m towards the partner early in the take and back at its end, stepping."""
    a1, a2 = rng.uniform(0.1, 0.25), rng.uniform(0.8, 0.9)
    near = keyframes(u, [0, a1, a2, 1], [0, 1, 1, 0])
    phase = 2 * np.pi * rng.uniform(1.0, 2.0) * near
    lift = deg(rng.uniform(15, 25)) * np.sin(np.pi * near) * min(gap / 0.3, 1.0)
    up_l, up_r = lift * np.maximum(np.sin(phase), 0), lift * np.maximum(-np.sin(phase), 0)
    return {"shift_z": gap * near, "hip_flex_l": up_l, "knee_l": 2 * up_l,
            "hip_flex_r": up_r, "knee_r": 2 * up_r}
