"""NW-UCLA ``all_sqe`` JSON reader: synthetic clips, every bad input, and the real data set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import read
from pcm3.data.formats.base import ReadOptions
from pcm3.data.formats.nw_ucla import CLASS_NAMES
from pcm3.errors import DataError

from ...real_data import real_data


def _write_clip(folder: Path, name: str, skeletons, label, **extra) -> Path:
    path = folder / f"{name}.json"
    record = {"file_name": name, "skeletons": skeletons, "label": label, **extra}
    path.write_text(json.dumps(record))
    return path


def _skeletons(rng: np.random.Generator, frames: int, joints: int = 20) -> list:
    return rng.normal(size=(frames, joints, 3)).round(4).tolist()


@pytest.fixture
def clips(tmp_path: Path) -> tuple[Path, dict[str, tuple[list, int]]]:
    """A root folder with all_sqe/ holding 5 clips over 3 views."""
    folder = tmp_path / "all_sqe"
    folder.mkdir()
    rng = np.random.default_rng(0)
    written = {}
    for name, frames, label in [("a01_s01_e00_v01", 5, 1), ("a02_s02_e01_v01", 3, 2),
                                ("a12_s03_e00_v02", 7, 10), ("a05_s01_e02_v03", 1, 5),
                                ("a06_s09_e03_v03", 4, 6)]:
        skel = _skeletons(rng, frames)
        _write_clip(folder, name, skel, label)
        written[name] = (skel, label)
    return tmp_path, written


def test_reads_every_clip_as_one_body(clips) -> None:
    root, written = clips
    out = read(root, "nw-ucla")
    assert out.layout.name == "kinect_v1_20"
    assert out.class_names == list(CLASS_NAMES) and len(out.class_names) == 10
    assert [s.id for s in out.samples] == sorted(written)
    for sample in out.samples:
        skel, label = written[sample.id]
        ref = np.zeros((3, len(skel), 20, 1), dtype=np.float32)
        for t, frame in enumerate(skel):  # slow, obviously-correct reference
            for v, joint in enumerate(frame):
                for c, value in enumerate(joint):
                    ref[c, t, v, 0] = value
        assert sample.x.dtype == np.float32
        np.testing.assert_array_equal(sample.x, ref)
        assert sample.label == label - 1
        assert sample.confidence is None
    assert out.skipped == []


def test_view_splits(clips) -> None:
    root, _ = clips
    out = read(root / "all_sqe", "nw-ucla")  # the all_sqe folder itself works too
    assert out.splits == {
        "xview/train": ["a01_s01_e00_v01", "a02_s02_e01_v01", "a12_s03_e00_v02"],
        "xview/val": ["a05_s01_e02_v03", "a06_s09_e03_v03"],
        "view1": ["a01_s01_e00_v01", "a02_s02_e01_v01"],
        "view2": ["a12_s03_e00_v02"],
        "view3": ["a05_s01_e02_v03", "a06_s09_e03_v03"],
    }


def _bad_cases(rng: np.random.Generator) -> dict[str, tuple[object, str]]:
    """name -> (file content, expected message part)."""
    good = _skeletons(rng, 3)
    return {
        "malformed": ('{"file_name": "x", "skeletons": [[[1, 2', "malformed JSON"),
        "missing_label": ({"file_name": "a", "skeletons": good}, "keys"),
        "not_object": ([1, 2, 3], "JSON object"),
        "label_zero": ({"file_name": "a", "skeletons": good, "label": 0}, "label 0"),
        "label_eleven": ({"file_name": "a", "skeletons": good, "label": 11}, "label 11"),
        "label_string": ({"file_name": "a", "skeletons": good, "label": "3"}, "label '3'"),
        "label_bool": ({"file_name": "a", "skeletons": good, "label": True}, "label True"),
        "label_float": ({"file_name": "a", "skeletons": good, "label": 2.5}, "label 2.5"),
        "joints19": ({"file_name": "a", "skeletons": _skeletons(rng, 3, 19), "label": 1},
                     "expected (T, 20, 3)"),
        "coords2": ({"file_name": "a", "skeletons": np.zeros((3, 20, 2)).tolist(), "label": 1},
                    "expected (T, 20, 3)"),
        "ragged": ({"file_name": "a", "skeletons": [good[0], good[1][:5]], "label": 1},
                   "list of numbers"),
        "nan": ({"file_name": "a", "skeletons": [[[float("nan")] * 3] * 20], "label": 1},
                "NaN or inf"),
        "inf": ({"file_name": "a", "skeletons": [[[0.0] * 3] * 20, [[float("inf")] * 3] * 20],
                 "label": 1}, "first at frame 1"),
        "empty": ({"file_name": "a", "skeletons": [], "label": 1}, "empty skeleton"),
        "all_zero": ({"file_name": "a", "skeletons": np.zeros((2, 20, 3)).tolist(), "label": 1},
                     "every coordinate is zero"),
        "text": ({"file_name": "a", "skeletons": "abc", "label": 1}, "list of numbers"),
    }


@pytest.mark.parametrize("case", sorted(_bad_cases(np.random.default_rng(1))))
def test_bad_clip_raises_naming_file_and_sample(tmp_path: Path, case: str) -> None:
    content, message = _bad_cases(np.random.default_rng(1))[case]
    name = "a01_s01_e00_v01"
    path = tmp_path / f"{name}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError) as info:
        read(tmp_path, "nw-ucla")
    text = str(info.value)
    assert message in text and str(path) in text and repr(name) in text


def test_file_name_without_view(tmp_path: Path) -> None:
    _write_clip(tmp_path, "clip_one", _skeletons(np.random.default_rng(0), 2), 1)
    with pytest.raises(DataError, match="aAA_sSS_eEE_vVV"):
        read(tmp_path, "nw-ucla")


def test_skip_bad_reports_each_bad_clip(clips) -> None:
    root, written = clips
    folder = root / "all_sqe"
    (folder / "a03_s01_e00_v01.json").write_text("{not json")
    _write_clip(folder, "a04_s01_e00_v02", [], 4)
    _write_clip(folder, "a08_s01_e00_v03", _skeletons(np.random.default_rng(2), 2), 42)
    out = read(root, "nw-ucla", ReadOptions(skip_bad=True))
    assert sorted(s.id for s in out.samples) == sorted(written)
    assert [(Path(s.path).name, s.sample) for s in out.skipped] == [
        ("a03_s01_e00_v01.json", "a03_s01_e00_v01"),
        ("a04_s01_e00_v02.json", "a04_s01_e00_v02"),
        ("a08_s01_e00_v03.json", "a08_s01_e00_v03"),
    ]
    reasons = [s.reason for s in out.skipped]
    assert "malformed JSON" in reasons[0] and "empty" in reasons[1] and "label 42" in reasons[2]
    assert "a08_s01_e00_v03" not in out.splits["view3"]
    with pytest.raises(DataError):
        read(root, "nw-ucla")  # without skip_bad the first bad clip stops the read


def test_missing_folder_and_no_clips(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a folder"):
        read(tmp_path / "nope", "nw-ucla")
    with pytest.raises(DataError, match="no NW-UCLA clips"):
        read(tmp_path, "nw-ucla")


def test_layout_override_must_have_20_joints(clips) -> None:
    root, _ = clips
    with pytest.raises(DataError, match="20 joints"):
        read(root, "nw-ucla", ReadOptions(layout="ntu25"))
    assert read(root, "nw-ucla", ReadOptions(layout="kinect_v1_20")).layout.name == "kinect_v1_20"


def test_real_nw_ucla() -> None:
    nw_ucla = real_data("nw_ucla")  # reading speed: benchmarks/reader_speed.py
    out = read(nw_ucla, "nw-ucla")
    assert len(out.samples) == 1484 and out.skipped == []
    assert [len(out.splits[f"view{v}"]) for v in (1, 2, 3)] == [516, 504, 464]
    assert len(out.splits["xview/train"]) == 1020
    per_class = Counter(s.label for s in out.samples)
    assert sorted(per_class) == list(range(10))
    assert 141 <= min(per_class.values()) and max(per_class.values()) <= 173
    assert all(s.x.shape[0] == 3 and s.x.shape[2:] == (20, 1) for s in out.samples)
    with (nw_ucla / "val_split.csv").open() as fh:
        rows = {r["file_name"]: (int(r["length"]), int(r["label"])) for r in csv.DictReader(fh)}
    by_id = {s.id: s for s in out.samples}
    assert sorted(out.splits["xview/val"]) == sorted(rows)
    for name, (length, label) in rows.items():
        assert by_id[name].x.shape[1] == length and by_id[name].label == label - 1
