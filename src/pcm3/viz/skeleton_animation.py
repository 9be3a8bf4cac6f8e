"""Skeleton animation: a stick figure of a ``(C, T, V, M)`` clip written as a GIF (or MP4).

Bones come from the layout, each body has its own colour, missing (all-zero) joints and the
bones touching them are hidden per frame. 3D clips are turned so that the skeleton stands
upright (the vertical axis is found from the layout's ``up`` joint pair) and is seen from the
front (from the ``across`` pair); 2D clips are drawn in image coordinates (y down).

Rendering uses ``matplotlib.figure.Figure`` with the Agg canvas (pyplot and the global
backend are never touched) and Pillow, which ships with Matplotlib, for the GIF.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from pcm3.errors import Pcm3Error
from pcm3.layouts import Layout

BODY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_AXIS_NAMES = "xyz"
_ELEVATION = 12.0  # degrees above the horizon
_AZIMUTH_OFFSET = 35.0  # degrees away from a straight frontal view


def _missing_joints(x: np.ndarray) -> np.ndarray:
    """``(T, V, M)`` bool: joints that are all zero (or not finite) in ``x (C, T, V, M)``."""
    return (x == 0).all(0) | ~np.isfinite(x).all(0)


def _mean_pair_vector(x: np.ndarray, missing: np.ndarray, pair: tuple[int, int] | None):
    """Mean of ``x[:, b] - x[:, a]`` over frames/bodies where both joints exist, or None."""
    if pair is None:
        return None
    a, b = pair
    both = ~missing[:, a] & ~missing[:, b]  # (T, M)
    if not both.any():
        return None
    return (x[:, :, b] - x[:, :, a])[:, both].mean(1)


def upright_frame(x: np.ndarray, layout: Layout) -> tuple[np.ndarray, list[str], float]:
    """Re-express 3D ``x (3, T, V, M)`` so that the layout's up direction is the plot's +z.

    The vertical axis is the data axis with the largest component of the mean ``up`` vector
    (z when the layout has no ``up`` pair); the other two follow cyclically (a rotation, so
    left and right are not mirrored). Returns ``(x_plot, axis labels, azimuth)``: the azimuth
    (degrees) puts the camera in front of the body when the layout has an ``across`` pair.
    """
    missing = _missing_joints(x)
    up = _mean_pair_vector(x, missing, layout.up)
    vertical = 2 if up is None else int(np.argmax(np.abs(up)))
    sign = 1.0 if up is None or up[vertical] >= 0 else -1.0
    order = [(vertical + 1) % 3, (vertical + 2) % 3, vertical]
    # Flipping the vertical axis also flips the second horizontal one: still a rotation.
    signs = np.array([1.0, sign, sign], dtype=np.float32)
    x_plot = x[order] * signs[:, None, None, None]
    labels = [("-" if s < 0 else "") + _AXIS_NAMES[k] for k, s in zip(order, signs, strict=True)]
    azimuth = -60.0  # Matplotlib's default view
    across = _mean_pair_vector(x_plot, missing, layout.across)
    if across is not None and np.abs(across[:2]).sum() > 0:
        facing = np.cross(np.array([0.0, 0.0, 1.0]), across)  # up x across = the body's front
        azimuth = float(np.degrees(np.arctan2(facing[1], facing[0]))) + _AZIMUTH_OFFSET
    return x_plot, labels, azimuth


def _bone_paths(x: np.ndarray, missing: np.ndarray, bones: tuple[tuple[int, int], ...]):
    """``(T, 3B, C)`` polyline per body: child, parent, NaN break per bone; NaN if hidden."""
    c, t = x.shape[:2]
    if not bones:
        return np.full((t, 0, c), np.nan, np.float32)
    child, parent = np.array(bones).T
    pts = x.transpose(1, 2, 0)  # (T, V, C)
    path = np.full((t, len(bones), 3, c), np.nan, np.float32)
    path[:, :, 0], path[:, :, 1] = pts[:, child], pts[:, parent]
    path[missing[:, child] | missing[:, parent]] = np.nan
    return path.reshape(t, 3 * len(bones), c)


def _limits(x: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(low, high)`` over all present joints, padded.

    No axis is thinner than 30 % of the widest; in 3D the floor (channels 0, 1) is square.
    """
    present = x[:, ~missing]  # (C, P)
    if present.shape[1] == 0:
        return -np.ones(x.shape[0]), np.ones(x.shape[0])
    low, high = present.min(1), present.max(1)
    centre, half = (low + high) / 2, (high - low) / 2
    half = np.maximum(half, 0.3 * half.max())
    if len(half) == 3:
        half[:2] = max(half[0], half[1], 0.4 * half[2])
    half = np.where(half > 0, half * 1.08, 1.0)
    return centre - half, centre + half


