from pathlib import Path

import numpy as np
import pytest

from pcm3.errors import ConfigError
from pcm3.layouts import (
    COCO17,
    KINECT_V1_20,
    LAYOUTS,
    MEDIAPIPE33,
    NTU25,
    get_layout,
    layout_from_dict,
    load_layout_yaml,
)

# reference notes §1.4, 1-based (child, parent); (21, 21) is the root
NTU_BONES_1BASED = [
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12),
]
# reference notes §1.5, 1-based, in the official order
NTU_PARTS_1BASED = [
    [4, 3, 21, 2, 1], [9, 10, 11, 12, 24, 25], [5, 6, 7, 8, 22, 23], [17, 18, 19, 20],
    [13, 14, 15, 16],
]

EIGHT_JOINTS = {
    "name": "hands8",
    "joints": ["l_shoulder", "l_elbow", "l_wrist", "l_hand",
               "r_shoulder", "r_elbow", "r_wrist", "r_hand"],
    "parents": ["l_shoulder", "l_shoulder", "l_elbow", "l_wrist", "l_shoulder", 4, 5, 6],
    "parts": {"left_arm": ["l_shoulder", "l_elbow", "l_wrist", "l_hand"], "right_arm": [4, 5, 6, 7]},
    "across": ["l_shoulder", "r_shoulder"],
}


def test_ntu25_bones_match_reference():
    expected = sorted((c - 1, p - 1) for c, p in NTU_BONES_1BASED if c != p)
    assert sorted(NTU25.bones) == expected
    assert NTU25.parents[20] == 20


def test_ntu25_parts_match_reference():
    assert [sorted(j) for j in NTU25.part_joints] == [sorted(v - 1 for v in p) for p in NTU_PARTS_1BASED]
    member = NTU25.part_membership()
    assert member.shape == (5, 25)
    assert (member.sum(0) == 1).all()  # every joint in exactly one part


def test_ntu25_alignment_joints_match_reference():
    # §1.3: centre = joint 1 (0-based), up = 0 -> 1, across = 4 -> 8
    assert NTU25.center == 1 and NTU25.up == (0, 1) and NTU25.across == (4, 8)


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_builtin_layouts_are_trees(layout):
    roots = [j for j, p in enumerate(layout.parents) if j == p]
    assert len(roots) == 1
    for joint in range(layout.num_joints):  # every joint reaches the root without a cycle
        seen = set()
        while layout.parents[joint] != joint:
            assert joint not in seen
            seen.add(joint)
            joint = layout.parents[joint]
    assert len(layout.bones) == layout.num_joints - 1
    assert layout.part_membership().any(axis=0).all()  # parts cover every joint


def test_builtin_sizes():
    assert (NTU25.num_joints, KINECT_V1_20.num_joints, COCO17.num_joints,
            MEDIAPIPE33.num_joints) == (25, 20, 17, 33)


def test_custom_layout_from_yaml(tmp_path: Path):
    import yaml

    path = tmp_path / "hands8.yaml"
    path.write_text(yaml.safe_dump(EIGHT_JOINTS))
    layout = load_layout_yaml(path)
    assert layout.num_joints == 8 and layout.part_names == ("left_arm", "right_arm")
    assert layout.parents == (0, 0, 1, 2, 0, 4, 5, 6)
    assert layout.center is None and layout.up is None and layout.across == (0, 4)
    assert get_layout(str(path)) == layout
    assert layout_from_dict(layout.to_dict()) == layout  # round trip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parents": ["nope"] * 8}, "unknown joint 'nope'"),
        ({"parts": {}}, "at least one body part"),
        ({"colour": "red"}, "unknown layout keys"),
        ({"up": ["l_hand"]}, "pair of joints"),
        ({"parents": [0] * 7}, "7 parents for 8 joints"),
        ({"parts": {"arm": [0, 8]}}, "index 8 outside"),
    ],
)
def test_custom_layout_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        layout_from_dict({**EIGHT_JOINTS, **change})


def test_missing_key_and_unknown_name():
    spec = dict(EIGHT_JOINTS)
    del spec["parts"]
    with pytest.raises(ConfigError, match="missing the key 'parts'"):
        layout_from_dict(spec)
    with pytest.raises(ConfigError, match="unknown layout 'ntu26'"):
        get_layout("ntu26")


def test_part_membership_matches_parts():
    layout = layout_from_dict(EIGHT_JOINTS)
    np.testing.assert_array_equal(
        layout.part_membership(), [[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]]
    )
