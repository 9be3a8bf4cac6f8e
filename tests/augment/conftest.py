"""Shared parametrisation of the augmentation tests: layouts and devices."""

import pytest
import torch

from pcm3.layouts import KINECT_V1_20, NTU25, layout_from_dict

HANDS8 = layout_from_dict(
    {
        "name": "hands8",
        "joints": ["l_shoulder", "l_elbow", "l_wrist", "l_hand",
                   "r_shoulder", "r_elbow", "r_wrist", "r_hand"],
        "parents": [0, 0, 1, 2, 0, 4, 5, 6],
        "parts": {"left_arm": [0, 1, 2, 3], "right_arm": [4, 5, 6, 7]},
    }
)

LAYOUTS = [NTU25, KINECT_V1_20, HANDS8]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


@pytest.fixture(params=LAYOUTS, ids=[layout.name for layout in LAYOUTS])
def layout(request):
    return request.param


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)
