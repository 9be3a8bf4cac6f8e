"""Motion primitives: smooth envelopes and keyframes over a phase ``u`` in [0, 1].

A *maker* turns a (time-warped) phase ``u`` — ``(D,)`` values rising from 0 to 1 over the D
frames of a take — into the actor's pose and, for interactions, the partner's (poses as in
:mod:`pcm3.data.synthetic.body`), drawing every random choice from the caller's generator;
``amp`` scales the movement amplitude (subject style times per-take variation).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Pose = dict[str, np.ndarray]
Maker = Callable[[np.ndarray, np.random.Generator, float], tuple[Pose, Pose | None]]
deg = np.deg2rad
FPS = 30.0
MIN_MOVE_FRAMES = 20  # a limb takes at least this long (2/3 s) to lift or drop


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def keyframes(u: np.ndarray, times: list[float], values: list[float]) -> np.ndarray:
    """Smooth (ease-in-out) interpolation through ``(time, value)`` keys; flat outside."""
    times_a, values_a = np.asarray(times, float), np.asarray(values, float)
    seg = np.clip(np.searchsorted(times_a, u, side="right") - 1, 0, len(times_a) - 2)
    t0, t1 = times_a[seg], times_a[seg + 1]
    s = smoothstep((u - t0) / np.maximum(t1 - t0, 1e-9))
    return values_a[seg] + (values_a[seg + 1] - values_a[seg]) * s


def hold(u: np.ndarray, rng: np.random.Generator, rise: float = 0.3) -> np.ndarray:
    """0 -> 1 -> 0: rise over about ``rise`` of the take (at least MIN_MOVE_FRAMES), hold,
    fall back (random timing)."""
    least = min(MIN_MOVE_FRAMES / len(u), 0.4)
    a = rng.uniform(0.0, 0.1)
    b = a + max(rise * rng.uniform(0.7, 1.3), least)
    d = 1.0 - rng.uniform(0.0, 0.1)
    c = d - max(rise * rng.uniform(0.7, 1.3), least)
    return keyframes(u, [a, b, max(c, b + 0.05), max(d, b + 0.1)], [0, 1, 1, 0])


def pulse(u: np.ndarray, center: float, width: float) -> np.ndarray:
    """A raised-cosine bump of total width ``width`` peaking (at 1) at ``center``."""
    x = np.clip((u - center) / width, -0.5, 0.5)
    return 0.5 + 0.5 * np.cos(2.0 * np.pi * x)


def window(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """The phase rescaled to 0..1 inside ``[a, b]`` (clipped outside)."""
    return np.clip((u - a) / (b - a), 0.0, 1.0)


def cycles(u: np.ndarray, hz: float) -> np.ndarray:
    """The phase ``u`` counted in periods of a ``hz`` Hz rhythm (the take has ``len(u)``
    frames at FPS)."""
    return hz * len(u) / FPS * u


def oscillation(u: np.ndarray, hz: float, rng: np.random.Generator) -> np.ndarray:
    """``sin`` at ``hz`` Hz (on the take's own, warped, clock) with a random phase."""
    return np.sin(2 * np.pi * cycles(u, hz) + rng.uniform(0, 2 * np.pi))