def _sample_frames(t: int, max_frames: int | None) -> np.ndarray:
    """Evenly spaced frame indices, at most ``max_frames`` of them (all when None)."""
    if max_frames is None or t <= max_frames:
        return np.arange(t)
    return np.unique(np.linspace(0, t - 1, max_frames).round().astype(np.int64))


def _check_inputs(x, layout, out, frame_labels, fps, max_frames) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        got = getattr(x, "shape", type(x).__name__)
        raise Pcm3Error(f"animate_skeleton: expected an array (C, T, V, M), got {got}")
    c, t, v, _ = x.shape
    if c not in (2, 3):
        raise Pcm3Error(f"animate_skeleton: expected 2 or 3 coordinate channels, got C={c}")
    if t < 1:
        raise Pcm3Error("animate_skeleton: the clip has no frames (T=0)")
    if v != layout.num_joints:
        raise Pcm3Error(
            f"animate_skeleton: {v} joints per frame but layout {layout.name!r} "
            f"has {layout.num_joints}"
        )
    if frame_labels is not None and len(frame_labels) != t:
        raise Pcm3Error(f"animate_skeleton: {len(frame_labels)} frame labels for {t} frames")
    if fps < 1 or (max_frames is not None and max_frames < 1):
        raise Pcm3Error(f"animate_skeleton: fps ({fps}) and max_frames ({max_frames}) must be >= 1")
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise Pcm3Error(f"{out}: unsupported animation format {out.suffix!r}; use .gif or .mp4")


def _ffmpeg(out: Path) -> str | None:
    """The ffmpeg executable for ``.mp4`` output (None for GIF); a clear error if it is missing."""
    if out.suffix.lower() == ".gif":
        return None
    exe = shutil.which(rcParams["animation.ffmpeg_path"]) or shutil.which("ffmpeg")
    if exe is None:
        raise Pcm3Error(
            f"{out}: writing MP4 needs ffmpeg, which was not found on PATH; install ffmpeg "
            "or write a .gif instead (GIF needs nothing extra)"
        )
    return exe


def _save(frames: list[Image.Image], out: Path, fps: int, ffmpeg: str | None) -> None:
    """Write RGB ``frames`` as a looping GIF (Pillow) or an H.264 MP4 (ffmpeg)."""
    if ffmpeg is None:
        frames[0].save(out, save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0, disposal=1)
        return
    w, h = frames[0].size
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "pipe:", "-vcodec", "libx264",
           "-pix_fmt", "yuv420p", str(out)]
    data = b"".join(f.convert("RGB").tobytes() for f in frames)
    done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise Pcm3Error(f"{out}: ffmpeg failed: {done.stderr.decode(errors='replace').strip()}")


def _make_axes(fig: Figure, c: int, low: np.ndarray, high: np.ndarray, labels, azimuth: float):
    if c == 3:
        ax = fig.add_axes((0.0, 0.0, 1.0, 0.9), projection="3d")
        ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), zlim=(low[2], high[2]))
        ax.set_box_aspect(tuple(high - low), zoom=0.88)  # equal aspect, room for the labels
        ax.view_init(elev=_ELEVATION, azim=azimuth)
        ax.set(xlabel=labels[0], ylabel=labels[1], zlabel=labels[2])
    else:
        ax = fig.add_axes((0.12, 0.08, 0.84, 0.8))
        ax.set(xlim=(low[0], high[0]), ylim=(high[1], low[1]), aspect="equal")  # image y down
        ax.set(xlabel=labels[0], ylabel=labels[1])
    ax.tick_params(labelsize=6)
    ax.locator_params(nbins=4)
    return ax


