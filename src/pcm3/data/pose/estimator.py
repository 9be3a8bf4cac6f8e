"""The pose-estimator interface and the options of video reading.

An estimator is made once per video (trackers keep state between frames) and called on every
frame, in order; it returns the pose of one person or ``None`` when it finds nobody. Tests and
other pose models plug in through ``VideoPoseOptions.make_estimator``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

COORDS = ("world", "image")


@dataclass
class FramePose:
    """One person in one frame. ``world`` ``(V, 3)`` metres, origin at the hips; ``image`` ``(V, 2)``
    normalised frame coordinates (x / width, y / height, origin top-left, y down); ``visibility``
    ``(V,)`` in [0, 1]: how likely the joint is visible in the frame."""

    world: np.ndarray
    image: np.ndarray
    visibility: np.ndarray


class PoseEstimator(Protocol):
    """Finds one person per frame. ``layout``: the built-in layout of its joints; ``name``:
    what it is (recorded in the store)."""

    layout: str
    name: str

    def __call__(self, frame: np.ndarray) -> FramePose | None:
        """``frame`` ``(H, W, 3)`` uint8 RGB -> the person's pose, or None."""
        ...

    def close(self) -> None:
        ...


@dataclass
class VideoFrames:
    """An opened video: ``fps``, ``size`` ``(W, H)``, ``frames`` yielding ``(H, W, 3)`` uint8 RGB
    arrays; ``num_frames`` is the container's estimate (None when unknown)."""

    path: Path
    fps: float
    size: tuple[int, int]
    num_frames: int | None
    frames: Iterator[np.ndarray]


@dataclass
class VideoPoseOptions:
    """How videos become skeletons.

    ``coords``: ``world`` (3D, metres) or ``image`` (2D, in units of the frame height: x * W / H,
    y, origin top-left, y down); ``min_visibility``: a joint seen with less visibility is stored
    as missing (all-zero); ``make_estimator``: makes the estimator of one video (None: MediaPipe
    Pose); ``open_video``: opens a video file (None: imageio-ffmpeg); ``progress``: show tqdm
    progress bars over videos and frames.
    """

    coords: str = "world"
    min_visibility: float = 0.5
    make_estimator: Callable[[], PoseEstimator] | None = None
    open_video: Callable[[Path], VideoFrames] | None = None
    progress: bool = True
