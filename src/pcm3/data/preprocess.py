"""Vectorised pre-processing of skeleton batches (the official ``pre_normalization``).

Every function takes float32 ``(N, C, T, V, M)`` batches with ``lengths (N,)`` valid frames
(zero padding after them) and returns new arrays; inputs are never modified. A frame (or a
joint) is *empty* when all its coordinates are exactly zero. The official per-sample loops
become index arithmetic over the whole batch; only the M persons of body selection are looped.

:func:`make_transform` chains the steps in the official order (repair, center, align) as the
callable that :func:`pcm3.data.store.write_trimmed` consumes; :func:`describe` records them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pcm3.errors import ConfigError, DataError
from pcm3.layouts import Layout, get_layout

STEPS = ("repair", "center", "align")
# (x (N, C, T, V, M), lengths (N,)) -> (x, lengths)
BatchTransform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_TINY = 1e-6  # the official thresholds for "zero vector" / "zero angle" (data_gen/rotation.py)


def _checked(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 5:
        raise DataError(f"expected a batch (N, C, T, V, M), got shape {x.shape}")
    lengths = np.asarray(lengths).astype(np.int64).reshape(-1)
    if len(lengths) != len(x) or ((lengths < 0) | (lengths > x.shape[2])).any():
        raise DataError(f"expected {len(x)} lengths in 0..{x.shape[2]}, got {lengths.tolist()[:8]}")
    return x, lengths


def _filled(x: np.ndarray) -> np.ndarray:
    """``(N, C, T, V, M)`` -> ``(N, T, V, M)``: the joint has a non-zero coordinate."""
    return (x != 0).any(axis=1)


def _valid_frames(lengths: np.ndarray, t: int) -> np.ndarray:
    """``(N, T)``: frame t lies inside the sample's valid length."""
    return np.arange(t)[None, :] < lengths[:, None]


def select_bodies(bodies: np.ndarray, keep: int = 2) -> np.ndarray:
    """``(B, T, V, C)`` tracked bodies -> the ``keep`` most moving ones ``(keep, T, V, C)``.

    Energy as in the official NTU reader (``ntu_gendata.py::get_nonzero_std``): over the
    body's non-empty frames, the std of each coordinate pooled over frames and joints,
    summed over coordinates (so a body seen in one frame ranks by its spread over joints);
    0 for a body with no non-empty frame. Bodies are ordered by energy, highest first (ties:
    lower index first); missing bodies are zero.
    """
    x = np.asarray(bodies, dtype=np.float64)
    if x.ndim != 4:
        raise DataError(f"expected bodies (B, T, V, C), got shape {x.shape}")
    if keep < 1:
        raise ConfigError(f"keep must be at least 1 body, got {keep}")
    _, t, v, c = x.shape
    frames = (x != 0).any(axis=(2, 3))  # (B, T)
    count = frames.sum(axis=1) * v  # values per coordinate
    weight = frames[:, :, None, None]
    divisor = np.maximum(count, 1)[:, None]
    mean = (x * weight).sum(axis=(1, 2)) / divisor  # (B, C)
    var = (((x - mean[:, None, None]) * weight) ** 2).sum(axis=(1, 2)) / divisor
    energy = np.where(count > 0, np.sqrt(var).sum(axis=1), 0.0)
    order = np.argsort(-energy, kind="stable")[:keep]
    out = np.zeros((keep, t, v, c), dtype=np.float32)
    out[: len(order)] = x[order]
    return out


