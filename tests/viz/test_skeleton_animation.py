"""Skeleton animation: GIF frames, upright camera, hidden bodies/joints, store samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from pcm3.data import Converted, Sample, Sequence, write_store
from pcm3.errors import Pcm3Error
from pcm3.layouts import NTU25, Layout, layout_from_dict
from pcm3.viz import animate_skeleton, frame_labels_from_intervals, show_store_sample
from pcm3.viz.skeleton_animation import _bone_paths, _sample_frames, upright_frame

HANDS8 = layout_from_dict({
    "name": "hands8",
    "joints": ["ls", "le", "lw", "lh", "rs", "re", "rw", "rh"],
    "parents": ["ls", "ls", "le", "lw", "ls", "rs", "re", "rw"],
    "parts": {"left": ["ls", "le", "lw", "lh"], "right": ["rs", "re", "rw", "rh"]},
    "up": ["lh", "ls"],
    "across": ["ls", "rs"],
})
LAYOUTS = [NTU25, HANDS8]
BLUE, ORANGE = np.array([31, 119, 180]), np.array([255, 127, 14])  # tab:blue, tab:orange


def pose(layout: Layout, c: int, t: int, up: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(C, T, V)`` random joints in a unit box, moving a little, with the up pair along ``up``."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (c, 1, layout.num_joints)) + 0.05 * rng.normal(
        size=(c, t, layout.num_joints)
    )
    if layout.up is not None:
        a, b = layout.up
        x[:, :, b] = x[:, :, a] + up[:c, None]
    return x.astype(np.float32)


def two_bodies(layout: Layout, c: int, t: int, up: np.ndarray, second: bool = True) -> np.ndarray:
    """``(C, T, V, 2)``: body 0 three units above body 1 along ``up`` (body 1 zero if not second)."""
    x = np.zeros((c, t, layout.num_joints, 2), np.float32)
    x[..., 0] = pose(layout, c, t, up, seed=1) + 3 * up[:c, None, None]
    if second:
        x[..., 1] = pose(layout, c, t, up, seed=2)
    return x


def colour_rows(path: Path, frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the pixels close to body 0's and body 1's colours in one GIF frame."""
    im = Image.open(path)
    im.seek(frame)
    rgb = np.asarray(im.convert("RGB")).astype(int)
    near = [np.abs(rgb - col).sum(-1) < 40 for col in (BLUE, ORANGE)]
    return np.nonzero(near[0])[0], np.nonzero(near[1])[0]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("up", [(0, 1, 0), (0, -1, 0), (0, 0, 1)], ids=["y", "-y", "z"])
def test_3d_skeleton_stands_upright(tmp_path: Path, layout: Layout, up: tuple) -> None:
    x = two_bodies(layout, 3, 6, np.array(up, np.float32))
    out = animate_skeleton(x, layout, tmp_path / "a.gif", title="t")
    assert Image.open(out).n_frames == 6
    blue, orange = colour_rows(out)
    assert blue.size > 20 and orange.size > 20
    assert blue.mean() < orange.mean()  # body 0 is higher along `up`: drawn above body 1


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
def test_2d_uses_image_y_down(tmp_path: Path, layout: Layout) -> None:
    x = two_bodies(layout, 2, 5, np.array([0.0, 1.0, 0.0], np.float32))  # body 0 has larger y
    out = animate_skeleton(x, layout, tmp_path / "a.gif")
    assert Image.open(out).n_frames == 5
    blue, orange = colour_rows(out)
    assert blue.size > 20 and orange.size > 20
    assert blue.mean() > orange.mean()  # larger y is lower in an image


def test_zero_body_is_not_drawn(tmp_path: Path) -> None:
    x = two_bodies(NTU25, 3, 4, np.array([0.0, 0.0, 1.0], np.float32), second=False)
    blue, orange = colour_rows(animate_skeleton(x, NTU25, tmp_path / "a.gif"))
    assert blue.size > 20 and orange.size == 0


def test_upright_frame_is_a_rotation_and_faces_the_camera() -> None:
    # Raw Kinect style: spine along +y, shoulders (left -> right) along +x, body faces -z.
    x = np.zeros((3, 2, 25, 1), np.float32)
    a, b = NTU25.up
    left, right = NTU25.across
    x[1, :, b], x[0, :, right], x[1, :, left], x[1, :, right] = 1.0, 0.4, 0.8, 0.8
    x[0, :, left] = -0.4
    x[:, :, a] += 0.01  # joints must be non-zero to count as present
    x_plot, labels, azimuth = upright_frame(x, NTU25)
    assert labels == ["z", "x", "y"]
    np.testing.assert_array_equal(x_plot, x[[2, 0, 1]])  # cyclic: a rotation, no mirror
    # front = up x across = y x x = -z, which is the plot's -x axis: azimuth 180 (+ offset)
    assert np.isclose(azimuth % 360, (180 + 35) % 360)
    # Upside-down data (spine along -y) is turned the right way up, still without a mirror.
    flipped_plot, flipped_labels, _ = upright_frame(x * np.array([1, -1, 1])[:, None, None, None],
                                                    NTU25)
    assert flipped_labels == ["z", "-x", "-y"]
    spine = flipped_plot[:, 0, b, 0] - flipped_plot[:, 0, a, 0]
    assert spine[2] > 0


