"""Skeletons and labels drawn on video frames: a hand-placed two-joint skeleton, hidden missing
joints, the label bar, subsampled GIF output and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pcm3.errors import Pcm3Error
from pcm3.layouts import layout_from_dict
from pcm3.viz.skeleton_overlay import draw_skeleton, overlay_video

STICK = layout_from_dict({"name": "stick", "joints": ["a", "b"], "parents": [0, 0], "parts": {"all": [0, 1]}})
BLUE = np.array([31, 119, 180])  # tab:blue, the first body colour


def blue_pixels(image: np.ndarray) -> np.ndarray:
    return np.abs(image.astype(int) - BLUE).max(axis=2) < 30


def test_bone_between_the_joints_and_the_label_bar():
    frame = np.full((80, 100, 3), 200, np.uint8)
    drawn = np.asarray(draw_skeleton(frame, np.array([[0.25, 0.5], [0.75, 0.5]]), STICK, "wave"))
    blue = blue_pixels(drawn)
    assert blue[40, 25:76].all()  # the bone along row 40 from x = 25 to 75
    assert not blue[:, :20].any() and not blue[:, 81:].any() and not blue[50:].any()
    bar = drawn[:5]
    assert (bar < 40).mean() > 0.9 and (drawn[:12] > 200).any()  # black bar with white text


def test_missing_joint_hides_its_bone_and_wide_frames_shrink():
    frame = np.full((100, 1000, 3), 200, np.uint8)
    drawn = np.asarray(draw_skeleton(frame, np.array([[0.0, 0.0], [0.75, 0.5]]), STICK, "x", max_width=500))
    assert drawn.shape == (50, 500, 3)
    blue = blue_pixels(drawn)
    assert blue[20:, 370:380].any() and not blue[20:, :360].any()  # only the joint dot at (375, 25)


def test_overlay_video_gif_subsampled(tmp_path):
    frames = [np.full((40, 60, 3), 10 * t, np.uint8) for t in range(12)]
    joints = np.tile(np.array([[0.2, 0.6], [0.8, 0.6]], np.float32), (12, 1, 1))
    out, drawn = overlay_video(iter(frames), joints, STICK, [f"f{t}" for t in range(12)], tmp_path / "o.gif",
                               fps=12, max_frames=4)
    assert drawn.tolist() == [0, 4, 7, 11]
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size == (60, 40)
        assert im.info["duration"] == 250  # 4 frames over the video's 1 s


def test_refusals(tmp_path):
    joints = np.zeros((3, 2, 2), np.float32)
    frames = [np.zeros((8, 8, 3), np.uint8)] * 2
    with pytest.raises(Pcm3Error, match=r"use \.gif or \.mp4"):
        overlay_video(frames, joints, STICK, ["a"] * 3, tmp_path / "o.avi", fps=10)
    with pytest.raises(Pcm3Error, match=r"expected \(2, 2, 2\)"):
        overlay_video(frames, joints, STICK, ["a"] * 2, tmp_path / "o.gif", fps=10)
    with pytest.raises(Pcm3Error, match="fewer frames"):
        overlay_video(frames, joints, STICK, ["a"] * 3, tmp_path / "o.gif", fps=10)
