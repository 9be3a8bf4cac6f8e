"""ST-GCN / CMD / PCM3 ``{split}_data_joint.npy`` + ``{split}_label.pkl`` reader."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import read
from pcm3.data.formats import stgcn_npy as stgcn
from pcm3.data.formats.base import ReadOptions
from pcm3.errors import DataError

from ...real_data import real_data
from .layouts_for_tests import layout_option


def write_split(folder: Path, split: str, x: np.ndarray, names, labels, num_frame=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{split}_data_joint.npy", x)
    with (folder / f"{split}_label.pkl").open("wb") as fh:
        pickle.dump((list(names), list(labels)), fh)
    if num_frame is not None:
        np.save(folder / f"{split}_num_frame.npy", np.asarray(num_frame))


def padded_clips(rng: np.random.Generator, lengths, t: int, v: int, m: int = 2) -> np.ndarray:
    """``(N, 3, T, V, M)`` random clips, zero after each length."""
    x = np.zeros((len(lengths), 3, t, v, m), dtype=np.float32)
    for i, n in enumerate(lengths):
        x[i, :, :n] = rng.normal(size=(3, n, v, m))
    return x


@pytest.mark.parametrize("layout_name", ["ntu25", "tiny8"])
def test_reads_splits_lengths_and_float_labels(tmp_path: Path, layout_name: str) -> None:
    layout, v = layout_option(tmp_path, layout_name)
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    train = padded_clips(rng, [6, 3, 9], 10, v)
    train[0, :, 2] = 0  # an interior empty frame stays inside the valid length
    write_split(data, "train", train, ["a", "b", "c"], [0.0, 2.0, 1.0])  # PKU-style floats
    val = padded_clips(rng, [4, 10], 10, v)
    write_split(data, "val", val, ["d", "e"], [3, 1], num_frame=[2, 25])  # 25 > T is capped
    out = read(data, "stgcn-npy", ReadOptions(layout=layout))
    assert out.layout.num_joints == v
    assert out.splits == {"train": ["a", "b", "c"], "val": ["d", "e"]}
    assert out.class_names == ["label_0", "label_1", "label_2", "label_3"]
    expected = {"a": (train[0], 6, 0), "b": (train[1], 3, 2), "c": (train[2], 9, 1),
                "d": (val[0], 2, 3), "e": (val[1], 10, 1)}
    for s in out.samples:
        clip, length, label = expected[s.id]
        assert s.x.dtype == np.float32 and s.label == label and isinstance(s.label, int)
        np.testing.assert_array_equal(s.x, clip[:, :length])


def test_real_preprocessed_ntu_sample(tmp_path: Path) -> None:
    example = real_data("ntu_rgbd_samples", "preprocessed", "paddlevideo_example_ntu_CTVM.npy")
    clip = np.load(example)  # (3, 300, 25, 2), 72 non-zero frames, body 2 empty
    write_split(tmp_path, "val", clip[None], ["example"], [0])
    (s,) = read(tmp_path / "val_data_joint.npy", "stgcn-npy").samples  # a single split file
    assert s.x.shape == (3, 72, 25, 2)
    np.testing.assert_array_equal(s.x, clip[:, :72])
    assert not s.x[..., 1].any()


def test_names_colliding_across_splits_get_the_split_prefix(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_split(tmp_path, "train", padded_clips(rng, [2, 2], 3, 25), ["x", "y"], [0, 1])
    write_split(tmp_path, "val", padded_clips(rng, [3], 3, 25), ["x"], [1])
    out = read(tmp_path, "stgcn-npy")
    assert out.splits == {"train": ["train/x", "train/y"], "val": ["val/x"]}


def test_more_bodies_than_max_keeps_the_most_active(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = np.zeros((1, 3, 5, 25, 3), dtype=np.float32)
    x[0, ..., 0] = 1.0  # a static body: no motion at all
    x[0, ..., 1] = rng.normal(scale=0.1, size=(3, 5, 25))  # moves a little
    x[0, ..., 2] = rng.normal(scale=5.0, size=(3, 5, 25))  # moves a lot
    write_split(tmp_path, "train", x, ["s"], [0])
    (s,) = read(tmp_path, "stgcn-npy", ReadOptions(max_bodies=2)).samples
    np.testing.assert_array_equal(s.x, x[0][..., [2, 1]])
    (s,) = read(tmp_path, "stgcn-npy", ReadOptions(max_bodies=3)).samples  # M = max: unchanged
    np.testing.assert_array_equal(s.x, x[0])


def test_class_names_file(tmp_path: Path) -> None:
    write_split(tmp_path, "train", padded_clips(np.random.default_rng(3), [2], 2, 25), ["s"], [1])
    names = tmp_path / "names.txt"
    names.write_text("wave\nclap\n\n")
    assert read(tmp_path, "stgcn-npy", ReadOptions(labels=names)).class_names == ["wave", "clap"]
    names.write_text("wave\n")
    with pytest.raises(DataError, match="1 class names, but labels go up to 1"):
        read(tmp_path, "stgcn-npy", ReadOptions(labels=names))


def test_data_file_is_memory_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split(tmp_path, "train", padded_clips(np.random.default_rng(4), [2], 2, 25), ["s"], [0])
    calls = []
    original = stgcn.load_npy

    def spy(path: Path, mmap: bool = False) -> np.ndarray:
        calls.append((Path(path).name, mmap))
        return original(path, mmap)

    monkeypatch.setattr(stgcn, "load_npy", spy)
    read(tmp_path, "stgcn-npy")
    assert ("train_data_joint.npy", True) in calls


def _bad(tmp_path: Path, case: str) -> str:
    """Write a broken ``train`` split; return the expected message part."""
    rng = np.random.default_rng(5)
    good = padded_clips(rng, [3, 2], 4, 25)
    if case == "joints":
        write_split(tmp_path, "train", padded_clips(rng, [3], 4, 20), ["a"], [0])
        return "(N, C in 2|3, T, 25, M)"
    if case == "ndim":
        np.save(tmp_path / "train_data_joint.npy", good[:, 0])
        return "shape (2, 4, 25, 2)"
    if case == "no_label_pkl":
        np.save(tmp_path / "train_data_joint.npy", good)
        return "file not found"
    if case == "label_structure":
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1])
        (tmp_path / "train_label.pkl").write_bytes(pickle.dumps({"a": 0}))
        return "(sample_names, labels)"
    if case == "fractional_label":
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1.5])
        return "labels[1] = 1.5 is not an integer"
    if case == "count":
        write_split(tmp_path, "train", good, ["a"], [0])
        return "1 names and 1 labels for 2 samples"
    if case == "duplicate":
        write_split(tmp_path, "train", good, ["a", "a"], [0, 1])
        return "'a' appears more than once"
    if case == "all_zero":
        good[1] = 0
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1])
        return "every coordinate is zero"
    if case == "all_zero_num_frame":
        good[1] = 0
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1], num_frame=[3, 2])
        return "every coordinate is zero"
    if case == "nan":
        good[1, 0, 1, 3, 0] = np.nan
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1])
        return "NaN or inf coordinates (first at frame 1)"
    if case == "num_frame_zero":
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1], num_frame=[3, 0])
        return "num_frame 0 < 1"
    if case == "num_frame_shape":
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1], num_frame=[3])
        return "expected (2,) numbers"
    if case == "object_array":
        np.save(tmp_path / "train_data_joint.npy", np.array([None, 1], dtype=object))
        return "object arrays are refused"
    if case == "forbidden_pickle":
        write_split(tmp_path, "train", good, ["a", "b"], [0, 1])
        (tmp_path / "train_label.pkl").write_bytes(pickle.dumps((["a", "b"], os.getcwd)))
        return "refusing to unpickle"
    raise AssertionError(case)


BAD_CASES = ["joints", "ndim", "no_label_pkl", "label_structure", "fractional_label", "count",
             "duplicate", "all_zero", "all_zero_num_frame", "nan", "num_frame_zero",
             "num_frame_shape", "object_array", "forbidden_pickle"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_raises_data_error(tmp_path: Path, case: str) -> None:
    message = _bad(tmp_path, case)
    with pytest.raises(DataError) as info:
        read(tmp_path, "stgcn-npy")
    assert message in str(info.value) and str(tmp_path) in str(info.value)
    if case in ("all_zero", "all_zero_num_frame", "nan", "num_frame_zero"):
        assert info.value.sample == "b"


def test_skip_bad_reports_bad_samples(tmp_path: Path) -> None:
    x = padded_clips(np.random.default_rng(6), [3, 2, 4], 4, 25)
    x[0] = 0
    x[2, 1, 0, 0, 0] = np.inf
    write_split(tmp_path, "train", x, ["a", "b", "c"], [0, 1, 2])
    out = read(tmp_path, "stgcn-npy", ReadOptions(skip_bad=True))
    assert [s.id for s in out.samples] == ["b"] and out.splits == {"train": ["b"]}
    assert [(s.sample, Path(s.path).name) for s in out.skipped] == [
        ("a", "train_data_joint.npy"), ("c", "train_data_joint.npy")]
    assert "zero" in out.skipped[0].reason and "NaN or inf" in out.skipped[1].reason


def test_no_data_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no \*_data_joint\.npy"):
        read(tmp_path, "stgcn-npy")
