"""pyskl / mmaction2 annotation pickle reader (3D and 2D, splits, safety)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from pcm3.data.formats import read
from pcm3.data.formats.base import ReadOptions
from pcm3.errors import DataError

TINY8 = {
    "name": "tiny8",
    "joints": ["hip", "spine", "neck", "head", "l_arm", "l_hand", "r_arm", "r_hand"],
    "parents": ["hip", "hip", "spine", "neck", "neck", "l_arm", "neck", "r_arm"],
    "parts": {"trunk": ["hip", "spine", "neck", "head"], "arms": [4, 5, 6, 7]},
}


def anno(frame_dir: str, label, keypoint: np.ndarray, score: np.ndarray | None = None,
         **extra) -> dict:
    out = {"frame_dir": frame_dir, "label": label, "keypoint": keypoint,
           "total_frames": keypoint.shape[1], "img_shape": (1080, 1920), **extra}
    if score is not None:
        out["keypoint_score"] = score
    return out


def dump(path: Path, content) -> Path:
    path.write_bytes(pickle.dumps(content))
    return path


def to_ctvm(keypoint: np.ndarray, keep: int) -> np.ndarray:
    """Slow reference: ``(M, T, V, C)`` -> ``(C, T, V, keep)``, zero bodies appended."""
    m, t, v, c = keypoint.shape
    out = np.zeros((c, t, v, keep), dtype=np.float32)
    for body in range(min(m, keep)):
        for f in range(t):
            for j in range(v):
                out[:, f, j, body] = keypoint[body, f, j]
    return out


def test_3d_annotations_and_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kp_a = rng.normal(size=(2, 5, 25, 3)).astype(np.float32)
    kp_b = rng.normal(size=(1, 3, 25, 3)).astype(np.float16)  # fewer bodies, half precision
    content = {"split": {"xsub_train": ["S001A"], "xsub_val": ["S002B"]},
               "annotations": [anno("S001A", 3, kp_a), anno("S002B", 0, kp_b)]}
    out = read(dump(tmp_path / "ntu60_3danno.pkl", content), "pyskl")
    assert out.layout.name == "ntu25" and out.splits == {"xsub_train": ["S001A"],
                                                          "xsub_val": ["S002B"]}
    assert out.class_names == ["label_0", "label_1", "label_2", "label_3"]
    a, b = out.samples
    assert (a.id, a.label, b.id, b.label) == ("S001A", 3, "S002B", 0)
    np.testing.assert_array_equal(a.x, to_ctvm(kp_a, 2))
    np.testing.assert_array_equal(b.x, to_ctvm(kp_b.astype(np.float32), 2))
    assert a.x.dtype == b.x.dtype == np.float32 and a.confidence is None


def test_2d_keeps_scores_of_the_kept_bodies(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    kp = np.zeros((3, 4, 17, 2), dtype=np.float32)
    kp[0] = 100.0  # static
    kp[1] = rng.normal(scale=50.0, size=(4, 17, 2))  # most active
    kp[2] = rng.normal(scale=5.0, size=(4, 17, 2))
    score = rng.uniform(size=(3, 4, 17)).astype(np.float32)
    content = {"split": {"train": ["v1"]}, "annotations": [anno("v1", 2, kp, score)],
               "class_names": ["a", "b", "c"]}
    (s,) = read(dump(tmp_path / "k400_2d.pkl", content), "pyskl",
                ReadOptions(max_bodies=2)).samples
    assert s.x.shape == (2, 4, 17, 2) and s.confidence.shape == (4, 17, 2)
    for k, body in enumerate([1, 2]):  # most active first
        np.testing.assert_array_equal(s.x[..., k], kp[body].transpose(2, 0, 1))
        np.testing.assert_array_equal(s.confidence[..., k], score[body])


def test_2d_single_body_scores_and_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    kp = rng.normal(size=(1, 3, 17, 2)).astype(np.float32)
    score = rng.uniform(size=(1, 3, 17)).astype(np.float32)
    content = {"annotations": [anno("v", 1, kp, score)], "class_names": ["sit", "jump"]}
    out = read(dump(tmp_path / "a.pkl", content), "pyskl")
    assert out.layout.name == "coco17" and out.class_names == ["sit", "jump"] and out.splits == {}
    np.testing.assert_array_equal(out.samples[0].confidence, score.transpose(1, 2, 0))


@pytest.mark.parametrize(("joints", "layout"), [(20, "kinect_v1_20"), (33, "mediapipe33")])
def test_layout_inferred_from_joint_count(tmp_path: Path, joints: int, layout: str) -> None:
    kp = np.ones((1, 2, joints, 3), dtype=np.float32)
    out = read(dump(tmp_path / "a.pkl", {"annotations": [anno("v", 0, kp)]}), "pyskl")
    assert out.layout.name == layout


def test_custom_layout_option(tmp_path: Path) -> None:
    layout = tmp_path / "tiny8.yaml"
    layout.write_text(yaml.safe_dump(TINY8))
    kp = np.random.default_rng(3).normal(size=(1, 2, 8, 3)).astype(np.float32)
    path = dump(tmp_path / "a.pkl", {"annotations": [anno("v", 0, kp)]})
    with pytest.raises(DataError, match="cannot infer the layout of 8 joints"):
        read(path, "pyskl")
    (s,) = read(path, "pyskl", ReadOptions(layout=str(layout))).samples
    np.testing.assert_array_equal(s.x, to_ctvm(kp, 1))


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_forbidden_global_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    kp = np.ones((1, 2, 25, 3), dtype=np.float32)
    path = dump(tmp_path / "evil.pkl", {"annotations": [anno("v", 0, kp, x=_Exploit(marker))]})
    with pytest.raises(DataError, match="refusing to unpickle") as info:
        read(path, "pyskl")
    assert str(path) in str(info.value)
    assert not marker.exists()


def _bad(rng: np.random.Generator, case: str) -> tuple[object, str]:
    kp = rng.normal(size=(1, 3, 25, 3)).astype(np.float32)
    ok = anno("good", 0, kp)
    cases = {
        "not_dict": ([ok], "'annotations' list"),
        "no_label": ([{"frame_dir": "x", "keypoint": kp}], "no 'label'"),
        "no_frame_dir": ([{"label": 0, "keypoint": kp}], "string 'frame_dir'"),
        "joints": ([anno("x", 0, kp[:, :, :20])], "expected (M, T, 25, 3)"),
        "channels": ([ok, anno("x", 0, kp[..., :2])], "expected (M, T, 25, 3)"),  # mixed C
        "four_coords": ([anno("x", 0, np.ones((1, 3, 25, 4)))], "4 coordinates, expected 2 or 3"),
        "list_keypoint": ([{**anno("x", 0, kp), "keypoint": kp.tolist()}], "keypoint is list"),
        "no_body": ([anno("x", 0, kp[:0])], "no body"),
        "total_frames": ([{**anno("x", 0, kp), "total_frames": 7}], "total_frames = 7"),
        "score_shape": ([anno("x", 0, kp, np.ones((1, 2, 25)))], "keypoint_score is (1, 2, 25)"),
        "negative_label": ([anno("x", -1, kp)], "label -1"),
        "fractional_label": ([anno("x", 1.5, kp)], "label 1.5"),
        "nan": ([anno("x", 0, np.full_like(kp, np.nan))], "NaN or inf"),
        "all_zero": ([anno("x", 0, np.zeros_like(kp))], "every coordinate is zero"),
        "duplicate": ([ok, anno("good", 1, kp)], "'good' appears in more than one"),
    }
    annotations, message = cases[case]
    content = {"annotations": annotations} if case != "not_dict" else annotations
    return content, message


BAD = ["not_dict", "no_label", "no_frame_dir", "joints", "channels", "four_coords",
       "list_keypoint", "no_body",
       "total_frames", "score_shape", "negative_label", "fractional_label", "nan", "all_zero",
       "duplicate"]


@pytest.mark.parametrize("case", BAD)
def test_bad_annotation_raises(tmp_path: Path, case: str) -> None:
    content, message = _bad(np.random.default_rng(4), case)
    path = dump(tmp_path / "bad.pkl", content)
    with pytest.raises(DataError) as info:
        read(path, "pyskl", ReadOptions(layout="ntu25"))
    assert message in str(info.value) and str(path) in str(info.value)
    if case not in ("not_dict", "duplicate", "no_frame_dir", "four_coords"):
        assert info.value.sample == "x"


def test_bad_splits_and_class_names(tmp_path: Path) -> None:
    kp = np.ones((1, 2, 25, 3), dtype=np.float32)
    path = dump(tmp_path / "a.pkl", {"split": {"train": ["v", "ghost"]},
                                     "annotations": [anno("v", 0, kp)]})
    with pytest.raises(DataError, match="'train' names 1 frame_dir"):
        read(path, "pyskl")
    dump(path, {"annotations": [anno("v", 2, kp)], "class_names": ["a", "b"]})
    with pytest.raises(DataError, match=r"label 2 outside 0..1"):
        read(path, "pyskl")
    dump(path, {"annotations": [anno("v", 0, kp)], "class_names": "ab"})
    with pytest.raises(DataError, match="list of strings"):
        read(path, "pyskl")


def test_skip_bad_drops_bad_annotations_from_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    kp = rng.normal(size=(2, 3, 25, 3)).astype(np.float32)
    content = {"split": {"train": ["a", "b", "c"]},
               "annotations": [anno("a", 0, kp), anno("b", 0, kp[:, :, :10]),
                               anno("c", 1, np.zeros((0, 3, 25, 3), np.float32))]}
    out = read(dump(tmp_path / "a.pkl", content), "pyskl", ReadOptions(skip_bad=True))
    assert [s.id for s in out.samples] == ["a"] and out.splits == {"train": ["a"]}
    assert [s.sample for s in out.skipped] == ["b", "c"]
    assert "expected (M, T, 25, 3)" in out.skipped[0].reason and "no body" in out.skipped[1].reason