def repair_null_frames(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop leading empty frames and tail-fill persons that end early.

    Per sample and person (within the valid length): if the first frame is empty, every
    empty frame is dropped and the rest packed to the front; the person's extent is then
    its last non-empty frame + 1. The new length is the largest extent over persons, and each
    non-empty person shorter than that is filled by repeating its first ``extent`` frames
    cyclically. Returns ``(x, new_lengths)``; frames past the new length are zero.
    Raises :class:`DataError` for a sample with no non-empty frame.
    """
    x, lengths = _checked(x, lengths)
    t = x.shape[2]
    filled = _filled(x).any(axis=2) & _valid_frames(lengths, t)[:, :, None]  # (N, T, M)
    empty = ~filled.any(axis=(1, 2))
    if empty.any():
        raise DataError("all frames are empty", sample=str(int(np.argmax(empty))))
    frame = np.arange(t)[None, :, None]
    pack = ~filled[:, :1, :]  # (N, 1, M): first frame empty
    order = np.where(pack, np.argsort(~filled, axis=1, kind="stable"), frame)  # (N, T, M)
    packed = np.take_along_axis(filled, order, axis=1)
    extent = np.where(packed.any(axis=1), t - np.argmax(packed[:, ::-1], axis=1), 0)  # (N, M)
    new_lengths = extent.max(axis=1)
    source = np.take_along_axis(order, frame % np.maximum(extent, 1)[:, None, :], axis=1)
    out = np.take_along_axis(x, source[:, None, :, None, :], axis=2)  # empty person: its frame 0
    keep = frame[:, None, :, None, :] < new_lengths[:, None, None, None, None]
    out = np.where(keep, out, np.float32(0))
    return out, new_lengths.astype(np.int64)


def center(x: np.ndarray, lengths: np.ndarray, joint: int) -> np.ndarray:
    """Subtract joint ``joint`` of person 0, frame by frame, from every non-empty joint."""
    x, lengths = _checked(x, lengths)
    origin = x[:, :, :, joint : joint + 1, :1]  # (N, C, T, 1, 1)
    keep = _filled(x) & _valid_frames(lengths, x.shape[2])[:, :, None, None]
    return np.where(keep[:, None], x - origin, np.float32(0))


def _rotations_onto(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(N, 3)`` vectors -> ``(N, 3, 3)`` rotations about ``v x target`` by their angle.

    Identity where ``v`` is ~zero or the axis / angle vanishes (parallel or anti-parallel),
    exactly as the official ``rotation_matrix(axis, angle_between(v, target))``.
    """
    v = v.astype(np.float64)
    axis = np.cross(v, target)
    norm = np.linalg.norm(v, axis=1)
    angle = np.arccos(np.clip(v @ target / np.where(norm > 0, norm, 1.0), -1.0, 1.0))
    angle = np.where(np.abs(v).sum(axis=1) < _TINY, 0.0, angle)
    identity = (np.abs(axis).sum(axis=1) < _TINY) | (np.abs(angle) < _TINY)
    k = axis / np.where(identity, 1.0, np.linalg.norm(axis, axis=1))[:, None]
    skew = np.zeros((len(v), 3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    skew = skew - skew.transpose(0, 2, 1)
    sin, cos = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    rot = np.eye(3) + sin * skew + (1 - cos) * (skew @ skew)
    rot[identity] = np.eye(3)
    return rot


def align_view(
    x: np.ndarray,
    lengths: np.ndarray,
    up: tuple[int, int] | None,
    across: tuple[int, int] | None,
) -> np.ndarray:
    """Rotate each sample so person 0's ``up`` vector points to +z, then ``across`` to +x.

    Vectors are ``x[b] - x[a]`` for a pair ``(a, b)``, read at person 0's first non-empty
    frame; the second rotation is computed after the first is applied (as officially, it may
    tilt the up vector again). Either pair may be ``None`` (that rotation is skipped).
    Needs C == 3. Empty joints stay zero.
    """
    x, lengths = _checked(x, lengths)
    n, c, t = x.shape[:3]
    if c != 3:
        raise DataError(f"view alignment needs 3D coordinates (C=3), got C={c}")
    person0 = x[..., 0].transpose(0, 2, 3, 1)  # (N, T, V, 3)
    filled = _filled(x[..., :1]).any(axis=2)[..., 0] & _valid_frames(lengths, t)
    ref = person0[np.arange(n), np.argmax(filled, axis=1)].astype(np.float64)  # (N, V, 3)
    rot = np.broadcast_to(np.eye(3), (n, 3, 3))
    if up is not None:
        rot = _rotations_onto(ref[:, up[1]] - ref[:, up[0]], np.array([0.0, 0.0, 1.0]))
    if across is not None:
        vec = np.einsum("nij,nj->ni", rot, ref[:, across[1]] - ref[:, across[0]])
        rot = _rotations_onto(vec, np.array([1.0, 0.0, 0.0])) @ rot
    return np.einsum("nij,njtvm->nitvm", rot.astype(np.float32), x)  # zero joints stay zero


def _plan(layout: Layout, steps: Sequence[str] | str, channels: int) -> tuple[list[str], dict]:
    requested = [steps] if isinstance(steps, str) else list(steps)
    unknown = [s for s in requested if s not in STEPS]
    if unknown:
        raise ConfigError(f"unknown pre-processing step(s) {unknown}; allowed: {list(STEPS)}")
    skipped: dict[str, str] = {}
    if "center" in requested and layout.center is None:
        skipped["center"] = f"layout {layout.name!r} has no centre joint"
    if "align" in requested:
        if channels != 3:
            skipped["align"] = f"view alignment needs 3D coordinates (C=3), got C={channels}"
        elif layout.up is None and layout.across is None:
            skipped["align"] = f"layout {layout.name!r} has no up and no across pair"
        else:
            for key in ("up", "across"):
                if getattr(layout, key) is None:
                    skipped[f"align.{key}"] = f"layout {layout.name!r} has no {key} pair"
    applied = [s for s in STEPS if s in requested and s not in skipped]
    return applied, skipped


def describe(
    layout: Layout | str, steps: Sequence[str] | str = STEPS, channels: int = 3
) -> dict[str, Any]:
    """What :func:`make_transform` applies to data with ``channels`` coordinates (for metadata)."""
    layout = get_layout(layout)
    applied, skipped = _plan(layout, steps, channels)
    names = layout.joint_names
    info: dict[str, Any] = {"steps": applied, "layout": layout.name}
    if "center" in applied:
        info["center_joint"] = names[layout.center]
    if "align" in applied:
        for key in ("up", "across"):
            pair = getattr(layout, key)
            if pair is not None:
                info[key] = [names[pair[0]], names[pair[1]]]
    info["skipped"] = skipped
    return info


def make_transform(layout: Layout | str, steps: Sequence[str] | str = STEPS) -> BatchTransform:
    """The chosen steps, in the official order, as ``(x, lengths) -> (x, lengths)``.

    Steps the layout cannot do are skipped (see :func:`describe`); alignment is also
    skipped for data with C != 3.
    """
    layout = get_layout(layout)
    steps = [steps] if isinstance(steps, str) else tuple(steps)
    _plan(layout, steps, 3)  # reject unknown step names now

    def transform(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, lengths = _checked(x, lengths)
        applied, _ = _plan(layout, steps, x.shape[1])
        if "repair" in applied:
            x, lengths = repair_null_frames(x, lengths)
        if "center" in applied:
            x = center(x, lengths, layout.center)
        if "align" in applied:
            x = align_view(x, lengths, layout.up, layout.across)
        return x, lengths

    return transform
