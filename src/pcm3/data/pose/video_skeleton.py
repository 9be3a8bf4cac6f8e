"""One video -> one skeleton sequence ``(C, T, V)``: the pose estimator on every frame, joints
seen with too little visibility and frames without a person left all-zero (missing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.pose.estimator import COORDS, FramePose, VideoPoseOptions
from pcm3.errors import ConfigError, DataError
from pcm3.layouts import get_layout


@dataclass
class VideoSkeleton:
    """``x`` ``(C, T, V)`` float32 for all T frames of the video (zero where missing); ``person``
    ``(T,)`` bool: a person was found in the frame with at least one joint visible enough;
    ``fps``; the ``estimator``'s name; its ``layout``; ``image`` ``(2, T, V)`` the same joints in
    frame-normalised image coordinates (x / W, y / H, origin top-left), zero where missing, for
    drawing on the frames."""

    x: np.ndarray
    person: np.ndarray
    fps: float
    estimator: str
    layout: str
    image: np.ndarray | None = None

    def person_span(self) -> tuple[int, int]:
        """``(start, stop)``: the frames from the first to the last one with a person."""
        found = np.flatnonzero(self.person)
        return int(found[0]), int(found[-1]) + 1

    def summary(self) -> dict[str, Any]:
        start, stop = self.person_span()
        return {"frames": int(self.x.shape[1]), "fps": round(self.fps, 3),
                "frames_with_person": int(self.person.sum()), "person_from": start, "person_to": stop}


def check_options(options: VideoPoseOptions) -> None:
    if options.coords not in COORDS:
        raise ConfigError(f"coords {options.coords!r}: allowed {list(COORDS)}")
    if not 0.0 <= options.min_visibility <= 1.0:
        raise ConfigError(f"min_visibility {options.min_visibility}: must lie in [0, 1]")


def pose_coordinates(pose: FramePose, coords: str, size: tuple[int, int], min_visibility: float,
                     joints: int, path: Path, frame: int) -> np.ndarray:
    """``(C, V)`` coordinates of ``pose`` (C = 3 world or 2 image), low-visibility joints zero."""
    values = np.asarray(pose.world if coords == "world" else pose.image, dtype=np.float32)
    visibility = np.asarray(pose.visibility, dtype=np.float32).reshape(-1)
    width = 3 if coords == "world" else 2
    if values.shape != (joints, width) or visibility.shape != (joints,):
        raise DataError(f"frame {frame}: the pose estimator gave {coords} landmarks of shape "
                        f"{values.shape} and visibility {visibility.shape}, expected ({joints}, {width}) "
                        f"and ({joints},)", path=path)
    if coords == "image":
        values = values * np.array([size[0] / size[1], 1.0], dtype=np.float32)  # units of the height
    if not np.isfinite(values).all():
        raise DataError(f"frame {frame}: the pose estimator gave non-finite coordinates", path=path)
    return np.where(visibility[:, None] >= min_visibility, values, np.float32(0)).T


def frame_image_points(pose: FramePose, min_visibility: float, joints: int, path: Path,
                       frame: int) -> np.ndarray:
    """``(2, V)`` frame-normalised image coordinates of ``pose`` (x / W, y / H), low-visibility
    joints zero."""
    return pose_coordinates(pose, "image", (1, 1), min_visibility, joints, path, frame)


def estimate_video(path: str | Path, options: VideoPoseOptions, position: int = 1) -> VideoSkeleton:
    """Run one fresh pose estimator over every frame of the video at ``path``.

    Raises :class:`DataError` naming the file when it cannot be read, has no frames, or shows
    no person in any frame. ``position``: the line of the frame progress bar.
    """
    from tqdm.auto import tqdm

    check_options(options)
    path = Path(path)
    if options.open_video is None:
        from pcm3.data.pose.frames import open_video
    else:
        open_video = options.open_video
    if options.make_estimator is None:
        from pcm3.data.pose.mediapipe_pose import MediaPipePose as make_estimator
    else:
        make_estimator = options.make_estimator
    video = open_video(path)
    estimator = make_estimator()
    joints = get_layout(estimator.layout).num_joints
    channels = 3 if options.coords == "world" else 2
    columns: list[np.ndarray] = []
    image_columns: list[np.ndarray] = []
    empty_image = np.zeros((2, joints), dtype=np.float32)
    found: list[bool] = []
    empty = np.zeros((channels, joints), dtype=np.float32)
    try:
        with tqdm(total=video.num_frames, desc=path.name, unit="frame", leave=False,
                  disable=not options.progress, position=position) as bar:
            for t, frame in enumerate(video.frames):
                pose = estimator(frame)
                column = empty if pose is None else pose_coordinates(
                    pose, options.coords, video.size, options.min_visibility, joints, path, t)
                columns.append(column)
                image_columns.append(empty_image if pose is None else frame_image_points(
                    pose, options.min_visibility, joints, path, t))
                found.append(bool(column.any()))  # a person with at least one joint kept
                bar.update()
    finally:
        estimator.close()
    if not columns:
        raise DataError("the video has no frames", path=path)
    if not any(found):
        raise DataError(f"no person found in any of its {len(columns)} frames", path=path)
    x = np.stack(columns, axis=1)  # (C, T, V)
    return VideoSkeleton(x, np.array(found), video.fps, estimator.name, estimator.layout,
                         np.stack(image_columns, axis=1))
