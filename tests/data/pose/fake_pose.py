"""A fake pose estimator and video reader for the plumbing tests (no mediapipe, no ffmpeg).

A fake video is a ``.npy`` array ``(T, H, W, 3)`` uint8 saved under a video name. In each
frame, pixel ``[0, 0, 0]`` = v is the person (0 = nobody): joint j sits at world ``(v, j, 1)``
and image ``(v / 255, j / 33)``; pixel ``[0, 0, 1]`` / 255 is joint 0's visibility (the other
joints are fully visible).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcm3.data.pose.estimator import FramePose, VideoFrames
from pcm3.errors import DataError

JOINTS = 33


def write_fake_video(path: Path, people: list[int], visibility0: int = 255,
                     size: tuple[int, int] = (6, 4)) -> Path:
    """A fake video whose frame t shows person value ``people[t]``; ``size`` is (W, H)."""
    w, h = size
    frames = np.zeros((len(people), h, w, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = people
    frames[:, 0, 0, 1] = visibility0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.save(fh, frames)
    return path


def open_fake_video(path: Path) -> VideoFrames:
    try:
        frames = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError("cannot decode the video (fake reader)", path=path) from exc
    h, w = frames.shape[1:3]
    return VideoFrames(Path(path), 25.0, (w, h), len(frames), iter(frames))


class FakePose:
    layout = "mediapipe33"
    name = "fake pose"
    made = 0

    def __init__(self) -> None:
        FakePose.made += 1
        self.closed = False

    def __call__(self, frame: np.ndarray) -> FramePose | None:
        assert not self.closed
        v = int(frame[0, 0, 0])
        if v == 0:
            return None
        j = np.arange(JOINTS, dtype=np.float32)
        world = np.stack([np.full(JOINTS, v, np.float32), j, np.ones(JOINTS, np.float32)], axis=1)
        image = np.stack([np.full(JOINTS, v / 255, np.float32), j / JOINTS], axis=1)
        visibility = np.ones(JOINTS, np.float32)
        visibility[0] = frame[0, 0, 1] / 255
        return FramePose(world, image, visibility)

    def close(self) -> None:
        self.closed = True
