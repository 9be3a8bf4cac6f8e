import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.layouts import KINECT_V1_20, NTU25, layout_from_dict
from pcm3.modalities import to_bone, to_motion, to_stream

# reference notes §1.4: bone pairs (v1, v2), 1-based, b[v1] = x[v1] - x[v2]
NTU_BONE_PAIRS = [
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12),
]

HANDS8 = layout_from_dict(
    {
        "name": "hands8",
        "joints": ["l_shoulder", "l_elbow", "l_wrist", "l_hand",
                   "r_shoulder", "r_elbow", "r_wrist", "r_hand"],
        "parents": [0, 0, 1, 2, 0, 4, 5, 6],
        "parts": {"left_arm": [0, 1, 2, 3], "right_arm": [4, 5, 6, 7]},
    }
)
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


def sample(v, device, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 5, v, 2, generator=g, dtype=dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_ntu25_bone_matches_official_pairs(device):
    x = sample(25, device)
    ref = torch.zeros_like(x)
    for v1, v2 in NTU_BONE_PAIRS:  # the official loop
        ref[:, :, :, v1 - 1] = x[:, :, :, v1 - 1] - x[:, :, :, v2 - 1]
    torch.testing.assert_close(to_bone(x, NTU25), ref, rtol=0, atol=0)
    assert (to_bone(x, NTU25)[:, :, :, 20] == 0).all()


@pytest.mark.parametrize("layout", [NTU25, KINECT_V1_20, HANDS8], ids=lambda lay: lay.name)
def test_bone_follows_layout_parents(layout):
    x = sample(layout.num_joints, "cpu", torch.float64)
    bone = to_bone(x, layout)
    for v, parent in enumerate(layout.parents):
        torch.testing.assert_close(bone[:, :, :, v], x[:, :, :, v] - x[:, :, :, parent])
    assert torch.equal(to_stream(x, "bone", layout), bone)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_motion_by_hand(device, dtype):
    x = torch.tensor([0.0, 1.0, 3.0, 6.0], dtype=dtype, device=device).view(1, 1, 4, 1, 1)
    motion = to_motion(x)
    assert motion.dtype == dtype
    assert motion.flatten().tolist() == [1.0, 2.0, 3.0, 0.0]
    y = sample(8, device)
    assert torch.equal(to_stream(y, "motion", HANDS8)[:, :, 1], y[:, :, 2] - y[:, :, 1])
    assert torch.equal(to_stream(y, "joint", HANDS8), y)


def test_bad_input_raises():
    x = sample(8, "cpu")
    with pytest.raises(ConfigError, match="unknown stream 'velocity'"):
        to_stream(x, "velocity", HANDS8)
    with pytest.raises(ConfigError, match="V=8 joints but layout 'ntu25' has 25"):
        to_bone(x, NTU25)
    with pytest.raises(ConfigError, match=r"\(N, C, T, V, M\)"):
        to_motion(x[0])
