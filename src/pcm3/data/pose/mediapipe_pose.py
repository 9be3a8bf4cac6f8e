"""MediaPipe Pose (BlazePose, 33 landmarks) as a :class:`~pcm3.data.pose.estimator.PoseEstimator`.

Uses the legacy ``mediapipe.solutions.pose`` API of ``mediapipe==0.10.14`` (the ``video`` extra),
whose wheel bundles the detector and the landmark model, so nothing is downloaded. Settings:
``static_image_mode=False`` (the person found in one frame is tracked into the next),
``model_complexity=1`` (the "full" landmark model), landmark smoothing on, detection and
tracking confidence 0.5 (MediaPipe's defaults).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from pcm3.data.pose.estimator import FramePose
from pcm3.data.pose.frames import EXTRA_HINT
from pcm3.errors import Pcm3Error

MEDIAPIPE_VERSION = "0.10.14"


def _pose_solution() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log lines on stderr
    try:
        import mediapipe
        from mediapipe.python.solutions import pose
    except ImportError as exc:
        raise Pcm3Error(f"pose estimation needs mediapipe=={MEDIAPIPE_VERSION}: {EXTRA_HINT} "
                        f"({exc})") from exc
    if mediapipe.__version__ != MEDIAPIPE_VERSION:
        warnings.warn(f"mediapipe {mediapipe.__version__} is installed; pcm3 is tested with "
                      f"{MEDIAPIPE_VERSION} (the last release with the bundled solutions.pose models)",
                      stacklevel=3)
    return pose


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: MediaPipe's C++ start-up log lines (TensorFlow Lite
    and absl messages written on the first frame) bypass Python's logging."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class MediaPipePose:
    """One MediaPipe Pose tracker (make one per video); ``close()`` frees it."""

    layout = "mediapipe33"

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        pose = _pose_solution()
        self.name = f"mediapipe {MEDIAPIPE_VERSION} solutions.pose (model_complexity={model_complexity})"
        self._pose = pose.Pose(static_image_mode=False, model_complexity=model_complexity,
                               smooth_landmarks=True, enable_segmentation=False,
                               min_detection_confidence=min_detection_confidence,
                               min_tracking_confidence=min_tracking_confidence)
        self._started = False

    def __call__(self, frame: np.ndarray) -> FramePose | None:
        """``frame`` ``(H, W, 3)`` uint8 RGB -> the tracked person's 33 landmarks, or None."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*GetPrototype.*", category=UserWarning)
            if self._started:
                result = self._pose.process(np.ascontiguousarray(frame))
            else:
                with _stderr_silenced():
                    result = self._pose.process(np.ascontiguousarray(frame))
                self._started = True
        if result.pose_world_landmarks is None or result.pose_landmarks is None:
            return None
        world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], np.float32)
        image = np.array([(p.x, p.y) for p in result.pose_landmarks.landmark], np.float32)
        visibility = np.array([p.visibility for p in result.pose_landmarks.landmark], np.float32)
        return FramePose(world, image, visibility)

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
