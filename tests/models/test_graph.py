"""The layout graph and ST-GCN's spatial partition, against hand-computed matrices."""

from __future__ import annotations

import numpy as np
import pytest

from pcm3.errors import ConfigError
from pcm3.layouts import LAYOUTS, layout_from_dict
from pcm3.models.graph import (
    component_centres,
    connected_components,
    hops_to_centre,
    spatial_partition_adjacency,
)

# 0 is the root; bones 1-0, 2-1, 3-0, 4-2; centre 2 for center="layout"
CHAIN5 = layout_from_dict({"name": "chain5", "joints": ["a", "b", "c", "d", "e"],
                           "parents": [0, 0, 1, 0, 2], "parts": {"all": [0, 1, 2, 3, 4]}, "center": "c"})
# two hands, each its own root: {0, 1, 2} rooted at 0 and {3, 4} rooted at 3
TWO_HANDS = layout_from_dict({"name": "two_hands", "joints": ["lw", "lf1", "lf2", "rw", "rf1"],
                              "parents": [0, 0, 1, 3, 3], "parts": {"l": [0, 1, 2], "r": [3, 4]}})


def test_spatial_partition_by_hand():
    # hops to 0: [0, 1, 2, 1, 3]; degrees with the self-loop: [3, 3, 3, 2, 2]
    third, half = 1 / 3, 1 / 2
    expected = np.zeros((3, 5, 5))
    expected[0] = np.diag([third, third, third, half, half])
    # partition 1, [source j, target i]: neighbours at least as far from the centre as i
    expected[1][1, 0] = expected[1][3, 0] = third
    expected[1][2, 1] = third
    expected[1][4, 2] = third
    # partition 2: neighbours closer to the centre than i
    expected[2][0, 1] = third
    expected[2][1, 2] = third
    expected[2][0, 3] = half
    expected[2][2, 4] = half
    np.testing.assert_allclose(spatial_partition_adjacency(CHAIN5), expected, rtol=1e-6)
    assert hops_to_centre(CHAIN5).tolist() == [0, 1, 2, 1, 3]


def test_one_hop_partition_by_hand():
    """As the released ST-GCN code: joints 2 and 4 are both "farther than one hop", so 2 -> 4
    is no longer centripetal."""
    expected = spatial_partition_adjacency(CHAIN5)
    expected[1][2, 4], expected[2][2, 4] = expected[2][2, 4], 0.0
    np.testing.assert_allclose(spatial_partition_adjacency(CHAIN5, partition="spatial_one_hop"), expected)


def test_layout_centre():
    assert hops_to_centre(CHAIN5, "layout").tolist() == [2, 1, 0, 3, 1]
    a = spatial_partition_adjacency(CHAIN5, "layout")
    assert a[2][2, 1] > 0 and a[1][2, 1] == 0  # 2 is now the centre: closer than 1


def test_components_each_centred_on_their_root():
    assert connected_components(TWO_HANDS) == [[0, 1, 2], [3, 4]]
    assert component_centres(TWO_HANDS) == [0, 3]
    assert component_centres(TWO_HANDS, "layout") == [0, 3]  # no layout centre: roots
    assert hops_to_centre(TWO_HANDS).tolist() == [0, 1, 2, 0, 1]
    a = spatial_partition_adjacency(TWO_HANDS)
    assert not a[:, :3, 3:].any() and not a[:, 3:, :3].any()  # nothing crosses components
    assert a[2][3, 4] == pytest.approx(1 / 2) and a[1][4, 3] == pytest.approx(1 / 2)


def test_cycle_without_root_is_refused():
    looped = layout_from_dict({"name": "looped", "joints": ["r", "x", "y"], "parents": [0, 2, 1],
                               "parts": {"all": [0, 1, 2]}})
    with pytest.raises(ConfigError, match=r"layout 'looped': the parents of joints \['x', 'y'\] form a cyc"):
        spatial_partition_adjacency(looped)


def test_bad_choices_are_refused():
    with pytest.raises(ConfigError, match="graph centre must be one of"):
        spatial_partition_adjacency(CHAIN5, center="middle")
    with pytest.raises(ConfigError, match="graph partition must be one of"):
        spatial_partition_adjacency(CHAIN5, partition="uniform")


def _partition_by_definition(layout, centre_of) -> np.ndarray:
    """The definition, written with loops: Floyd-Warshall hops, then one entry at a time."""
    v = layout.num_joints
    hop = np.full((v, v), np.inf)
    np.fill_diagonal(hop, 0)
    for child, parent in layout.bones:
        hop[child, parent] = hop[parent, child] = 1
    for k in range(v):
        hop = np.minimum(hop, hop[:, [k]] + hop[[k], :])
    a = np.zeros((3, v, v))
    for i in range(v):
        degree = int((hop[:, i] <= 1).sum())
        for j in range(v):
            if j == i:
                a[0, j, i] = 1 / degree
            elif hop[j, i] == 1:
                far = hop[j, centre_of[j]] >= hop[i, centre_of[i]]
                a[1 if far else 2, j, i] = 1 / degree
    return a


@pytest.mark.parametrize("layout", [*LAYOUTS.values(), CHAIN5, TWO_HANDS], ids=lambda x: x.name)
def test_every_layout_matches_the_definition(layout):
    centres = component_centres(layout)
    centre_of = {j: c for members, c in zip(connected_components(layout), centres, strict=True)
                 for j in members}
    a = spatial_partition_adjacency(layout)
    assert a.dtype == np.float32 and a.shape == (3, layout.num_joints, layout.num_joints)
    np.testing.assert_allclose(a, _partition_by_definition(layout, centre_of), rtol=1e-6)
    np.testing.assert_allclose(a.sum(axis=(0, 1)), 1.0, rtol=1e-6)  # every target: a mean


def test_ntu25_is_centred_on_the_spine_shoulder():
    ntu = LAYOUTS["ntu25"]
    assert [ntu.joint_names[c] for c in component_centres(ntu)] == ["spine_shoulder"]
    kinect = LAYOUTS["kinect_v1_20"]
    assert [kinect.joint_names[c] for c in component_centres(kinect)] == ["shoulder_center"]
