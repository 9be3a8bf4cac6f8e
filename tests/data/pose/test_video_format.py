"""The video format's plumbing with a fake pose estimator and video reader: folders and labels,
cut ends, visibility, coordinates, untrimmed recordings, bad videos, the CLI."""

import json

import numpy as np
import pytest

from pcm3.cli import main
from pcm3.data import open_store
from pcm3.data.formats import ReadOptions, read
from pcm3.data.pose.estimator import VideoPoseOptions
from pcm3.errors import ConfigError, DataError

from .fake_pose import FakePose, open_fake_video, write_fake_video


def _options(**kw) -> ReadOptions:
    skip_bad = kw.pop("skip_bad", False)
    video = VideoPoseOptions(make_estimator=FakePose, open_video=open_fake_video, progress=False, **kw)
    return ReadOptions(skip_bad=skip_bad, video=video)


@pytest.fixture
def fake_defaults(monkeypatch):
    """The CLI's default estimator and reader replaced by the fakes."""
    import pcm3.data.pose.frames as frames
    import pcm3.data.pose.mediapipe_pose as mediapipe_pose

    monkeypatch.setattr(frames, "open_video", open_fake_video)
    monkeypatch.setattr(mediapipe_pose, "MediaPipePose", FakePose)


def test_trimmed_clips_by_folder_cut_to_the_person(tmp_path):
    write_fake_video(tmp_path / "wave" / "a.mp4", [0, 3, 4, 0, 5, 0])
    write_fake_video(tmp_path / "clap" / "b.avi", [7, 7])
    write_fake_video(tmp_path / "loose.mov", [9])
    (tmp_path / "wave" / "notes.txt").write_text("not a video")
    made = FakePose.made
    out = read(tmp_path, "video", _options())
    assert FakePose.made - made == 3  # one estimator per video
    assert out.layout.name == "mediapipe33" and out.class_names == ["clap", "wave"]
    by_id = {s.id: s for s in out.samples}
    assert sorted(by_id) == ["clap/b", "loose", "wave/a"]
    assert by_id["wave/a"].label == 1 and by_id["clap/b"].label == 0 and by_id["loose"].label == -1
    x = by_id["wave/a"].x  # frames 1..4: the first to the last frame with a person
    assert x.shape == (3, 4, 33, 1)
    np.testing.assert_array_equal(x[0, :, 5, 0], [3, 4, 0, 5])  # the frame without a person stays empty
    np.testing.assert_array_equal(x[1, 0, :, 0], np.arange(33))
    assert not x[:, 2].any()
    video = out.source["videos"]["wave/a"]
    assert video == {"frames": 6, "fps": 25.0, "frames_with_person": 3, "person_from": 1, "person_to": 5}
    assert out.source["pose_estimator"] == "fake pose" and out.source["coords"] == "world"


def test_visibility_threshold_and_image_coordinates(tmp_path):
    write_fake_video(tmp_path / "v.mp4", [51, 102], visibility0=102)  # joint 0 visibility 0.4
    kept = read(tmp_path / "v.mp4", "video", _options(min_visibility=0.3)).samples[0].x
    dropped = read(tmp_path / "v.mp4", "video", _options(min_visibility=0.5)).samples[0].x
    np.testing.assert_array_equal(kept[:, :, 0, 0], [[51, 102], [0, 0], [1, 1]])
    assert not dropped[:, :, 0].any() and dropped[:, :, 1:].any()
    image = read(tmp_path / "v.mp4", "video", _options(coords="image")).samples[0].x
    assert image.shape == (2, 2, 33, 1)
    x_in_heights = np.array([51, 102]) / 255 * 6 / 4  # x * W / H
    np.testing.assert_allclose(image[0, :, 3, 0], x_in_heights, rtol=1e-6)
    np.testing.assert_allclose(image[1, 0, :, 0], np.arange(33) / 33, rtol=1e-6)
    with pytest.raises(ConfigError, match="coords 'pixels'"):
        read(tmp_path, "video", _options(coords="pixels"))
    with pytest.raises(ConfigError, match="min_visibility 2"):
        read(tmp_path, "video", _options(min_visibility=2))


