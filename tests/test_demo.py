"""``pcm3 demo``: a real video (the astronaut clip the video tests make) through MediaPipe, a tiny
encoder of another layout and a tiny detection head, written as MP4 and GIF; the plumbing with the
fake pose estimator (2-D encoder, frames without a person); the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pcm3
from pcm3.cli import main
from pcm3.data.pose.estimator import VideoPoseOptions
from pcm3.demo import NO_PERSON, run_demo
from pcm3.errors import Pcm3Error
from pcm3.layouts import NTU25, get_layout
from pcm3.models.encoder import EncoderSpec, build_encoder
from pcm3.models.encoder_files import save_encoder
from pcm3.tasks.detection_classifier import FrameClassifier
from pcm3.tasks.detection_features import FrameFeatureOptions
from pcm3.tasks.detection_head import load_detection_head, save_detection_head

from .data.pose.fake_pose import FakePose, open_fake_video, write_fake_video
from .real_data import require_video_extra

CLASSES = ["wave", "clap"]


def encoder_and_head(root, layout, channels: int, seed: int = 0):
    """A tiny random BiGRU encoder file and a random head for its features (3 outputs)."""
    torch.manual_seed(seed)
    spec = EncoderSpec("bigru", {"hidden_size": 4, "num_layers": 1}, channels, 1, layout, view_frames=16)
    enc = save_encoder(build_encoder(spec).eval(), root / "enc.safetensors")
    classifier = FrameClassifier(torch.zeros(8), torch.ones(8), 3)
    with torch.no_grad():
        classifier.linear.weight.normal_(0, 3.0)
    options = FrameFeatureOptions("window", 16, 4)
    head = save_detection_head(root / "head.safetensors", classifier, CLASSES, options, 2, 0.4, spec,
                               str(enc))
    return enc, head


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
    return out


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    require_video_extra()
    from skimage import data

    from pcm3.data.pose.frames import panned_frames, write_video

    path = tmp_path_factory.mktemp("video") / "astronaut.mp4"
    return write_video(path, panned_frames(data.astronaut(), 30), fps=15)


def test_real_video_to_mp4_and_gif(astronaut, tmp_path):
    from skimage import data

    from pcm3.data.pose.frames import open_video, panned_frames

    enc, head = encoder_and_head(tmp_path, NTU25, 3)  # mediapipe33 skeletons mapped onto ntu25
    options = VideoPoseOptions(progress=False)
    result = run_demo(astronaut, enc, head, tmp_path / "demo.mp4", options=options)
    assert len(result.labels) == 30 and result.person.all()
    assert set(result.labels) <= {"background", *CLASSES} and result.probabilities.shape == (30, 3)
    assert len(list(open_video(result.out).frames)) == 30
    gif = run_demo(astronaut, enc, head, tmp_path / "demo.gif", options=options, max_frames=10)
    assert gif.labels == result.labels and gif.drawn.tolist() == np.linspace(0, 29, 10).round().tolist()
    frames = gif_frames(gif.out)
    assert len(frames) == 10 and frames[0].shape == (480, 640, 3)
    assert (frames[0][:5] < 40).all()  # the label bar
    source = panned_frames(data.astronaut(), 30)[0].astype(int)
    changed = np.abs(frames[0].astype(int) - source)[40:].max(axis=2) > 80
    assert changed.sum() > 200, changed.sum()  # the skeleton drawn below the bar


def test_fake_video_2d_encoder_and_frames_without_a_person(tmp_path, monkeypatch):
    people = [0, 0, 40, 60, 80, 100, 120, 0, 140, 160]
    video = write_fake_video(tmp_path / "clip.mp4", people, size=(64, 48))
    enc, head = encoder_and_head(tmp_path, get_layout("mediapipe33"), 2)
    options = VideoPoseOptions(make_estimator=FakePose, open_video=open_fake_video, progress=False)
    result = run_demo(video, enc, head, tmp_path / "demo.gif", options=options)
    assert [label == NO_PERSON for label in result.labels] == [p == 0 for p in people]
    head_labels, probs = load_detection_head(head).frame_labels(
        pcm3.load_encoder(enc, dense_options=FrameFeatureOptions("window", 16, 4)).encode(
            _fake_image_clip(people), [len(people)], dense=True)[0])
    assert [a for a, p in zip(result.labels, people, strict=True) if p] == \
        [b for b, p in zip(head_labels, people, strict=True) if p]
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-6)
    frames = gif_frames(result.out)
    assert len(frames) == len(people) and frames[0].shape == (48, 64, 3)


def _fake_image_clip(people: list[int]) -> np.ndarray:
    """``(1, T, 33, 2)``: the image coordinates the fake estimator gives (x in units of the height)."""
    clip = np.zeros((1, len(people), 33, 2), np.float32)
    for t, v in enumerate(people):
        if v:
            clip[0, t, :, 0] = v / 255 * 64 / 48
            clip[0, t, :, 1] = np.arange(33) / 33
    return clip


def test_refusals(tmp_path, capsys):
    enc, head = encoder_and_head(tmp_path, NTU25, 3)
    torch.manual_seed(0)
    spec = EncoderSpec("bigru", {"hidden_size": 4, "num_layers": 1}, 2, 1, NTU25, view_frames=16)
    save_encoder(build_encoder(spec), tmp_path / "two_d.safetensors")
    with pytest.raises(Pcm3Error, match="is another encoder"):
        run_demo(tmp_path / "v.mp4", tmp_path / "two_d.safetensors", head, tmp_path / "d.gif")
    with pytest.raises(Pcm3Error, match=r"\.gif or \.mp4"):
        run_demo(tmp_path / "v.mp4", enc, head, tmp_path / "d.avi")
    assert main(["demo", str(tmp_path / "missing.mp4"), "--encoder", str(enc), "--classifier", str(head),
                 "--out", str(tmp_path / "d.gif"), "--no-progress"]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_cli_prints_the_label_counts(tmp_path, monkeypatch, capsys):
    import pcm3.data.pose.frames as frames
    import pcm3.data.pose.mediapipe_pose as mediapipe_pose

    monkeypatch.setattr(frames, "open_video", open_fake_video)
    monkeypatch.setattr(mediapipe_pose, "MediaPipePose", FakePose)
    video = write_fake_video(tmp_path / "clip.mp4", [0, 50, 60, 70], size=(32, 24))
    enc, head = encoder_and_head(tmp_path, NTU25, 3)
    assert main(["demo", str(video), "--encoder", str(enc), "--classifier", str(head), "--out",
                 str(tmp_path / "d.gif"), "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 frames (") and f"{NO_PERSON} 1" in out and "4 frames drawn" in out
    with Image.open(tmp_path / "d.gif") as im:
        assert im.n_frames == 4
