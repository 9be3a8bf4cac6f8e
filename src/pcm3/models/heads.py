"""Heads on top of an encoder: the contrastive projector, the masked-prediction neck and the
GRU decoder that reconstructs skeletons (official ``MoCo.encoder_q.fc``, ``MoCo.linear``, ``DEC``).

Every width is configurable; defaults are the official ones for a 2048-d encoder and
``V*C*M = 150`` (NTU, 2 persons).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcm3.models.flatten import unflatten_frames


class Projector(nn.Module):
    """``Linear(in, hidden) -> ReLU -> Linear(hidden, out)``, no BatchNorm.

    ``(..., in) -> (..., out)``.
    """

    def __init__(
        self, in_features: int = 2048, hidden_features: int = 2048, out_features: int = 128
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MaskedPredictionNeck(nn.Module):
    """Per-frame ``Linear(in, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, out)``.

    ``(..., in) -> (..., out)``; all leading dimensions are flattened, so on ``(N, T, in)``
    the BatchNorm statistics are taken over all ``N*T`` frames (as official).
    """

    def __init__(
        self, in_features: int = 2048, hidden_features: int = 512, out_features: int = 512
    ) -> None:
        super().__init__()
        self.out_features = out_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.norm = nn.BatchNorm1d(hidden_features)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        h = self.act(self.norm(self.fc1(x.reshape(-1, x.shape[-1]))))
        return self.fc2(h).reshape(*lead, self.out_features)


class GRUDecoder(nn.Module):
    """Unidirectional GRU over the sequence, then a per-frame ``Linear`` to ``V*C*M`` coordinates.

    ``(N, T, in_features) -> (N, C, T, V, M)``, unflattened in the encoder's order
    (:func:`pcm3.models.flatten.unflatten_frames`). Causal: frame t uses frames <= t only.
    """

    def __init__(
        self,
        num_joints: int,
        num_persons: int,
        in_channels: int = 3,
        in_features: int = 512,
        hidden_size: int = 512,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        self.num_joints, self.num_persons, self.in_channels = num_joints, num_persons, in_channels
        self.gru = nn.GRU(in_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.output = nn.Linear(hidden_size, num_joints * in_channels * num_persons)

    def forward(self, features: Tensor) -> Tensor:
        y = self.output(self.gru(features)[0])
        return unflatten_frames(y, self.in_channels, self.num_joints, self.num_persons)


def upsample_steps(steps: Tensor, time_stride: int, frames: int) -> Tensor:
    """``(N, ceil(frames / time_stride), H) -> (N, frames, H)``: each step repeated for the
    ``time_stride`` frames it covers (step j covers frames ``j*s .. j*s + s - 1``), so a decoder
    reconstructs every frame from a strided backbone's steps. Identity for ``time_stride = 1``."""
    if time_stride == 1 and steps.shape[1] == frames:
        return steps
    return torch.repeat_interleave(steps, time_stride, dim=1)[:, :frames]
