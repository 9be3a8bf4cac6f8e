"""The ``arrays`` reader (users' own data) and the exact snippets of ``docs/custom_data.md``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import FORMATS, read
from pcm3.data.formats.base import ReadOptions
from pcm3.errors import DataError

from .layouts_for_tests import layout_option

DOC = Path(__file__).resolve().parents[3] / "docs" / "custom_data.md"


def to_ctvm(clip: np.ndarray, length: int) -> np.ndarray:
    """Slow reference: ``(M, T, V, C)`` -> ``(C, length, V, M)``."""
    m, _, v, c = clip.shape
    out = np.zeros((c, length, v, m), dtype=np.float32)
    for body in range(m):
        for t in range(length):
            for j in range(v):
                out[:, t, j, body] = clip[body, t, j]
    return out


def opts(layout: str = "ntu25", **kw) -> ReadOptions:
    return ReadOptions(layout=layout, **kw)


# ---------------------------------------------------------------------------- trimmed


@pytest.mark.parametrize("layout_name", ["ntu25", "tiny8"])
@pytest.mark.parametrize("bodies", [None, 1, 2])
def test_npz_with_every_array(tmp_path: Path, layout_name: str, bodies: int | None) -> None:
    layout, v = layout_option(tmp_path, layout_name)
    rng = np.random.default_rng(0)
    shape = (4, 6, v, 3) if bodies is None else (4, bodies, 6, v, 3)
    x = rng.normal(size=shape).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.array([2, 0, -1, 1]), lengths=np.array([6, 1, 3, 6]),
             ids=np.array(["w", "x", "y", "z"]), class_names=np.array(["a", "b", "c"]),
             split_xsub__train=np.array([0, 2, 2]), split_val=np.array([0, 1, 0, 1], bool))
    out = read(path, "arrays", opts(layout))
    assert out.layout.num_joints == v and out.class_names == ["a", "b", "c"]
    assert out.splits == {"xsub/train": ["w", "y"], "val": ["x", "z"]}
    assert [(s.id, s.label) for s in out.samples] == [("w", 2), ("x", 0), ("y", -1), ("z", 1)]
    per_body = x[:, None] if bodies is None else x
    for s, length, clip in zip(out.samples, [6, 1, 3, 6], per_body, strict=True):
        assert s.x.dtype == np.float32
        np.testing.assert_array_equal(s.x, to_ctvm(clip, length))
    assert out.sequences == [] and out.source["format"] == "arrays"


def test_defaults_and_trailing_zero_length(tmp_path: Path) -> None:
    x = np.zeros((2, 5, 25, 2), dtype=np.float32)  # 2D coordinates
    x[0, :3] = 1.0
    x[0, 1] = 0.0  # interior empty frame: kept
    x[1, :5] = 2.0
    np.save(tmp_path / "x.npy", x)  # a folder of .npy files, only x
    out = read(tmp_path, "arrays", opts())
    assert [s.id for s in out.samples] == ["sample_000000", "sample_000001"]
    assert [s.x.shape for s in out.samples] == [(2, 3, 25, 1), (2, 5, 25, 1)]
    assert [s.label for s in out.samples] == [-1, -1]
    assert out.class_names == [] and out.splits == {}


def test_folder_of_npy_is_memory_mapped_and_reads_splits(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(3, 4, 25, 3)).astype(np.float32)
    for name, arr in {"x": x, "y": np.array([0, 1, 1]), "split_train": np.array([2, 0])}.items():
        np.save(tmp_path / f"{name}.npy", arr)
    out = read(tmp_path, "arrays", opts())
    assert out.splits == {"train": ["sample_000000", "sample_000002"]}
    assert out.class_names == ["label_0", "label_1"]


def test_more_bodies_than_max_keeps_the_most_active(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x = np.zeros((1, 3, 4, 25, 3), dtype=np.float32)
    x[0, 0] = 1.0
    x[0, 1] = rng.normal(scale=4.0, size=(4, 25, 3))
    x[0, 2] = rng.normal(scale=0.5, size=(4, 25, 3))
    np.savez(tmp_path / "d.npz", x=x)
    (s,) = read(tmp_path / "d.npz", "arrays", opts(max_bodies=2)).samples
    np.testing.assert_array_equal(s.x, to_ctvm(x[0, [1, 2]], 4))


def _bad_trimmed(tmp_path: Path, case: str) -> tuple[Path, str]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 25, 3)).astype(np.float32)
    path = tmp_path / "d.npz"
    arrays = {"x": x}
    message = {
        "ndim": "expected (N, T, 25, C) or (N, M, T, 25, C)",
        "joints": "expected (N, T, 25, C)", "channels": "C = 2 or 3",
        "dtype": "must hold numbers", "y_count": "'y' has 2 entries for 3 clips",
        "y_fraction": "y[1] = 0.5 is not an integer", "length_zero": "length 0 outside 1..4",
        "length_big": "length 5 outside 1..4", "ids_dup": "'ids' are not unique",
        "ids_object": "object arrays are refused", "split_range": "index 3 outside 0..2",
        "mask_len": "has length 2, expected 3", "split_float": "int indices or a boolean mask",
        "unknown": "unknown arrays ['label']", "label_vs_names": "label 2 outside 0..1",
        "nan": "NaN or inf", "all_zero": "every coordinate is zero", "no_x": "no array 'x'",
        "ids_count": "'ids' must be (3,) strings", "zero_within_length": "every coordinate is zero",
    }[case]
    if case == "ndim":
        arrays["x"] = x[0]
    elif case == "joints":
        arrays["x"] = x[:, :, :20]
    elif case == "channels":
        arrays["x"] = np.concatenate([x, x[..., :1]], axis=-1)
    elif case == "dtype":
        arrays["x"] = x.astype(str)
    elif case == "y_count":
        arrays["y"] = np.array([0, 1])
    elif case == "y_fraction":
        arrays["y"] = np.array([0, 0.5, 1])
    elif case in ("length_zero", "length_big"):
        arrays["lengths"] = np.array([4, 0 if case == "length_zero" else 5, 2])
    elif case == "ids_dup":
        arrays["ids"] = np.array(["a", "b", "a"])
    elif case == "ids_object":
        arrays["ids"] = np.array(["a", "b", "c"], dtype=object)
    elif case == "ids_count":
        arrays["ids"] = np.array(["a", "b"])
    elif case == "split_range":
        arrays["split_train"] = np.array([0, 3])
    elif case == "mask_len":
        arrays["split_train"] = np.array([True, False])
    elif case == "split_float":
        arrays["split_train"] = np.array([0.0, 1.0])
    elif case == "unknown":
        arrays["label"] = np.array([0, 1, 2])
    elif case == "label_vs_names":
        arrays.update(y=np.array([0, 2, 1]), class_names=np.array(["a", "b"]))
    elif case == "nan":
        x[1, 2, 3, 0] = np.inf
    elif case == "all_zero":
        x[1] = 0
    elif case == "zero_within_length":
        x[1, :2] = 0  # non-zero only after the clip's stated length
        arrays["lengths"] = np.array([4, 2, 4])
    elif case == "no_x":
        arrays = {"y": np.array([0, 1, 2])}
    np.savez(path, **arrays)
    return path, message


TRIMMED_BAD = ["ndim", "joints", "channels", "dtype", "y_count", "y_fraction", "length_zero",
               "length_big", "ids_dup", "ids_object", "ids_count", "split_range", "mask_len",
               "split_float", "unknown", "label_vs_names", "nan", "all_zero", "zero_within_length",
               "no_x"]


@pytest.mark.parametrize("case", TRIMMED_BAD)
def test_bad_trimmed_input_raises(tmp_path: Path, case: str) -> None:
    path, message = _bad_trimmed(tmp_path, case)
    with pytest.raises(DataError) as info:
        read(path, "arrays", opts())
    assert message in str(info.value) and str(path) in str(info.value)
    if case in ("length_zero", "length_big", "label_vs_names", "nan", "all_zero",
                "zero_within_length"):
        assert info.value.sample == "sample_000001"


def test_bad_sources(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((1, 2, 25, 3)))
    with pytest.raises(DataError, match="needs a layout"):
        read(tmp_path / "a.npz", "arrays", ReadOptions())
    with pytest.raises(DataError, match="no such file"):
        read(tmp_path / "missing", "arrays", opts())
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=re.escape("expected an .npz file")):
        read(tmp_path / "notes.txt", "arrays", opts())
    np.save(tmp_path / "x.npy", np.ones((1, 2, 25, 3)))
    with pytest.raises(DataError, match=re.escape("both x.npy and a.npz")):
        read(tmp_path, "arrays", opts())
    (tmp_path / "x.npy").unlink()
    np.savez(tmp_path / "b.npz", x=np.ones((1, 2, 25, 3)))
    with pytest.raises(DataError, match=re.escape("several .npz files")):
        read(tmp_path, "arrays", opts())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=re.escape("found no x.npy, .npz or sequences/")):
        read(empty, "arrays", opts())


def test_class_names_file_must_agree_with_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((1, 2, 25, 3)), class_names=np.array(["p", "q"]))
    (tmp_path / "class_names.txt").write_text("p\nr\n")
    with pytest.raises(DataError, match="differ"):
        read(tmp_path, "arrays", opts())
    (tmp_path / "class_names.txt").write_text("p\nq\n")
    assert read(tmp_path, "arrays", opts()).class_names == ["p", "q"]


def test_skip_bad_trimmed(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(3, 4, 25, 3)).astype(np.float32)
    x[0] = 0
    np.savez(tmp_path / "d.npz", x=x, lengths=np.array([4, 9, 2]), split_all=np.arange(3))
    out = read(tmp_path / "d.npz", "arrays", opts(skip_bad=True))
    assert [s.id for s in out.samples] == ["sample_000002"]
    assert out.splits == {"all": ["sample_000002"]}
    assert [s.sample for s in out.skipped] == ["sample_000000", "sample_000001"]
    assert "zero" in out.skipped[0].reason and "length 9" in out.skipped[1].reason


# ---------------------------------------------------------------------------- untrimmed


def make_untrimmed(root: Path, csv_rows: str, splits: str | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    seqs = {"rec_a": rng.normal(size=(30, 25, 3)).astype(np.float32),  # (T, V, C)
            "rec_b": rng.normal(size=(2, 12, 25, 3)).astype(np.float32)}  # (M, T, V, C)
    (root / "sequences").mkdir(parents=True, exist_ok=True)
    for name, arr in seqs.items():
        np.save(root / "sequences" / f"{name}.npy", arr)
    (root / "intervals.csv").write_text("sequence,label,start,end\n" + csv_rows)
    if splits is not None:
        (root / "sequence_splits.csv").write_text("sequence,split\n" + splits)
    return seqs


def test_untrimmed_sequences_and_intervals(tmp_path: Path) -> None:
    (tmp_path / "class_names.txt").write_text("walk\nrun\n")
    seqs = make_untrimmed(tmp_path, "rec_a,run,0,10\nrec_a,0,12,30\nrec_b,walk,3,12\n",
                          "rec_a,train\nrec_b,test\nrec_a,all\n")
    out = read(tmp_path, "arrays", opts())
    assert out.samples == [] and out.class_names == ["walk", "run"]
    a, b = out.sequences
    np.testing.assert_array_equal(a.x, to_ctvm(np.concatenate([seqs["rec_a"][None],
                                                               np.zeros((1, 30, 25, 3))]), 30))
    np.testing.assert_array_equal(b.x, to_ctvm(seqs["rec_b"], 12))
    np.testing.assert_array_equal(a.intervals, [[1, 0, 10], [0, 12, 30]])
    np.testing.assert_array_equal(b.intervals, [[0, 3, 12]])
    assert a.intervals.dtype == np.int64
    assert out.sequence_splits == {"train": ["rec_a"], "test": ["rec_b"], "all": ["rec_a"]}


def test_trimmed_and_untrimmed_in_one_folder(tmp_path: Path) -> None:
    make_untrimmed(tmp_path, "rec_a,3,0,10\n")
    np.savez(tmp_path / "clips.npz", x=np.ones((2, 3, 25, 3)), y=np.array([0, 1]))
    out = read(tmp_path, "arrays", opts(max_bodies=1))
    assert len(out.samples) == 2 and len(out.sequences) == 2
    assert out.class_names == ["label_0", "label_1", "label_2", "label_3"]
    assert out.sequences[1].x.shape == (3, 12, 25, 1)


@pytest.mark.parametrize(("rows", "message", "line"), [
    ("rec_a,0,5,40\n", "interval [5, 40) is not inside the sequence's 30 frames", 2),
    ("rec_a,0,0,10\nrec_a,0,8,8\n", "interval [8, 8)", 3),
    ("rec_a,0,-1,5\n", "interval [-1, 5)", 2),
    ("rec_x,0,0,5\n", "unknown sequence 'rec_x'", 2),
    ("rec_a,jump,0,5\n", "label 'jump' is neither an int nor a class name", 2),
    ("rec_a,-2,0,5\n", "label -2 outside", 2),
    ("rec_a,0,zero,5\n", "start and end must be integers", 2),
])
def test_bad_intervals(tmp_path: Path, rows: str, message: str, line: int) -> None:
    make_untrimmed(tmp_path, rows)
    with pytest.raises(DataError) as info:
        read(tmp_path, "arrays", opts())
    assert message in str(info.value) and info.value.line == line
    assert str(tmp_path / "intervals.csv") in str(info.value)


def test_bad_untrimmed_files(tmp_path: Path) -> None:
    make_untrimmed(tmp_path, "")
    (tmp_path / "intervals.csv").write_text("seq,label,start,end\n")
    with pytest.raises(DataError, match="expected sequence,label,start,end"):
        read(tmp_path, "arrays", opts())
    (tmp_path / "intervals.csv").unlink()
    with pytest.raises(DataError, match="cannot read CSV"):
        read(tmp_path, "arrays", opts())
    make_untrimmed(tmp_path, "", "rec_z,train\n")
    with pytest.raises(DataError, match="unknown sequence 'rec_z'"):
        read(tmp_path, "arrays", opts())
    (tmp_path / "sequence_splits.csv").unlink()
    np.save(tmp_path / "sequences" / "rec_c.npy", np.ones((5, 20, 3)))
    with pytest.raises(DataError, match=r"\(T, 25, C\)") as info:
        read(tmp_path, "arrays", opts())
    assert info.value.sample == "rec_c"
    out = read(tmp_path, "arrays", opts(skip_bad=True))
    assert [s.id for s in out.sequences] == ["rec_a", "rec_b"]
    assert [s.sample for s in out.skipped] == ["rec_c"]
    np.save(tmp_path / "sequences" / "rec_c.npy", np.zeros((5, 25, 3)))
    with pytest.raises(DataError, match="every coordinate is zero") as info:
        read(tmp_path, "arrays", opts())
    assert info.value.sample == "rec_c"


def test_skip_bad_untrimmed_drops_the_sequence_and_its_splits(tmp_path: Path) -> None:
    make_untrimmed(tmp_path, "rec_a,0,0,99\nrec_b,0,0,5\n", "rec_a,train\nrec_b,train\n")
    out = read(tmp_path, "arrays", opts(skip_bad=True))
    assert [s.id for s in out.sequences] == ["rec_b"] and out.sequence_splits == {"train": ["rec_b"]}
    assert out.skipped[0].sample == "rec_a" and "not inside" in out.skipped[0].reason


# ---------------------------------------------------------------------------- the guide


def doc_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_custom_data_guide_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    from pcm3.cli import main
    from pcm3.data.store import open_store, open_untrimmed

    monkeypatch.chdir(tmp_path)
    (layout_yaml,) = doc_blocks("yaml")
    filename = layout_yaml.splitlines()[0].lstrip("# ").strip()
    Path(filename).write_text(layout_yaml)
    namespace: dict = {}
    trimmed_code, untrimmed_code = doc_blocks("python")
    exec(trimmed_code, namespace)  # the exact snippets of the guide
    exec(untrimmed_code, namespace)

    # the reader returns exactly the clips the guide wrote
    out = read("mydata.npz", "arrays", ReadOptions(layout=filename))
    assert out.layout.name == "upper_body10" and out.class_names == ["wave", "clap", "bow"]
    assert len(out.splits["train"]) == 45 and len(out.splits["test"]) == 15
    for s, clip, label in zip(out.samples, namespace["clips"], namespace["labels"], strict=True):
        np.testing.assert_allclose(s.x[..., 0], clip.transpose(2, 0, 1).astype(np.float32))
        assert s.label == label
    seqs = read("myrecordings", "arrays", ReadOptions(layout=filename))
    assert [len(s.intervals) for s in seqs.sequences] == [2, 1, 1]
    assert seqs.sequence_splits == {"train": ["day1_cam0", "day1_cam1"], "test": ["day2_cam0"]}

    # the guide's shell commands, through the real command line
    commands = [line for block in doc_blocks("bash") for line in block.splitlines()
                if line.startswith("pcm3 ")]
    assert len(commands) == 4
    for command in commands:
        argv = shlex.split(command)[1:]
        if "--format" in argv:
            assert argv[argv.index("--format") + 1] in FORMATS
        assert main(argv) == 0, capsys.readouterr().err
    assert len(open_store("stores/mine")) == 60
    assert open_untrimmed("stores/mine_detection").num_intervals == 4
    assert "upper_body10" in capsys.readouterr().out
