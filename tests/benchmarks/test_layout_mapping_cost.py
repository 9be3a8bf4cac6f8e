"""The pure parts of benchmarks/layout_mapping_cost.py: the round trip, joint displacement, table."""


import numpy as np

from pcm3.data import Converted, Sample
from pcm3.layouts import KINECT_V1_20

from ..benchmark_scripts import load_benchmark

cost = load_benchmark("layout_mapping_cost")


def _kinect(n: int = 3) -> Converted:
    rng = np.random.default_rng(0)
    samples = [Sample(f"s{i}", rng.normal(size=(3, 5, 20, 1)).astype(np.float32) + 1, i) for i in range(n)]
    return Converted(KINECT_V1_20, ["a", "b", "c"], samples)


def test_round_trip_keeps_direct_joints_and_moves_the_others():
    before = _kinect()
    after = cost.round_trip(before, "nearest")
    names = KINECT_V1_20.joint_names
    assert after.layout == KINECT_V1_20
    moved = cost.joint_displacement(before, after)
    for name in ("elbow_left", "knee_right", "ankle_left", "wrist_right"):
        assert moved[name] == 0.0
    x, y = before.samples[0].x, after.samples[0].x
    np.testing.assert_allclose(y[:, :, names.index("hand_left")], x[:, :, names.index("wrist_left")])
    hips = (x[:, :, names.index("hip_left")] + x[:, :, names.index("hip_right")]) / 2
    shoulders = (x[:, :, names.index("shoulder_left")] + x[:, :, names.index("shoulder_right")]) / 2
    np.testing.assert_allclose(y[:, :, names.index("spine")], 0.65 * hips + 0.35 * shoulders, rtol=1e-5)
    hand, wrist = names.index("hand_left"), names.index("wrist_left")
    expected = np.mean([np.linalg.norm(s.x[:, :, hand] - s.x[:, :, wrist], axis=0) for s in before.samples])
    np.testing.assert_allclose(moved["hand_left"], expected, rtol=1e-5)  # over every frame of every clip
    zero = cost.round_trip(before, "zero")
    assert not zero.samples[0].x[:, :, names.index("foot_right")].any()


def test_table_lists_every_condition_and_the_cost():
    rows = [{"representation": "raw", "task": "knn top-1", "original": 70.0, "nearest": 65.5, "zero": 60.0,
             "original -> nearest": 50.0}]
    kinds = {"spine": "synthesised", "hand_left": "absent", "elbow_left": "direct"}
    displacement = {"nearest": {"spine": 0.02, "hand_left": 0.08, "elbow_left": 0.0},
                    "zero": {"spine": 0.02, "hand_left": 0.0, "elbow_left": 0.0}}
    block = cost.markdown(rows, displacement, kinds, "note").splitlines()
    assert block[0] == cost.START and block[-1] == cost.END
    assert "| raw | knn top-1 | 70.0 | 65.5 | 60.0 | 50.0 | -4.5 |" in block
    assert "| `hand_left` | absent | 8.0 | missing |" in block
    assert "| `spine` | synthesised | 2.0 | 2.0 |" in block