def animate_skeleton(
    x: np.ndarray,
    layout: Layout,
    out: Path,
    *,
    title: str = "",
    frame_labels: Sequence[str] | None = None,
    fps: int = 15,
    max_frames: int | None = 300,
) -> Path:
    """Write an animated stick figure of ``x (C, T, V, M)`` (valid frames only, C = 2 or 3).

    ``out`` ends in ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg). Each frame's title shows
    ``title``, then ``frame_labels[t]`` when given, and the frame number ``t/T``. Long clips
    are subsampled evenly to at most ``max_frames`` frames. Returns ``out``.

    The axes are drawn once; each frame only redraws the skeleton and the title on top of
    that cached background (about 10x faster than redrawing a 3D figure per frame).
    """
    out = Path(out)
    _check_inputs(x, layout, out, frame_labels, fps, max_frames)
    ffmpeg = _ffmpeg(out)
    x = np.asarray(x, dtype=np.float32)
    c, t, _, m = x.shape
    labels, azimuth = ["x", "y"], 0.0
    if c == 3:
        x, labels, azimuth = upright_frame(x, layout)
    missing = _missing_joints(x)  # (T, V, M)
    low, high = _limits(x, missing)  # fixed limits from every frame
    frames = _sample_frames(t, max_frames)
    missing = missing[frames]  # from here on: the drawn frames only
    x = np.where(missing[None], np.nan, x[:, frames])

    fig = Figure(figsize=(4.2, 4.6) if c == 3 else (4.2, 4.2), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = _make_axes(fig, c, low, high, labels, azimuth)
    header = fig.text(0.5, 0.97, "", ha="center", va="top", fontsize=9, animated=True)
    bodies = []  # (bone line, (T, 3B, C) bone paths, joint dots, (T, V, C) joints)
    for b in range(m):
        if missing[:, :, b].all():
            continue  # an absent body is not drawn
        colour = BODY_COLOURS[b % len(BODY_COLOURS)]
        empty = [[np.nan]] * c
        (bone_line,) = ax.plot(*empty, color=colour, lw=2.0, animated=True)
        (dots,) = ax.plot(*empty, ls="none", marker="o", ms=3.0, color=colour, animated=True)
        bone_paths = _bone_paths(x[..., b], missing[..., b], layout.bones)
        bodies.append((bone_line, bone_paths, dots, x[..., b].transpose(1, 2, 0)))
    canvas.draw()  # everything but the animated artists
    background = canvas.copy_from_bbox(fig.bbox)

    images = []
    for i, f in enumerate(frames.tolist()):
        suffix = f"{frame_labels[f]}  {f + 1}/{t}" if frame_labels is not None else f"frame {f + 1}/{t}"
        header.set_text(f"{title}\n{suffix}" if title else suffix)
        canvas.restore_region(background)
        for bone_line, bone_paths, dots, joints in bodies:
            for line, pts in ((bone_line, bone_paths[i]), (dots, joints[i])):
                if c == 3:
                    line.set_data_3d(pts[:, 0], pts[:, 1], pts[:, 2])
                else:
                    line.set_data(pts[:, 0], pts[:, 1])
                ax.draw_artist(line)
        fig.draw_artist(header)
        rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
        images.append(rgb if ffmpeg else rgb.quantize(256, method=Image.Quantize.FASTOCTREE))
    out.parent.mkdir(parents=True, exist_ok=True)
    _save(images, out, fps, ffmpeg)
    return out


def frame_labels_from_intervals(
    intervals: np.ndarray, num_frames: int, class_names: Sequence[str]
) -> list[str]:
    """The action name of each of ``num_frames`` frames from ``(K, 3)`` rows (label, start, end).

    End is exclusive; frames in no interval are ``"background"``; frames in several
    overlapping intervals get their names joined with ``" + "`` (in row order). A label
    without a class name is shown as ``"class <label>"``.
    """
    rows = np.asarray(intervals, dtype=np.int64).reshape(-1, 3)
    frame = np.arange(num_frames)
    inside = (rows[:, 1:2] <= frame) & (frame < rows[:, 2:3])  # (K, T)
    names = [
        class_names[k] if 0 <= k < len(class_names) else f"class {k}" for k in rows[:, 0].tolist()
    ]
    patterns, which = np.unique(inside.T, axis=0, return_inverse=True)  # distinct memberships
    text = [" + ".join(n for n, on in zip(names, p, strict=True) if on) or "background"
            for p in patterns]
    return [text[i] for i in which.reshape(-1).tolist()]


def show_store_sample(store_path: str | Path, index: int, out: Path, fps: int = 15) -> Path:
    """Animate sample ``index`` of a store (trimmed clip or untrimmed recording) into ``out``."""
    from pcm3.data.store import UntrimmedStore, open_store

    store = open_store(store_path)
    untrimmed = isinstance(store, UntrimmedStore)
    if not 0 <= index < len(store):
        what = "sequences" if untrimmed else "samples"
        raise Pcm3Error(f"index {index} out of range: the store has {len(store)} {what}")
    sample_id = str(store.ids[index])
    if untrimmed:
        x = store.sequence(index)
        labels = frame_labels_from_intervals(store.intervals(index), x.shape[1], store.class_names)
        return animate_skeleton(x, store.layout, Path(out), title=f"{sample_id} — untrimmed",
                                frame_labels=labels, fps=fps)
    label = int(store.labels[index])
    if label < 0:
        name = "unlabelled"
    elif label < len(store.class_names):
        name = store.class_names[label]
    else:
        name = f"class {label}"
    return animate_skeleton(store.sample(index), store.layout, Path(out),
                            title=f"{sample_id} — {name}", fps=fps)
