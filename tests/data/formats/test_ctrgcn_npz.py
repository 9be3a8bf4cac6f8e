"""CTR-GCN / MAMP ``.npz`` reader (``x_train (N, T, M*V*3)``, one-hot ``y_train``, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import read
from pcm3.data.formats.base import ReadOptions
from pcm3.data.formats.ctrgcn_npz import npz_arrays
from pcm3.errors import DataError

from .layouts_for_tests import layout_option


def flat_clips(rng: np.random.Generator, lengths, t: int, v: int, m: int) -> np.ndarray:
    """``(N, T, M*V*3)`` random clips, zero after each length."""
    x = np.zeros((len(lengths), t, m * v * 3), dtype=np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, m * v * 3))
    return x


def reference(flat: np.ndarray, length: int, v: int, m: int) -> np.ndarray:
    """Slow reference of the CTR-GCN order: feature index = (person * V + joint) * 3 + xyz."""
    out = np.zeros((3, length, v, m), dtype=np.float32)
    for t in range(length):
        for person in range(m):
            for joint in range(v):
                for c in range(3):
                    out[c, t, joint, person] = flat[t, (person * v + joint) * 3 + c]
    return out


def one_hot(labels, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[labels]


@pytest.mark.parametrize(("layout_name", "bodies"), [("ntu25", 2), ("tiny8", 2), ("tiny8", 1)])
@pytest.mark.parametrize("compressed", [False, True])
def test_reads_train_and_test(tmp_path: Path, layout_name: str, bodies: int,
                              compressed: bool) -> None:
    layout, v = layout_option(tmp_path, layout_name)
    rng = np.random.default_rng(0)
    x_train = flat_clips(rng, [5, 2, 6], 6, v, bodies)
    x_train[0, 1] = 0  # interior empty frame: kept
    x_test = flat_clips(rng, [3], 6, v, bodies)
    path = tmp_path / "NTU60_CS.npz"
    save = np.savez_compressed if compressed else np.savez
    save(path, x_train=x_train, y_train=one_hot([1, 0, 3], 5), x_test=x_test,
         y_test=one_hot([4], 5))
    out = read(path, "ctrgcn-npz", ReadOptions(layout=layout))
    assert out.splits == {"train": ["train_000000", "train_000001", "train_000002"],
                          "test": ["test_000000"]}
    assert out.class_names == [f"label_{k}" for k in range(5)]
    assert [s.label for s in out.samples] == [1, 0, 3, 4]
    refs = [reference(x_train[0], 5, v, bodies), reference(x_train[1], 2, v, bodies),
            reference(x_train[2], 6, v, bodies), reference(x_test[0], 3, v, bodies)]
    for s, ref in zip(out.samples, refs, strict=True):
        assert s.x.dtype == np.float32
        np.testing.assert_array_equal(s.x, ref)


def test_uncompressed_members_are_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.savez(path, x_train=x, big=np.zeros((70000, 2)))  # > 64 KiB member
    arrays = npz_arrays(path)
    assert isinstance(arrays["x_train"], np.memmap) and isinstance(arrays["big"], np.memmap)
    np.testing.assert_array_equal(arrays["x_train"], x)
    np.savez_compressed(path, x_train=x)
    np.testing.assert_array_equal(npz_arrays(path)["x_train"], x)


def test_integer_labels_and_class_names_file(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = flat_clips(np.random.default_rng(1), [2, 2], 2, 25, 2)
    np.savez(path, x_train=x, y_train=np.array([2, 0]))
    names = tmp_path / "names.txt"
    names.write_text("a\nb\nc\n")
    out = read(path, "ctrgcn-npz", ReadOptions(labels=names))
    assert [s.label for s in out.samples] == [2, 0] and out.class_names == ["a", "b", "c"]
    assert out.splits == {"train": ["train_000000", "train_000001"]}


def test_max_bodies_keeps_the_most_active(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = np.zeros((1, 4, 2, 25, 3), dtype=np.float32)  # (N, T, M, V, C)
    x[0, :, 0] = rng.normal(scale=0.01, size=(4, 25, 3))
    x[0, :, 1] = rng.normal(scale=3.0, size=(4, 25, 3))
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x.reshape(1, 4, 150), y_train=np.array([0]))
    (s,) = read(path, "ctrgcn-npz", ReadOptions(max_bodies=1)).samples
    np.testing.assert_array_equal(s.x, x[0, :, 1].transpose(2, 0, 1)[..., None])


def _bad(path: Path, case: str) -> str:
    rng = np.random.default_rng(3)
    x = flat_clips(rng, [3, 2], 3, 25, 2)
    y = one_hot([0, 1], 2)
    if case == "features":
        np.savez(path, x_train=x[..., :100], y_train=y)
        return "expected (N, T, M*25*3)"
    if case == "text":
        np.savez(path, x_train=x.astype(str), y_train=y)
        return "must hold numbers"
    if case == "flat":
        np.savez(path, x_train=x[0, 0], y_train=y)
        return "expected (N, T, M*25*3)"
    if case == "no_y":
        np.savez(path, x_train=x)
        return "no matching y_train"
    if case == "not_one_hot":
        np.savez(path, x_train=x, y_train=np.array([[1, 0], [0.5, 0.5]]))
        return "row 1 is not one-hot"
    if case == "y_count":
        np.savez(path, x_train=x, y_train=y[:1])
        return "expected (2,) or (2, K) one-hot"
    if case == "fractional":
        np.savez(path, x_train=x, y_train=np.array([0, 0.5]))
        return "y_train[1] = 0.5 is not an integer"
    if case == "no_x":
        np.savez(path, data=x)
        return "no x_train / x_test member"
    if case == "not_zip":
        path.write_bytes(b"definitely not a zip file")
        return "not an .npz file"
    if case == "object":
        np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=y)
        return "object arrays are refused"
    if case == "all_zero":
        x[1] = 0
        np.savez(path, x_train=x, y_train=y)
        return "every coordinate is zero"
    if case == "nan":
        x[1, 1, 7] = np.nan
        np.savez(path, x_train=x, y_train=y)
        return "NaN or inf"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["features", "text", "flat", "no_y", "not_one_hot", "y_count", "fractional",
                                  "no_x", "not_zip", "object", "all_zero", "nan"])
def test_bad_input_raises_data_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.npz"
    message = _bad(path, case)
    with pytest.raises(DataError) as info:
        read(path, "ctrgcn-npz")
    assert message in str(info.value) and str(path) in str(info.value)
    if case in ("all_zero", "nan", "not_one_hot"):
        assert info.value.sample == "train_000001"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read(tmp_path / "none.npz", "ctrgcn-npz")


def test_skip_bad(tmp_path: Path) -> None:
    x = flat_clips(np.random.default_rng(4), [3, 2, 3], 3, 25, 2)
    x[1] = 0
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=np.array([0, 1, 2]), x_test=x[:1], y_test=np.array([1]))
    out = read(path, "ctrgcn-npz", ReadOptions(skip_bad=True))
    assert out.splits == {"train": ["train_000000", "train_000002"], "test": ["test_000000"]}
    assert [(s.sample, s.path) for s in out.skipped] == [("train_000001", str(path))]
    assert "zero" in out.skipped[0].reason
