"""Reader ``pku-mmd``: a hand-built root against a slow reference, error cases, real Part I."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import ReadOptions, read
from pcm3.data.formats.pku_mmd import PKU_ACTION_NAMES, read_skeleton_bodies, read_split_file
from pcm3.errors import ConfigError, DataError

from ...real_data import real_data

# README table: video -> frames
REAL_FRAMES = {
    "0160-L": 2566, "0160-M": 2911, "0160-R": 2616, "0312-R": 2737,
    "0036-L": 1261, "0036-M": 1258, "0036-R": 1307, "0105-L": 1266, "0105-M": 1254,
    "0105-R": 1295, "0310-L": 1364, "0310-M": 1388, "0310-R": 1158,
}  # fmt: skip


@pytest.fixture(scope="module")
def real():
    return read(real_data("pku_mmd_part1"), "pku-mmd")


def frames_text(frames: np.ndarray) -> str:
    """Skeleton text of ``frames (T, 2, 25, 3)``: one line of 150 numbers per frame."""
    return "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in frames.reshape(-1, 150))


def split_text(train: list[str], val: list[str], header: str = "Validataion videos:") -> str:
    return f"Training videos: \n{', '.join(train)}, \n{header} \n{', '.join(val)},\n"


def make_root(root: Path, videos: dict[str, tuple[np.ndarray, str]], *, names=None, **dirs) -> Path:
    """A PKU-MMD root: ``videos`` maps name -> (frames (T, 2, 25, 3), label file text)."""
    skeleton = root / dirs.get("skeleton", "skeleton")
    labels = root / dirs.get("labels", "labels")
    (root / "splits").mkdir(parents=True)
    skeleton.mkdir()
    labels.mkdir()
    for name, (frames, label_text) in videos.items():
        (skeleton / f"{name}.txt").write_text(frames_text(frames))
        (labels / f"{name}.txt").write_text(label_text)
    vids = sorted(videos)
    (root / "splits" / "cross-subject.txt").write_text(split_text(vids[:1], vids[1:]))
    (root / "splits" / "cross-view.txt").write_text(split_text(vids[1:], vids[:1]))
    if names is not None:
        (root / "actions.csv").write_text("label,action\n" + "".join(
            f"{i + 1},{n}\n" for i, n in enumerate(names)))  # fmt: skip
    return root


def moving_frames(t: int, seed: int, second_scale: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(t, 2, 25, 3)).astype(np.float32) + 1
    frames[:, 1] *= second_scale  # 0: only one person
    return frames


def test_sequences_samples_and_splits_from_a_small_root(tmp_path: Path) -> None:
    a, b = moving_frames(12, 0), moving_frames(9, 1, second_scale=2.0)
    root = make_root(
        tmp_path, {"0001-L": (a, "3,0,5,1\n7,4,12,2\n"), "0002-M": (b, "51,2,10,1\n")}
    )  # 0002-M: end 10 == T + 1 is clipped to 9
    c = read(root, "pku-mmd")
    assert [s.id for s in c.sequences] == ["0001-L", "0002-M"]
    np.testing.assert_array_equal(c.sequences[0].intervals, [[2, 0, 5], [6, 4, 12]])
    np.testing.assert_array_equal(c.sequences[1].intervals, [[50, 2, 9]])
    assert c.sequences[0].intervals.dtype == np.int64 and c.source["clipped_intervals"] == 1
    np.testing.assert_allclose(c.sequences[0].x, a.transpose(3, 0, 2, 1), atol=1e-6)
    # 0002-M: the second body moves more, so it comes first
    np.testing.assert_allclose(c.sequences[1].x, b[:, ::-1].transpose(3, 0, 2, 1), atol=1e-6)
    samples = {s.id: s for s in c.samples}
    assert list(samples) == ["0001-L_0", "0001-L_1", "0002-M_0"]
    assert [type(s.label) for s in c.samples] == [int] * 3
    assert [s.label for s in c.samples] == [2, 6, 50]
    np.testing.assert_allclose(samples["0001-L_1"].x, a[4:12].transpose(3, 0, 2, 1), atol=1e-6)
    assert samples["0002-M_0"].x.shape == (3, 7, 25, 2)
    assert c.splits == {
        "xsub/train": ["0001-L_0", "0001-L_1"], "xsub/val": ["0002-M_0"],
        "xview/train": ["0002-M_0"], "xview/val": ["0001-L_0", "0001-L_1"],
    }  # fmt: skip
    assert c.sequence_splits["xsub/val"] == ["0002-M"] and c.sequence_splits["xview/val"] == [
        "0001-L"
    ]
    assert c.class_names == list(PKU_ACTION_NAMES) and len(PKU_ACTION_NAMES) == 51


def test_max_bodies_one_keeps_the_most_moving_body(tmp_path: Path) -> None:
    b = moving_frames(9, 1, second_scale=2.0)
    root = make_root(tmp_path, {"0002-M": (b, "1,0,9,1\n")})
    c = read(root, "pku-mmd", ReadOptions(max_bodies=1))
    assert c.sequences[0].x.shape == (3, 9, 25, 1) and c.samples[0].x.shape == (3, 9, 25, 1)
    np.testing.assert_allclose(c.sequences[0].x[..., 0], b[:, 1].transpose(2, 0, 1), atol=1e-6)


def test_official_folder_names_labels_option_and_part2_names(tmp_path: Path) -> None:
    frames = moving_frames(6, 3)
    videos = {"A01N01-L": (frames, "1,0,3,1\n"), "A01N01-M": (frames, "2,1,6,1\n")}
    root = make_root(tmp_path / "r", videos, skeleton="PKU_Skeleton_Renew",
                     labels="Train_Label_PKU_final", names=["a", "b"])  # fmt: skip
    (root / "splits" / "cross-subject.txt").write_text(
        split_text(["A01N01-L"], ["A01N01-M"], header="Validation videos:"))  # fmt: skip
    c = read(root, "pku-mmd")
    assert c.class_names == ["a", "b"]
    assert c.sequence_splits["xsub/train"] == ["A01N01-L"]
    moved = tmp_path / "elsewhere"
    (root / "Train_Label_PKU_final").rename(moved)
    with pytest.raises(DataError, match="label"):
        read(root, "pku-mmd")
    assert len(read(root, "pku-mmd", ReadOptions(labels=moved)).samples) == 2


def test_split_file_option_and_missing_split_file(tmp_path: Path) -> None:
    root = make_root(tmp_path / "r", {"0001-L": (moving_frames(5, 0), "1,0,5,1\n")})
    (root / "splits" / "cross-subject.txt").unlink()
    with pytest.raises(DataError, match=r"cross-subject\.txt"):
        read(root, "pku-mmd")
    custom = tmp_path / "mine.txt"
    custom.write_text(split_text([], ["0001-L"]))
    c = read(root, "pku-mmd", ReadOptions(split_file=custom))
    assert c.sequence_splits["xsub/val"] == ["0001-L"] and c.splits["xsub/train"] == []
    assert c.source["split_files"]["xsub"] == str(custom)
    with pytest.raises(ConfigError, match="max_bodies"):
        read(root, "pku-mmd", ReadOptions(max_bodies=0))


@pytest.mark.parametrize(
    ("skeleton", "labels", "message", "where", "line"),
    [
        ("", "1,0,1,1\n", "empty", "skeleton", None),
        ("TRUNCATE", "1,0,1,1\n", "149 numbers", "skeleton", 4),
        ("NAN", "1,0,1,1\n", "NaN", "skeleton", 2),
        ("BLANK", "1,0,1,1\n", "0 numbers", "skeleton", 3),
        (None, "1,3,3,1\n", "not inside", "labels", 1),
        (None, "1,0,2,1\n1,-1,2,1\n", "not inside", "labels", 2),
        (None, "1,0,6,1\n", "not inside", "labels", 1),  # end > T + 1 (T = 4)
        (None, "1,4,5,1\n", "empty", "labels", 1),  # clipped to [4, 4)
        (None, "52,0,2,1\n", "outside 1..51", "labels", 1),
        (None, "0,0,2,1\n", "outside 1..51", "labels", 1),
        (None, "1,0,2\n", "label,start,end,confidence", "labels", 1),
        (None, "1,0,x,1\n", "label,start,end,confidence", "labels", 1),
        (None, "\n", "no action interval", "labels", None),
    ],
)
def test_bad_files_raise_data_error(tmp_path, skeleton, labels, message, where, line) -> None:
    root = make_root(tmp_path, {"0001-L": (moving_frames(4, 0), labels)})
    path = root / where / "0001-L.txt"
    text = (root / "skeleton" / "0001-L.txt").read_text()
    rows = text.splitlines(keepends=True)
    edits = {
        "TRUNCATE": text[: text.rindex(" ")] + "\n",
        "NAN": text.replace(rows[1], "nan" + rows[1][rows[1].index(" ") :]),
        "BLANK": "".join([*rows[:2], "\n", *rows[2:]]),
    }
    if skeleton is not None:
        (root / "skeleton" / "0001-L.txt").write_text(edits.get(skeleton, skeleton))
    with pytest.raises(DataError, match=message) as info:
        read(root, "pku-mmd")
    assert info.value.path == str(path) and info.value.line == line


def test_skip_bad_records_the_bad_video(tmp_path: Path) -> None:
    videos = {"0001-L": (moving_frames(4, 0), "1,0,4,1\n"), "0002-L": (moving_frames(4, 1), "9\n")}
    root = make_root(tmp_path, videos)
    c = read(root, "pku-mmd", ReadOptions(skip_bad=True))
    assert [s.id for s in c.sequences] == ["0001-L"]
    assert [(Path(s.path).name, s.sample) for s in c.skipped] == [("0002-L.txt", "0002-L")]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Training videos: \na, b,\nValidataion videos: \nc\n", True),
        ("Training videos: a, b\nValidation videos: c, d.txt\n", True),
        ("a, b\nValidation videos: c\n", False),
        ("Training videos:\na\n", False),
        ("Training videos:\na, b\nValidation videos:\nb\n", False),
    ],
)
def test_split_file_format(tmp_path: Path, text: str, ok: bool) -> None:
    path = tmp_path / "split.txt"
    path.write_text(text)
    if not ok:
        with pytest.raises(DataError):
            read_split_file(path)
        return
    lists = read_split_file(path)
    assert lists["train"] == ["a", "b"] and lists["val"][0] == "c"
    assert lists["val"][1:] in ([], ["d"])


def test_skeleton_matches_loadtxt_reference() -> None:
    path = real_data("pku_mmd_part1", "skeleton", "0036-L.txt")
    ref = np.loadtxt(path).reshape(-1, 2, 25, 3).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(read_skeleton_bodies(path), ref, rtol=1e-6)


def test_real_part1(real) -> None:
    assert {s.id: s.x.shape[1] for s in real.sequences} == REAL_FRAMES
    assert len(real.samples) == 136 and len(real.class_names) == 51
    for seq in real.sequences:
        assert (seq.x.shape[0], *seq.x.shape[2:]) == (3, 25, 2) and seq.x.dtype == np.float32
        starts, ends = seq.intervals[:, 1], seq.intervals[:, 2]
        assert (starts >= 0).all() and (starts < ends).all() and (ends <= seq.x.shape[1]).all()
    labels = [s.label for s in real.samples]
    assert all(type(v) is int and 0 <= v <= 50 for v in labels)
    lengths = {s.id: s.x.shape[1] for s in real.samples}
    interval_lengths = {
        f"{q.id}_{k}": int(e - s) for q in real.sequences for k, (_, s, e) in enumerate(q.intervals)
    }
    assert lengths == interval_lengths
    val = {v for v in REAL_FRAMES if 291 <= int(v[:4]) <= 334}
    assert set(real.sequence_splits["xsub/val"]) == val
    assert set(real.sequence_splits["xsub/train"]) == set(REAL_FRAMES) - val
    assert set(real.sequence_splits["xview/val"]) == {v for v in REAL_FRAMES if v.endswith("M")}
    val_samples = {s.id for s in real.samples if s.id[:6] in val}
    assert set(real.splits["xsub/val"]) == val_samples
    assert set(real.splits["xsub/train"]) == {s.id for s in real.samples} - val_samples
