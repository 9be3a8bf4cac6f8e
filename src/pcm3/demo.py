"""``pcm3 demo``: a video with the skeleton drawn over its frames and the action the detection
head predicts for each frame (``docs/video.md``).

Video -> skeleton with the pose estimator (:mod:`pcm3.data.pose`; world coordinates for a 3-D
encoder, image coordinates for a 2-D one) -> the encoder's layout (:mod:`pcm3.layout_mapping`)
-> per-frame features computed as the detection task computed them when the head was trained
(the feature options saved in the head) -> the head's smoothed probabilities -> per frame the most
probable of ``background`` and the head's classes (``no person`` where the estimator found
nobody) -> drawn on the frames (:mod:`pcm3.viz.skeleton_overlay`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pcm3.data.pose.estimator import VideoPoseOptions
from pcm3.errors import Pcm3Error
from pcm3.layouts import get_layout

NO_PERSON = "no person"


@dataclass
class DemoResult:
    """What the demo wrote: ``out``; per video frame the predicted ``labels`` and the smoothed
    ``probabilities`` ``(T, K + 1)`` (output 0 = background); ``drawn`` the frame indices in the
    output file; ``person`` ``(T,)`` where a person was found."""

    out: Path
    labels: list[str]
    probabilities: np.ndarray
    output_names: list[str]
    drawn: np.ndarray
    person: np.ndarray
    fps: float


def run_demo(video: str | Path, encoder: str | Path, classifier: str | Path, out: str | Path, *,
             device: str | torch.device = "cpu", options: VideoPoseOptions | None = None,
             absent: str = "nearest", max_frames: int | None = 300,
             max_width: int | None = 640) -> DemoResult:
    """Write ``out`` (``.gif`` or ``.mp4``) for ``video`` with the encoder file ``encoder`` and the
    detection head ``classifier`` (``pcm3 eval detection --save-head``); module docstring."""
    from pcm3.data.pose.video_skeleton import estimate_video
    from pcm3.embedding import load_encoder
    from pcm3.tasks.detection_head import load_detection_head
    from pcm3.viz.skeleton_overlay import overlay_video

    out = Path(out)
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise Pcm3Error(f"{out}: the demo writes .gif or .mp4, not {out.suffix!r}")
    head = load_detection_head(classifier)
    embedder = load_encoder(encoder, device, dense_options=head.feature_options)
    head.check_encoder(embedder.loaded.spec, str(encoder), str(classifier))
    channels = embedder.in_channels
    if channels not in (2, 3):
        raise Pcm3Error(f"{encoder} reads C={channels} coordinates per joint; videos give 3 (world) "
                        "or 2 (image)")
    options = dataclasses.replace(options or VideoPoseOptions(), coords="world" if channels == 3 else "image")
    skeleton = estimate_video(video, options)
    source = get_layout(skeleton.layout)
    clip = skeleton.x.transpose(1, 2, 0)[None]  # (1, T, V, C)
    frames = clip.shape[1]
    feats = embedder.encode(clip, [frames], dense=True, layout=source, absent=absent)[0, :frames]
    labels, probs = head.frame_labels(feats)
    labels = [name if found else NO_PERSON for name, found in zip(labels, skeleton.person, strict=True)]
    best = probs.max(axis=1)
    shown = [_caption(name, float(best[i]), i, frames) for i, name in enumerate(labels)]

    if options.open_video is None:
        from pcm3.data.pose.frames import open_video
    else:
        open_video = options.open_video
    assert skeleton.image is not None  # estimate_video records it
    joints = skeleton.image.transpose(1, 2, 0)  # (T, V, 2)
    path, drawn = overlay_video(open_video(Path(video)).frames, joints, source, shown, out, skeleton.fps,
                                max_frames, max_width)
    return DemoResult(path, labels, probs.astype(np.float32), head.output_names, drawn, skeleton.person,
                      skeleton.fps)


def _caption(label: str, probability: float, frame: int, frames: int) -> str:
    if label == NO_PERSON:
        return f"{label}   {frame + 1}/{frames}"
    return f"{label} ({probability:.2f})   {frame + 1}/{frames}"
