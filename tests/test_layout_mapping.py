"""Joint mappings between layouts, checked against mappings computed by hand."""

import numpy as np
import pytest

from pcm3.errors import ConfigError
from pcm3.layout_mapping import layout_mapping, map_joints, mapping_from_table
from pcm3.layouts import COCO17, JOINT_MAPPINGS, KINECT_V1_20, LAYOUTS, MEDIAPIPE33, NTU25, layout_from_dict


def _coco_frame() -> np.ndarray:
    """(17, 3) distinct, easy coordinates: joint j at (j + 1, 10 * (j + 1), -(j + 1))."""
    k = np.arange(1, 18, dtype=np.float32)
    return np.stack([k, 10 * k, -k], axis=1)


def _at(x: np.ndarray, layout, name: str) -> np.ndarray:
    return x[layout.joint_names.index(name)]


def test_coco17_to_ntu25_by_hand():
    src = _coco_frame()
    out = map_joints(src, "coco17", "ntu25")
    assert out.shape == (25, 3) and out.dtype == np.float32

    def c(name):
        return _at(src, COCO17, name)

    expected = {
        "shoulder_left": c("left_shoulder"), "elbow_right": c("right_elbow"), "wrist_left": c("left_wrist"),
        "hip_right": c("right_hip"), "knee_left": c("left_knee"), "ankle_right": c("right_ankle"),
        "spine_base": (c("left_hip") + c("right_hip")) / 2,
        "spine_shoulder": (c("left_shoulder") + c("right_shoulder")) / 2,
        "spine_mid": 0.2 * (c("left_hip") + c("right_hip"))
        + 0.3 * (c("left_shoulder") + c("right_shoulder")),
        "head": (c("left_ear") + c("right_ear")) / 2,
        "neck": ((c("left_shoulder") + c("right_shoulder")) / 2 + (c("left_ear") + c("right_ear")) / 2) / 2,
        # absent joints, filled from the nearest mapped joint along NTU's bones
        "hand_left": c("left_wrist"), "hand_tip_left": c("left_wrist"), "thumb_right": c("right_wrist"),
        "foot_left": c("left_ankle"), "foot_right": c("right_ankle"),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(_at(out, NTU25, name), value, rtol=1e-6, err_msg=name)


def test_mediapipe33_to_kinect_v1_by_hand():
    k = np.arange(1, 34, dtype=np.float32)
    src = np.stack([k, k**2, np.sqrt(k)], axis=1)
    out = map_joints(src, "mediapipe33", "kinect_v1_20")

    def m(name):
        return _at(src, MEDIAPIPE33, name)

    hips, shoulders = (m("left_hip") + m("right_hip")) / 2, (m("left_shoulder") + m("right_shoulder")) / 2
    head = (m("left_ear") + m("right_ear")) / 2
    expected = {
        "hip_center": 0.8 * hips + 0.2 * shoulders,
        "spine": 0.65 * hips + 0.35 * shoulders,
        "shoulder_center": 2 / 3 * shoulders + 1 / 3 * head,
        "head": head,
        "hand_right": (m("right_wrist") + m("right_index") + m("right_pinky")) / 3,
        "foot_left": 0.5 * m("left_ankle") + 0.25 * m("left_heel") + 0.25 * m("left_foot_index"),
        "elbow_left": m("left_elbow"),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(_at(out, KINECT_V1_20, name), value, rtol=1e-5, err_msg=name)
    mapping = layout_mapping("mediapipe33", "kinect_v1_20")
    kinds = dict(zip(KINECT_V1_20.joint_names, mapping.kinds, strict=True))
    assert kinds["elbow_left"] == "direct" and kinds["spine"] == "synthesised"
    assert "absent" not in kinds.values()


def test_zero_fill_and_missing_sources_stay_missing():
    src = _coco_frame()
    src[COCO17.joint_names.index("left_hip")] = 0  # a missing joint
    out = map_joints(src, "coco17", "ntu25", absent="zero")
    for name in ("hand_left", "foot_right", "thumb_left"):  # absent: zero
        assert not _at(out, NTU25, name).any()
    for name in ("hip_left", "spine_base", "spine_mid"):  # built from the missing left hip
        assert not _at(out, NTU25, name).any(), name
    assert _at(out, NTU25, "hip_right").any() and _at(out, NTU25, "spine_shoulder").any()
    # nearest fill copies the final value of its joint: a missing ankle leaves the foot missing
    src[COCO17.joint_names.index("right_ankle")] = 0
    out = map_joints(src, "coco17", "ntu25")
    assert not _at(out, NTU25, "foot_right").any() and _at(out, NTU25, "foot_left").any()


def test_axes_of_a_store_batch():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(2, 3, 5, 17, 2)).astype(np.float32)  # (N, C, T, V, M)
    mapping = layout_mapping("coco17", "ntu25")
    out = mapping.apply(batch, joint_axis=3, channel_axis=1)
    assert out.shape == (2, 3, 5, 25, 2)
    per_frame = mapping.apply(batch[1, :, 4, :, 1].T)  # (V, C) of one frame and person
    np.testing.assert_allclose(out[1, :, 4, :, 1].T, per_frame, rtol=1e-6)


def test_identity_and_round_trip_of_direct_joints():
    x = np.random.default_rng(1).normal(size=(4, 25, 3)).astype(np.float32)
    np.testing.assert_array_equal(map_joints(x, NTU25, "ntu25"), x)
    back = map_joints(map_joints(x, "ntu25", "coco17"), "coco17", "ntu25")
    for name in ("elbow_left", "wrist_right", "knee_left", "ankle_right"):
        np.testing.assert_allclose(_at(back.transpose(1, 0, 2), NTU25, name),
                                   _at(x.transpose(1, 0, 2), NTU25, name))
    face = map_joints(x, "ntu25", "coco17")[:, :5]
    np.testing.assert_allclose(face, np.repeat(x[:, 3:4], 5, axis=1))  # every face point at the head


@pytest.mark.parametrize("pair", list(JOINT_MAPPINGS), ids=[f"{s}-{t}" for s, t in JOINT_MAPPINGS])
def test_every_table_names_real_joints_and_weights_sum_to_one(pair):
    mapping = layout_mapping(*pair)
    assert mapping.weights.shape == (LAYOUTS[pair[1]].num_joints, LAYOUTS[pair[0]].num_joints)
    mapped = np.array([k != "absent" for k in mapping.kinds])
    np.testing.assert_allclose(mapping.weights[mapped].sum(axis=1), 1.0)
    assert all((f is None) == m for f, m in zip(mapping.fill_from, mapped, strict=True))
    rows = mapping.describe()
    assert [r["joint"] for r in rows] == list(LAYOUTS[pair[1]].joint_names)


def test_bad_requests_are_refused():
    with pytest.raises(ConfigError, match="no joint mapping from layout 'ntu25' to 'mediapipe33'"):
        layout_mapping("ntu25", "mediapipe33")
    with pytest.raises(ConfigError, match="unknown fill 'mean'"):
        layout_mapping("coco17", "ntu25", absent="mean")
    with pytest.raises(ConfigError, match="expected 17 joints on axis -2"):
        map_joints(np.zeros((25, 3)), "coco17", "ntu25")
    with pytest.raises(ConfigError, match="unknown source joints"):
        mapping_from_table(COCO17, NTU25, {"head": ("forehead",)})
    with pytest.raises(ConfigError, match="must be positive and sum to 1"):
        mapping_from_table(COCO17, NTU25, {"head": {"nose": 0.5}})


def test_a_custom_table():
    two = layout_from_dict({"name": "two", "joints": ["a", "b"], "parents": [0, 0], "parts": {"all": [0, 1]}})
    three = layout_from_dict({"name": "three", "joints": ["a", "mid", "far"], "parents": [0, 0, 1],
                              "parts": {"all": [0, 1, 2]}})
    mapping = mapping_from_table(two, three, {"a": ("a",), "mid": {"a": 0.25, "b": 0.75}})
    out = mapping.apply(np.array([[0.0, 4.0], [8.0, 4.0]]))
    np.testing.assert_allclose(out, [[0.0, 4.0], [6.0, 4.0], [6.0, 4.0]])  # far <- mid (one bone away)
    assert mapping.kinds == ("direct", "synthesised", "absent")


def test_the_tables_in_the_docs_are_current():
    from pathlib import Path

    from pcm3.layout_mapping import markdown_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "layouts.md").read_text()
    for sources, target in ((["mediapipe33", "coco17"], "ntu25"), (["mediapipe33", "coco17"], "kinect_v1_20"),
                            (["ntu25", "kinect_v1_20"], "coco17")):
        assert markdown_table(sources, target) in text, target
