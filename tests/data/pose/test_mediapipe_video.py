"""Real videos through MediaPipe Pose: a clip made from a photograph of a person (scikit-image's
astronaut) and the failure paths. These need the ``video`` extra; they skip, saying why, only
where it is not installed, and fail instead when the ``CI`` environment variable is set."""

import json

import numpy as np
import pytest

from pcm3.cli import main
from pcm3.data import open_store

from ...real_data import require_video_extra


@pytest.fixture(scope="module")
def video_extra():
    require_video_extra()


@pytest.fixture(scope="module")
def videos(video_extra, tmp_path_factory):
    """``VIDEOS/person/astronaut.mp4`` (30 frames), ``VIDEOS/texture/bricks.mp4`` (nobody)."""
    from skimage import data

    from pcm3.data.pose.frames import panned_frames, write_video

    root = tmp_path_factory.mktemp("videos")
    (root / "person").mkdir()
    (root / "texture").mkdir()
    write_video(root / "person" / "astronaut.mp4", panned_frames(data.astronaut(), 30), fps=15)
    bricks = np.repeat(data.brick()[:, :, None], 3, axis=2)
    write_video(root / "texture" / "bricks.mp4", panned_frames(bricks, 8, scale=(1.0, 1.0)), fps=15)
    return root


def test_astronaut_clip_gives_a_mediapipe_store(videos, tmp_path, capsys):
    out = tmp_path / "store"
    assert main(["data", "convert", str(videos / "person"), "--format", "video", "--out", str(out),
                 "--no-progress"]) == 0
    store = open_store(out)
    meta = json.loads((out / "meta.json").read_text())
    seen = meta["source"]["videos"]["astronaut"]
    assert seen["frames"] == 30 and seen["frames_with_person"] >= 27  # pose in >= 90 % of the frames
    assert store.layout.name == "mediapipe33" and store.x.shape[0] == 1
    _, c, t, v, m = store.x.shape
    assert (c, v, m) == (3, 33, 1) and t == seen["person_to"] - seen["person_from"]
    assert meta["source"]["pose_estimator"].startswith("mediapipe 0.10.14")
    x = store.sample(0)
    assert np.isfinite(x).all() and np.abs(x).max() < 3  # world landmarks, metres
    # 2D: the nose is above the shoulders (image y grows downwards), everything inside the frame
    assert main(["data", "convert", str(videos / "person"), "--format", "video", "--out", str(out),
                 "--coords", "image", "--preprocess", "none", "--no-progress"]) == 0
    image = open_store(out).sample(0)[..., 0]  # (2, T, 33)
    names = open_store(out).layout.joint_names
    nose, shoulder = names.index("nose"), names.index("left_shoulder")
    seen_both = (image[:, :, nose] != 0).all(0) & (image[:, :, shoulder] != 0).all(0)
    assert seen_both.mean() > 0.9 and (image[1, seen_both, nose] < image[1, seen_both, shoulder]).all()
    kept = image[:, (image != 0).any(axis=(0, 2))]
    assert (kept[0][kept[0] != 0] < 640 / 480 + 0.05).all() and (kept[1] <= 1.05).all()


def test_bad_videos_are_named_or_skipped(videos, tmp_path, capsys):
    from pcm3.data.pose.frames import imageio_ffmpeg

    bad = tmp_path / "bad"
    (bad / "clips").mkdir(parents=True)
    (bad / "clips" / "empty.mp4").write_bytes(b"")
    (bad / "clips" / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    writer = imageio_ffmpeg().write_frames(str(bad / "clips" / "no_frames.mp4"), (64, 48))
    writer.send(None)
    writer.close()  # a container without a single frame
    (bad / "clips" / "bricks.mp4").write_bytes((videos / "texture" / "bricks.mp4").read_bytes())
    (bad / "clips" / "astronaut.mp4").write_bytes((videos / "person" / "astronaut.mp4").read_bytes())
    expected = {"empty": "empty file (0 bytes)", "corrupt": "cannot decode the video",
                "no_frames": "no video stream (0 frames)", "bricks": "no person found in any of its 8 frames"}
    for name, reason in expected.items():
        assert main(["data", "convert", str(bad / "clips" / f"{name}.mp4"), "--format", "video",
                     "--out", str(tmp_path / name), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{name}.mp4: {reason}" in err, err
    out = tmp_path / "store"
    assert main(["data", "convert", str(bad), "--format", "video", "--out", str(out), "--skip-bad",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert open_store(out).ids.tolist() == ["clips/astronaut"]
    skipped = {s["sample"]: s["reason"] for s in json.loads((out / "skipped.json").read_text())}
    assert {k.split("/")[1]: v.split(" (")[0] for k, v in skipped.items()} == \
        {k: v.split(" (")[0] for k, v in expected.items()}
    assert all(f"{name}.mp4" in printed for name in expected)