def test_untrimmed_recordings_keep_every_frame(tmp_path):
    write_fake_video(tmp_path / "sequences" / "day1.mp4", [0, 0, 5, 6, 7, 0, 8, 9])
    write_fake_video(tmp_path / "sequences" / "day2.mkv", [4] * 5)
    (tmp_path / "class_names.txt").write_text("wave\nclap\n")
    (tmp_path / "intervals.csv").write_text("sequence,label,start,end\nday1,clap,2,5\nday2,0,0,5\n")
    (tmp_path / "sequence_splits.csv").write_text("sequence,split\nday1,train\nday2,test\n")
    out = read(tmp_path, "video", _options())
    assert not out.samples and out.class_names == ["wave", "clap"]
    day1, day2 = out.sequences
    assert day1.x.shape == (3, 8, 33, 1) and not day1.x[:, :2].any() and not day1.x[:, 5].any()
    np.testing.assert_array_equal(day1.intervals, [[1, 2, 5]])
    np.testing.assert_array_equal(day2.intervals, [[0, 0, 5]])
    assert out.sequence_splits == {"train": ["day1"], "test": ["day2"]}
    (tmp_path / "intervals.csv").write_text("sequence,label,start,end\nday3,0,0,5\n")
    with pytest.raises(DataError, match=r"intervals.csv:2.*unknown sequence 'day3'"):
        read(tmp_path, "video", _options())


def test_clip_splits_and_class_names_file(tmp_path):
    for name in ("a", "b", "c"):
        write_fake_video(tmp_path / "jump" / f"{name}.mp4", [1, 2])
    write_fake_video(tmp_path / "sit" / "d.mp4", [3])
    (tmp_path / "class_names.txt").write_text("sit\njump\nrun\n")
    (tmp_path / "clip_splits.csv").write_text("clip,split\njump/a,train\nsit/d,train\njump/c,test\n")
    out = read(tmp_path, "video", _options())
    assert out.class_names == ["sit", "jump", "run"]
    assert {s.id: s.label for s in out.samples} == {"jump/a": 1, "jump/b": 1, "jump/c": 1, "sit/d": 0}
    assert out.splits == {"train": ["jump/a", "sit/d"], "test": ["jump/c"]}
    (tmp_path / "class_names.txt").write_text("sit\n")
    with pytest.raises(DataError, match=r"class_names.txt: class folders \['jump'\] are not listed"):
        read(tmp_path, "video", _options())


def test_bad_videos_are_named_or_skipped(tmp_path):
    write_fake_video(tmp_path / "ok" / "good.mp4", [1, 2, 3])
    write_fake_video(tmp_path / "ok" / "nobody.mp4", [0, 0, 0])
    (tmp_path / "ok" / "broken.mp4").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"broken.mp4: cannot decode"):
        read(tmp_path, "video", _options())
    (tmp_path / "ok" / "broken.mp4").unlink()
    with pytest.raises(DataError, match=r"nobody.mp4: no person found in any of its 3 frames"):
        read(tmp_path, "video", _options())
    out = read(tmp_path, "video", _options(skip_bad=True))
    assert [s.id for s in out.samples] == ["ok/good"]
    reasons = [(s.sample, s.reason) for s in out.skipped]
    assert reasons == [("ok/nobody", "no person found in any of its 3 frames")]
    write_fake_video(tmp_path / "empty.mp4", [])
    with pytest.raises(DataError, match=r"empty.mp4: the video has no frames"):
        read(tmp_path / "empty.mp4", "video", _options())
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="none: no videos found"):
        read(tmp_path / "none", "video", _options())
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: not a video file"):
        read(tmp_path / "notes.txt", "video", _options())


def test_cli_convert_videos(tmp_path, capsys, fake_defaults):
    videos = tmp_path / "videos"
    write_fake_video(videos / "wave" / "a.mp4", [0, 3, 4, 5])
    write_fake_video(videos / "wave" / "b.mp4", [6, 7, 8, 9, 10])
    write_fake_video(videos / "clap" / "c.mp4", [0, 0])
    out = tmp_path / "store"
    assert main(["data", "convert", str(videos), "--format", "video", "--out", str(out)]) == 2
    assert "clap/c.mp4: no person found in any of its 2 frames" in capsys.readouterr().err
    assert main(["data", "convert", str(videos), "--format", "video", "--out", str(out), "--skip-bad"]) == 0
    std = capsys.readouterr()
    assert "c.mp4: no person found in any of its 2 frames" in std.out
    assert "videos" in std.err and "a.mp4" in std.err  # the progress bars
    store = open_store(out)
    assert store.layout.name == "mediapipe33" and store.x.shape == (2, 3, 5, 33, 1)
    assert list(store.ids) == ["wave/a", "wave/b"] and store.lengths.tolist() == [3, 5]
    assert store.class_names == ["clap", "wave"] and store.labels.tolist() == [1, 1]
    assert json.loads((out / "skipped.json").read_text())[0]["sample"] == "clap/c"
    assert main(["data", "convert", str(videos / "wave"), "--format", "video", "--out", str(out),
                 "--coords", "image", "--no-progress", "--map-layout", "ntu25"]) == 0
    std = capsys.readouterr()
    store = open_store(out)
    assert "videos" not in std.err and store.layout.name == "ntu25" and store.x.shape[1] == 2
