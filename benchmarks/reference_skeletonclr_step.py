"""The SkeletonCLR training step written in the official formulation, for timing against
:class:`pcm3.methods.SkeletonCLR` (``benchmarks/method_speed.py --reference``).

Written from the published training code (not copied), with the widths, queue, temperature and
momentum of our method built from the same :class:`PretrainConfig`, on the paper backbone
(ST-GCN, :class:`reference_stgcn.ReferenceSTGCN`):

- views: per sample on the host, as the feeder does: the valid frames resized to
  ``augment.view_frames`` with ``F.interpolate`` (the official data are resized to 50 frames
  offline; ours resizes in the step, so both do it here), then for each of the two views a NumPy
  mirror-padded temporal crop (``T // padding_ratio`` frames each side, random start) and a shear
  (six ``U(-r, r)`` draws, ``x @ R.T`` as a NumPy product); the joint stream;
- model: ``encoder_q`` = ST-GCN with its ``fc`` replaced by ``Linear(D, D), ReLU, Linear(D, E)``
  (the ``mlp`` hack), ``encoder_k`` a copy; the EMA is a per-parameter Python loop
  ``p_k.data = p_k.data * m + p_q.data * (1 - m)`` run before the key pass;
- loss: ``einsum`` positive and negative logits against the ``(E, K)`` queue (cloned), divided
  by the temperature, cross-entropy with target 0; the keys are written as ``queue[:, ptr:ptr+N] = k.T``.

:func:`copy_weights_from` loads our SkeletonCLR's weights and queue into this model (tests).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from reference_stgcn import ReferenceSTGCN
from reference_stgcn import copy_weights_from as copy_stgcn_weights
from torch import Tensor, nn

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.models.graph import component_centres


# ---------------------------------------------------------------- per-sample views (feeder)
def resize_valid(x: np.ndarray, n: int, out_len: int) -> np.ndarray:
    """One sample ``(C, T, V, M)``: its first ``n`` frames resized to ``out_len`` (bilinear)."""
    c, _, v, m = x.shape
    clip = torch.tensor(x[:, :n], dtype=torch.float).permute(0, 2, 3, 1).reshape(c * v * m, n)
    resized = F.interpolate(clip[None, :, :, None], size=(out_len, 1), mode="bilinear", align_corners=False)
    return resized[0, :, :, 0].view(c, v, m, out_len).permute(0, 3, 1, 2).contiguous().numpy()


def temporal_crop_numpy(x: np.ndarray, padding_ratio: int, rng: np.random.RandomState) -> np.ndarray:
    """Mirror-pad ``T // padding_ratio`` frames each side of ``(C, T, V, M)``; keep T from a random start."""
    t = x.shape[1]
    pad = t // padding_ratio
    start = rng.randint(0, pad * 2 + 1)
    padded = np.concatenate((x[:, :pad][:, ::-1], x, x[:, t - pad:][:, ::-1]), axis=1)
    return padded[:, start:start + t]


def shear_numpy(x: np.ndarray, r: float, rng: np.random.RandomState) -> np.ndarray:
    """``x_row <- x_row @ R.T`` with ``R`` unit-diagonal, off-diagonals ``U(-r, r)``."""
    s1 = [rng.uniform(-r, r) for _ in range(3)]
    s2 = [rng.uniform(-r, r) for _ in range(3)]
    shear = np.array([[1, s1[0], s2[0]], [s1[1], 1, s2[1]], [s1[2], s2[2], 1]])
    return np.dot(x.transpose(1, 2, 3, 0), shear.T).transpose(3, 0, 1, 2)


def skeletonclr_views(data: np.ndarray, lengths: np.ndarray, cfg: PretrainConfig,
                      rng: np.random.RandomState) -> tuple[Tensor, Tensor]:
    """``(N, C, T, V, M)`` raw clips -> query and key views ``(N, C, view_frames, V, M)``, per sample."""
    o = cfg.method_options
    views: list[list[np.ndarray]] = [[], []]
    for i in range(data.shape[0]):
        clip = resize_valid(data[i], min(int(lengths[i]), data.shape[2]), cfg.augment.view_frames)
        for view in views:
            view.append(shear_numpy(temporal_crop_numpy(clip, o.padding_ratio, rng), o.shear_magnitude, rng))
    return tuple(torch.from_numpy(np.stack(v).astype(np.float32)) for v in views)  # type: ignore[return-value]


# ---------------------------------------------------------------- model
class OfficialSTGCNEncoder(nn.Module):
    """ST-GCN features ``(N, D)`` followed by the MLP head ``fc``: ``(N, C, T, V, M) -> (N, E)``."""

    def __init__(self, layout: Layout, in_channels: int, cfg: PretrainConfig) -> None:
        super().__init__()
        s, o = cfg.model.options, cfg.method_options
        self.backbone = ReferenceSTGCN(layout, in_channels, component_centres(layout)[0], s.base_channels,
                                       s.out_channels, s.temporal_kernel, s.dropout)
        hidden = o.projector_hidden or s.out_channels
        self.fc = nn.Sequential(nn.Linear(s.out_channels, hidden), nn.ReLU(), nn.Linear(hidden, o.embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.backbone(x))


class OfficialSkeletonCLR(nn.Module):
    """MoCo v2 as the official ``SkeletonCLR`` module: query / key encoders and a ``(E, K)`` queue."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        o = cfg.method_options
        self.cfg, self.layout = cfg, layout
        self.m, self.t = o.momentum, o.temperature
        self.encoder_q = OfficialSTGCNEncoder(layout, in_channels, cfg)
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(o.embed_dim, o.queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(), strict=True):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Tensor) -> None:
        n, ptr = keys.shape[0], int(self.queue_ptr)
        self.queue[:, ptr:ptr + n] = keys.T
        self.queue_ptr[0] = (ptr + n) % self.queue.shape[1]

    def forward(self, im_q: Tensor, im_k: Tensor) -> dict[str, Tensor]:
        """Named losses ``contrast`` and ``loss`` (equal) of two views ``(N, C, T, V, M)``."""
        q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            k = F.normalize(self.encoder_k(im_k), dim=1)
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / self.t
        loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
        self._dequeue_and_enqueue(k)
        return {"contrast": loss, "loss": loss}


def reference_train_step(model: OfficialSkeletonCLR, optimizer: torch.optim.Optimizer, data: np.ndarray,
                         lengths: np.ndarray, rng: np.random.RandomState) -> dict[str, float]:
    """One full official-style step: per-sample views, forward, backward, optimiser update."""
    im_q, im_k = skeletonclr_views(data, lengths, model.cfg, rng)
    losses = model(im_q, im_k)
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}


@torch.no_grad()
def copy_weights_from(reference: OfficialSkeletonCLR, ours: nn.Module) -> None:
    """Our :class:`pcm3.methods.SkeletonCLR`'s encoders, projectors, graph and queue into ``reference``."""
    for theirs, encoder, projector in ((reference.encoder_q, ours.encoder, ours.projector),
                                       (reference.encoder_k, ours.key_encoder, ours.key_projector)):
        theirs.backbone.A.copy_(encoder.adjacency)
        copy_stgcn_weights(theirs.backbone, encoder)
        theirs.fc[0].load_state_dict(projector.fc1.state_dict())
        theirs.fc[2].load_state_dict(projector.fc2.state_dict())
    reference.queue.copy_(ours.queue.keys.T)
    reference.queue_ptr[0] = int(ours.queue.ptr)