def test_bone_paths_hide_bones_touching_missing_joints() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 8)).astype(np.float32)
    missing = rng.random((4, 8)) < 0.3
    paths = _bone_paths(x, missing, HANDS8.bones)
    for t in range(4):
        for k, (child, parent) in enumerate(HANDS8.bones):
            seg = paths[t, 3 * k : 3 * k + 3]
            assert np.isnan(seg[2]).all()
            if missing[t, child] or missing[t, parent]:
                assert np.isnan(seg).all()
            else:
                np.testing.assert_array_equal(seg[0], x[:, t, child])
                np.testing.assert_array_equal(seg[1], x[:, t, parent])


def test_long_clips_are_subsampled_evenly(tmp_path: Path) -> None:
    np.testing.assert_array_equal(_sample_frames(10, 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(_sample_frames(5, 300), np.arange(5))
    np.testing.assert_array_equal(_sample_frames(5, None), np.arange(5))
    x = two_bodies(HANDS8, 3, 40, np.array([0.0, 0.0, 1.0], np.float32))
    assert Image.open(animate_skeleton(x, HANDS8, tmp_path / "a.gif", max_frames=7)).n_frames == 7


def test_frame_labels_from_intervals_by_hand() -> None:
    names = ["wave", "kick"]
    got = frame_labels_from_intervals(np.array([[1, 2, 5], [0, 7, 10]]), 10, names)
    assert got == ["background"] * 2 + ["kick"] * 3 + ["background"] * 2 + ["wave"] * 3
    overlap = frame_labels_from_intervals(np.array([[0, 0, 3], [1, 2, 4], [5, 5, 6]]), 7, names)
    assert overlap == ["wave", "wave", "wave + kick", "kick", "background", "class 5",
                       "background"]
    assert frame_labels_from_intervals(np.zeros((0, 3), np.int64), 3, names) == ["background"] * 3


def make_store(root: Path, layout: Layout, c: int) -> Path:
    up = np.array([0.0, 0.0, 1.0], np.float32)
    samples = [
        Sample("s0", two_bodies(layout, c, 9, up), label=1),
        Sample("s1", two_bodies(layout, c, 6, up, second=False), label=-1),
    ]
    seq = two_bodies(layout, c, 12, up)
    converted = Converted(
        layout, ["wave", "kick"], samples=samples,
        sequences=[Sequence("r0", seq, np.array([[1, 2, 5], [0, 8, 12]]))],
    )
    write_store(root, converted)
    return root


@pytest.mark.parametrize("c", [3, 2])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
def test_show_store_sample_trimmed_and_untrimmed(tmp_path: Path, layout: Layout, c: int) -> None:
    store = make_store(tmp_path / "store", layout, c)
    backend = matplotlib.get_backend()
    two = show_store_sample(store, 0, tmp_path / "s0.gif")
    one = show_store_sample(store, 1, tmp_path / "out" / "s1.gif")
    seq = show_store_sample(store / "untrimmed", 0, tmp_path / "r0.gif")
    assert matplotlib.get_backend() == backend  # the user's backend is left alone
    assert [Image.open(p).n_frames for p in (two, one, seq)] == [9, 6, 12]
    assert Image.open(two).format == "GIF"
    assert colour_rows(two)[1].size > 0 and colour_rows(one)[1].size == 0


def test_untrimmed_only_store_and_index_errors(tmp_path: Path) -> None:
    up = np.array([0.0, 0.0, 1.0], np.float32)
    seq = Sequence("r0", two_bodies(HANDS8, 3, 5, up), np.array([[0, 1, 3]]))
    root = tmp_path / "u"
    write_store(root, Converted(HANDS8, ["wave"], sequences=[seq]))
    assert Image.open(show_store_sample(root, 0, tmp_path / "r.gif")).n_frames == 5
    with pytest.raises(Pcm3Error, match=r"index 1 out of range: the store has 1 sequences"):
        show_store_sample(root, 1, tmp_path / "r.gif")
    store = make_store(tmp_path / "t", HANDS8, 3)
    for bad in (2, -1):
        with pytest.raises(Pcm3Error, match=rf"index {bad} out of range: the store has 2 samples"):
            show_store_sample(store, bad, tmp_path / "s.gif")


def test_bad_input_and_missing_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = two_bodies(HANDS8, 3, 3, np.array([0.0, 0.0, 1.0], np.float32))
    with pytest.raises(Pcm3Error, match="8 joints per frame but layout 'ntu25' has 25"):
        animate_skeleton(x, NTU25, tmp_path / "a.gif")
    with pytest.raises(Pcm3Error, match="2 or 3 coordinate channels"):
        animate_skeleton(np.zeros((4, 3, 8, 1), np.float32), HANDS8, tmp_path / "a.gif")
    with pytest.raises(Pcm3Error, match="2 frame labels for 3 frames"):
        animate_skeleton(x, HANDS8, tmp_path / "a.gif", frame_labels=["a", "b"])
    with pytest.raises(Pcm3Error, match=r"unsupported animation format '\.avi'"):
        animate_skeleton(x, HANDS8, tmp_path / "a.avi")
    monkeypatch.setattr("pcm3.viz.skeleton_animation.shutil.which", lambda *_: None)
    with pytest.raises(Pcm3Error, match=r"needs ffmpeg.*\.gif"):
        animate_skeleton(x, HANDS8, tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()
