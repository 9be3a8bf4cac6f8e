"""A skeleton and a label drawn over the frames of a video, written as a GIF or MP4.

The counterpart of :mod:`pcm3.viz.skeleton_animation` for video frames: the same bones (from the
layout), body colour, hidden missing joints, even frame subsampling and GIF writer; the joints are
frame-normalised image coordinates (x / W, y / H) and the label of each frame is written in a bar
at the top. Frames wider than ``max_width`` are scaled down first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw, ImageFont

from pcm3.errors import Pcm3Error
from pcm3.layouts import Layout
from pcm3.viz.skeleton_animation import BODY_COLOURS, _sample_frames, _save

LABEL_BAR = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)


def _colour(index: int) -> tuple[int, int, int]:
    r, g, b = to_rgb(BODY_COLOURS[index % len(BODY_COLOURS)])
    return round(255 * r), round(255 * g), round(255 * b)


def draw_skeleton(frame: np.ndarray, joints: np.ndarray, layout: Layout, label: str,
                  max_width: int | None = 640) -> Image.Image:
    """``frame`` ``(H, W, 3)`` uint8 with the skeleton ``joints`` ``(V, 2)`` (frame-normalised
    x / W, y / H; a joint at exactly ``(0, 0)`` is missing and hidden with its bones) and
    ``label`` in a bar at the top."""
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    if max_width is not None and image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))))
    w, h = image.size
    draw = ImageDraw.Draw(image)
    present = (joints != 0).any(axis=1) & np.isfinite(joints).all(axis=1)
    pixels = joints * np.array([w, h], dtype=np.float32)
    colour, width = _colour(0), max(2, round(h / 160))
    for child, parent in layout.bones:
        if present[child] and present[parent]:
            draw.line([tuple(pixels[child]), tuple(pixels[parent])], fill=colour, width=width)
    r = width + 1
    for x, y in pixels[present]:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    size = max(10, round(h / 24))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        font = ImageFont.load_default()
    draw.rectangle([0, 0, w, size + 8], fill=LABEL_BAR)
    draw.text((6, 4), label, fill=LABEL_TEXT, font=font)
    return image


def overlay_video(frames: Iterable[np.ndarray], joints: np.ndarray, layout: Layout, labels: Sequence[str],
                  out: str | Path, fps: float, max_frames: int | None = 300,
                  max_width: int | None = 640) -> tuple[Path, np.ndarray]:
    """Write the ``T`` video ``frames`` with ``joints`` ``(T, V, 2)`` and ``labels`` (T strings)
    drawn on them to ``out`` (``.gif`` or ``.mp4``), keeping at most ``max_frames`` evenly spaced
    frames (the frame rate scaled so the duration stays). Returns ``(out, the frame indices drawn)``."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise Pcm3Error(f"{out}: unsupported video format {out.suffix!r}; use .gif or .mp4")
    t = len(labels)
    if joints.shape != (t, layout.num_joints, 2):
        raise Pcm3Error(f"overlay_video: joints of shape {joints.shape} for {t} labels and layout "
                        f"{layout.name!r}; expected ({t}, {layout.num_joints}, 2)")
    keep = _sample_frames(t, max_frames)
    wanted = set(keep.tolist())
    images = [draw_skeleton(frame, joints[i], layout, labels[i], max_width)
              for i, frame in enumerate(frames) if i in wanted]
    if len(images) != len(keep):
        raise Pcm3Error(f"{out}: the video gave {len(images)} of the {len(keep)} frames to draw "
                        f"(it has fewer frames than the {t} labels)")
    rate = max(fps * len(keep) / t, 1.0) if fps > 0 else 15.0
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        _save([im.quantize(256, method=Image.Quantize.FASTOCTREE) for im in images], out, round(rate), None)
    else:
        from pcm3.data.pose.frames import write_video

        even = [np.asarray(im.resize((im.width // 2 * 2, im.height // 2 * 2))) for im in images]
        write_video(out, even, fps=rate)
    return out, keep
