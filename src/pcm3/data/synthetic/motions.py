"""Upper-body actions (arms and head): one maker per class (see :mod:`.primitives` for the
contract). Arm makers are written for one side; the catalogue mirrors them for the other.
"""

from __future__ import annotations

import numpy as np

from pcm3.data.synthetic.primitives import (
    Pose,
    cycles,
    deg,
    hold,
    keyframes,
    oscillation,
    pulse,
    window,
)


def _arm_up(env: np.ndarray, rng: np.random.Generator, amp: float, s: str) -> Pose:
    """The arm of side ``s`` lifted high, forward or out to the side, scaled by ``env``."""
    lift = deg(min(rng.uniform(120, 172) * amp, 178))
    if rng.random() < 0.6:  # forward raise
        flex, abd = lift, deg(rng.uniform(0, 25))
    else:  # sideways raise
        flex, abd = deg(rng.uniform(0, 30)), lift
    return {f"shoulder_flex_{s}": flex * env, f"shoulder_abd_{s}": abd * env,
            f"elbow_{s}": deg(rng.uniform(0, 25)) * env}


def raise_arm(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    return _arm_up(hold(u, rng), rng, amp, "l"), None


def raise_both(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    pose = _arm_up(hold(u, rng), rng, amp, "l")
    pose.update({k[:-1] + "r": v * rng.uniform(0.9, 1.1) for k, v in pose.items()})
    return pose, None


def _swing(u: np.ndarray, env: np.ndarray, rng: np.random.Generator, amp: float) -> np.ndarray:
    return deg(rng.uniform(10, 25) * amp) * oscillation(u, rng.uniform(1.5, 2.5), rng) * env**3


def wave(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    """Arm up and waving: overhead side to side, or a 'hi' with the forearm up."""
    env = hold(u, rng, rise=0.2)
    swing = _swing(u, env, rng, amp)
    if rng.random() < 0.6:
        pose = _arm_up(env, rng, amp, "l")
        pose["shoulder_abd_l"] = pose["shoulder_abd_l"] + swing
        pose["elbow_l"] = pose["elbow_l"] + 0.5 * np.abs(swing)
        return pose, None
    return {
        "shoulder_abd_l": deg(rng.uniform(70, 110) * amp) * env,
        "shoulder_flex_l": deg(rng.uniform(0, 30)) * env,
        "shoulder_twist_l": deg(rng.uniform(75, 100)) * env,
        "elbow_l": deg(rng.uniform(60, 100)) * env + swing,
    }, None


def wave_both(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    """Both arms overhead, waving together or in turn (cheering)."""
    pose, _ = raise_both(u, rng, amp)
    env = pose["shoulder_flex_l"] / max(np.abs(pose["shoulder_flex_l"]).max(), 1e-6)
    swing = _swing(u, np.abs(env), rng, amp)
    for s, sign in (("l", 1.0), ("r", rng.choice([-1.0, 1.0]))):
        pose[f"shoulder_abd_{s}"] = pose[f"shoulder_abd_{s}"] + sign * swing
        pose[f"elbow_{s}"] = pose[f"elbow_{s}"] + 0.5 * np.abs(swing)
    return pose, None


def nod(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.15)
    dip = 0.5 - 0.5 * np.cos(2 * np.pi * cycles(window(u, 0.05, 0.95), rng.uniform(1.0, 2.0)))
    return {"neck_pitch": deg(rng.uniform(20, 35) * amp) * dip * env,
            "trunk_pitch": deg(rng.uniform(0, 5)) * env}, None


def shake_head(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.15)
    turn = deg(rng.uniform(25, 45) * amp) * oscillation(u, rng.uniform(1.0, 2.5), rng) * env
    return {"head_yaw": turn, "trunk_yaw": rng.uniform(0.05, 0.15) * turn,
            "neck_pitch": deg(rng.uniform(0, 15)) * env,
            "trunk_pitch": deg(rng.uniform(0, 5)) * env}, None


def reach_forward(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.35)
    return {
        "shoulder_flex_r": deg(rng.uniform(70, 100) * amp) * env,
        "shoulder_abd_r": deg(rng.uniform(-15, 0)) * env,
        "elbow_r": deg(rng.uniform(40, 70)) * np.sin(np.pi * env) + deg(5) * env,
        "wrist_r": deg(rng.uniform(0, 20)) * env,
        "trunk_pitch": deg(rng.uniform(10, 25) * amp) * env,
        "trunk_yaw": deg(rng.uniform(0, 10)) * env,
        "shoulder_flex_l": deg(rng.uniform(0, 15)) * env,
    }, None


def punch(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    """1-3 fast straight punches, from a boxing guard or from the hip."""
    guard = keyframes(u, [0, rng.uniform(0.1, 0.2), rng.uniform(0.8, 0.9), 1], [0, 1, 1, 0])
    guard = guard * (rng.random() < 0.6)
    n = int(rng.integers(1, 4))
    centers = np.linspace(0.3, 0.7, n) + rng.uniform(-0.04, 0.04, n) if n > 1 else [0.5]
    width = max(rng.uniform(0.1, 0.16), 9 / len(u))
    strike = sum(pulse(u, c, width) for c in centers)
    chamber = sum(pulse(u, c, 2.5 * width) for c in centers)
    cocked = np.maximum(guard, np.clip(1.5 * chamber, 0, 1))  # the fist starts from the chest
    return {
        "shoulder_flex_r": deg(rng.uniform(30, 50)) * cocked + deg(45 * amp) * strike,
        "elbow_r": deg(rng.uniform(100, 130)) * cocked - deg(100) * strike,
        "shoulder_abd_r": deg(-10) * strike,
        "shoulder_flex_l": deg(rng.uniform(30, 50)) * guard,
        "elbow_l": deg(rng.uniform(100, 130)) * guard,
        "shoulder_abd_l": deg(-10) * guard,
        "trunk_yaw": deg(rng.uniform(10, 25) * amp) * strike,
        "knee_l": deg(10) * guard, "knee_r": deg(10) * guard,
    }, None


def salute(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.2)
    return {"shoulder_flex_r": deg(rng.uniform(100, 120)) * env,
            "shoulder_abd_r": deg(rng.uniform(25, 40) * amp) * env,
            "shoulder_twist_r": deg(rng.uniform(-65, -55)) * env,
            "elbow_r": deg(rng.uniform(105, 115)) * env}, None


def stretch(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    """Both arms overhead, then leaning slowly to the sides (or back)."""
    pose, _ = raise_both(u, rng, amp)
    env = pose["shoulder_flex_l"] / max(np.abs(pose["shoulder_flex_l"]).max(), 1e-6)
    sway = oscillation(u, rng.uniform(0.4, 0.9), rng) * np.abs(env) ** 2
    if rng.random() < 0.7:
        pose["trunk_roll"] = deg(rng.uniform(10, 25) * amp) * sway
    else:
        pose["trunk_pitch"] = -deg(rng.uniform(8, 15) * amp) * np.abs(env) ** 2
    return pose, None


def _hands_together(env: np.ndarray, rng: np.random.Generator) -> Pose:
    """Both hands meeting in front of the chest (or, 30 %, overhead)."""
    if rng.random() < 0.7:
        flex, elbow = rng.uniform(55, 80), rng.uniform(40, 60)
    else:
        flex, elbow = rng.uniform(110, 140), rng.uniform(30, 50)
    pose = {"shoulder_flex": deg(flex) * env, "elbow": deg(elbow) * env,
            "shoulder_abd": deg(-26 + rng.uniform(-2, 2)) * env}
    return {f"{k}_{s}": v for k, v in pose.items() for s in "lr"}


def clap(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.2)
    pose = _hands_together(env, rng)
    opening = 0.5 - 0.5 * np.cos(2 * np.pi * cycles(u, rng.uniform(1.5, 3.0)))
    for s in "lr":
        pose[f"shoulder_abd_{s}"] += deg(rng.uniform(20, 40) * amp) * opening * env**2
    return pose, None


def rub_hands(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.2)
    pose = _hands_together(env, rng)
    slide = deg(rng.uniform(4, 10) * amp) * oscillation(u, rng.uniform(2.0, 4.0), rng) * env**2
    pose["shoulder_flex_l"] += slide
    pose["shoulder_flex_r"] -= slide
    return pose, None


def touch_head(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    env = hold(u, rng, rise=0.3)
    rub = deg(rng.uniform(0, 8)) * np.sin(2 * np.pi * rng.uniform(1, 4) * u) * env**3
    elbow_out = rng.uniform(0.0, 1.0)  # elbow forward (0) ... out to the side (1)
    pose = {
        "shoulder_flex_r": deg(130 + 40 * elbow_out + rng.uniform(-5, 5)) * env,
        "shoulder_abd_r": deg(30 * elbow_out + rng.uniform(-5, 5)) * env + rub,
        "shoulder_twist_r": deg(-45 - 45 * elbow_out) * env,
        "elbow_r": deg(rng.uniform(88, 102)) * env,
        "neck_pitch": deg(rng.uniform(0, 15)) * env,
    }
    return pose, None


def throw(u: np.ndarray, rng: np.random.Generator, amp: float) -> tuple[Pose, None]:
    t1 = rng.uniform(0.2, 0.35)
    t2 = t1 + rng.uniform(0.1, 0.18)
    t3 = t2 + rng.uniform(0.1, 0.15)
    times = [0, t1, t2, t3, 1]
    return {
        "shoulder_abd_r": deg(keyframes(u, times, [0, 85, 40, 10, 0])),
        "shoulder_twist_r": deg(keyframes(u, times, [0, 80, 0, -10, 0])),
        "shoulder_flex_r": deg(keyframes(u, times, [0, 0, 110 * amp, 40, 0])),
        "elbow_r": deg(keyframes(u, times, [0, 100, 10, 25, 0])),
        "shoulder_flex_l": deg(keyframes(u, times, [0, 60, 20, 0, 0])),
        "trunk_yaw": deg(keyframes(u, times, [0, -25, 25 * amp, 20, 0])),
        "trunk_pitch": deg(keyframes(u, times, [0, -5, 20, 25, 0])),
        "hip_flex_l": deg(keyframes(u, times, [0, 25, 5, 0, 0])),
    }, None
