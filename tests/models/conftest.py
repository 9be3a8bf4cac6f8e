"""Shared test material for the models: layouts and an official-style frame-by-frame BIGRU.

``OfficialBIGRU`` mirrors the module and parameter names of the official ``moco/GRU.py``
(``encoder.gru``, ``input_norm``, ``fc``) and runs its GRU exactly as the official code does:
one frame at a time, carrying the returned hidden state.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcm3.layouts import KINECT_V1_20, NTU25, Layout, layout_from_dict

TINY8 = layout_from_dict({
    "name": "tiny8",
    "joints": ["hip", "chest", "l_arm", "l_hand", "r_arm", "r_hand", "l_leg", "r_leg"],
    "parents": ["hip", "hip", "chest", "l_arm", "chest", "r_arm", "hip", "hip"],
    "parts": {"upper": ["chest", "l_arm", "l_hand", "r_arm", "r_hand"], "lower": [0, 6, 7]},
})


def chain_layout(num_joints: int) -> Layout:
    """A ``num_joints``-joint chain (joint j's parent is j - 1), one body part: for models that
    only need V."""
    return layout_from_dict({"name": f"chain{num_joints}", "joints": [f"j{i}" for i in range(num_joints)],
                             "parents": [max(i - 1, 0) for i in range(num_joints)],
                             "parts": {"all": list(range(num_joints))}})


@pytest.fixture(params=[(NTU25, 2), (KINECT_V1_20, 1), (TINY8, 2)],
                ids=["ntu25-M2", "kinect20-M1", "tiny8-M2"])
def joints_persons(request) -> tuple[int, int]:
    """(V, M) of the layouts the models are checked on."""
    layout, persons = request.param
    return layout.num_joints, persons


class _OfficialEncoderRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers,
                          bidirectional=True, batch_first=True)


class OfficialBIGRU(nn.Module):
    """Official-style BIGRU with randomised BatchNorm affine parameters and statistics."""

    def __init__(self, num_features: int, hidden_size: int, num_layers: int,
                 num_class: int = 5) -> None:
        super().__init__()
        self.encoder = _OfficialEncoderRNN(num_features, hidden_size, num_layers)
        self.input_norm = nn.BatchNorm1d(num_features)
        self.fc = nn.Sequential(nn.Linear(2 * hidden_size, 2 * hidden_size), nn.ReLU(),
                                nn.Linear(2 * hidden_size, num_class))
        with torch.no_grad():
            bn = self.input_norm
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(7)

    def frames(self, x_flat: torch.Tensor, prompt_after_bn: torch.Tensor | None = None):
        """``(N, T, F) -> (N, T, 2H)``: BN, then the GRU fed one frame at a time (official loop)."""
        u = self.input_norm(x_flat.permute(0, 2, 1)).permute(0, 2, 1)
        if prompt_after_bn is not None:
            u = u + prompt_after_bn
        outputs, hidden = [], None
        for t in range(u.shape[1]):
            out, hidden = self.encoder.gru(u[:, t:t + 1], hidden)
            outputs.append(out)
        return torch.cat(outputs, dim=1)


class OfficialMoCo(nn.Module):
    """The parts of the official pre-training ``MoCo`` that show up in its state dict."""

    def __init__(self, num_features: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.encoder_q = OfficialBIGRU(num_features, hidden_size, num_layers)
        self.encoder_k = OfficialBIGRU(num_features, hidden_size, num_layers)
        self.linear = nn.Sequential(nn.Linear(2 * hidden_size, 6), nn.BatchNorm1d(6), nn.ReLU(),
                                    nn.Linear(6, 6))
        self.recons_decoder = nn.Module()
        self.recons_decoder.decoder = nn.GRU(6, 6, num_layers=2, batch_first=True)
        self.recons_decoder.reconstruction = nn.Linear(6, num_features)
        self.cl_prompt = nn.Parameter(torch.randn(1, 4))
        self.base_prompt = nn.Parameter(torch.randn(1, 1, num_features))
        self.register_buffer("queue", torch.randn(5, 16))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


@pytest.fixture
def official_bigru() -> type[OfficialBIGRU]:
    return OfficialBIGRU


@pytest.fixture
def official_moco() -> type[OfficialMoCo]:
    return OfficialMoCo


def official_flatten(x: torch.Tensor) -> torch.Tensor:
    """The official flattening, written out: ``x.permute(0,2,3,1,4).reshape(N,T,-1)``."""
    n, _, t = x.shape[:3]
    return x.permute(0, 2, 3, 1, 4).reshape(n, t, -1)


@pytest.fixture
def flatten_official():
    return official_flatten
