"""Read and write video frames with the ffmpeg binary that ``imageio-ffmpeg`` ships."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.pose.estimator import VideoFrames
from pcm3.errors import DataError, Pcm3Error

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
EXTRA_HINT = "pip install 'pcm3[video]'"


def imageio_ffmpeg() -> Any:
    """The ``imageio_ffmpeg`` module, or a clear error naming the extra to install."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise Pcm3Error(f"reading videos needs imageio-ffmpeg: {EXTRA_HINT} ({exc})") from exc
    return imageio_ffmpeg


def _ffmpeg_problem(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if any("does not contain any stream" in line for line in lines):
        return "no video stream (0 frames)"
    detail = next((line for line in reversed(lines) if "Error" in line or "Invalid" in line),
                  lines[-1] if lines else type(exc).__name__)
    return f"cannot decode the video ({detail})"


def open_video(path: str | Path) -> VideoFrames:
    """Open ``path``: its frame rate, size and a generator of ``(H, W, 3)`` uint8 RGB frames.

    Raises :class:`DataError` naming the file for a missing, empty or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such video file", path=path)
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes)", path=path)
    reader = imageio_ffmpeg().read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise DataError(_ffmpeg_problem(exc), path=path) from exc
    w, h = (int(v) for v in meta["size"])
    fps = float(meta.get("fps") or 0.0)
    nframes = meta.get("nframes")
    estimate = int(nframes) if isinstance(nframes, int | float) and np.isfinite(nframes) else None
    if estimate is None and meta.get("duration") and fps:
        estimate = round(float(meta["duration"]) * fps)

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in reader:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError, ValueError) as exc:
            raise DataError(_ffmpeg_problem(exc), path=path) from exc
        finally:
            reader.close()

    return VideoFrames(path, fps, (w, h), estimate, frames())


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write ``(H, W, 3)`` uint8 RGB frames (all of one size) as an H.264 video at ``path``."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise Pcm3Error(f"{path}: no frames to write")
    h, w = first.shape[:2]
    writer = imageio_ffmpeg().write_frames(str(path), (w, h), fps=fps, macro_block_size=1,
                                           output_params=["-loglevel", "error"])
    writer.send(None)
    try:
        for frame in chain([first], frames):
            if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
                raise Pcm3Error(f"{path}: frames must all be ({h}, {w}, 3) uint8, got "
                                f"{frame.shape} {frame.dtype}")
            writer.send(np.ascontiguousarray(frame).tobytes())
    finally:
        writer.close()
    return path


def panned_frames(image: np.ndarray, num_frames: int, size: tuple[int, int] = (640, 480),
                  scale: tuple[float, float] = (0.7, 0.9), background: int = 90) -> list[np.ndarray]:
    """A still ``image`` ``(h, w, 3)`` uint8 moved and scaled over ``num_frames`` frames of ``size``
    ``(W, H)``: its height grows from ``scale[0]`` to ``scale[1]`` of H while it slides from the
    left edge to the right one, standing on the bottom edge (nearest-pixel resizing)."""
    w_out, h_out = size
    frames = []
    for t in range(num_frames):
        f = t / max(num_frames - 1, 1)
        h = min(h_out, round(h_out * (scale[0] + (scale[1] - scale[0]) * f)))
        w = min(w_out, round(image.shape[1] * h / image.shape[0]))
        rows = np.arange(h) * image.shape[0] // h
        cols = np.arange(w) * image.shape[1] // w
        canvas = np.full((h_out, w_out, 3), background, dtype=np.uint8)
        x0 = round((w_out - w) * f)
        canvas[h_out - h :, x0 : x0 + w] = image[rows][:, cols]
        frames.append(canvas)
    return frames
