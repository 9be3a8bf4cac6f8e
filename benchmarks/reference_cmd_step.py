"""The CMD training step written in the official formulation, for timing against
:class:`pcm3.methods.CMD` (``benchmarks/method_speed.py --reference``).

Written from the published training code (not copied), with the widths, queue, temperatures,
top-k and momentum of our method built from the same :class:`PretrainConfig`, on the paper
backbone (the official BiGRU):

- views: per sample on the host, as the feeder does: for each of the two views a NumPy crop +
  ``F.interpolate`` resize (:func:`official_reference_step.temporal_cropresize`), then joint
  corruption (probability ``augment.corruption_prob_query`` / ``_key``) or a shear, as C x C NumPy
  products;
- modalities in the model's forward, per view: motion by ``zeros_like`` + frame differences,
  bone by a Python loop over the joints (``x[..., v] - x[..., parent(v)]``);
- six encoders (query and key per modality): input BatchNorm, then the bidirectional GRU called
  one frame at a time (outputs grown with ``torch.cat``), the last frame picked sample by sample
  in a Python loop, then the MLP head ``Linear(D, D), ReLU, Linear(D, E)``;
- three per-parameter Python EMA loops before the key passes; three ``(E, K)`` queues, each
  cloned for every product that uses it, written ``queue[:, ptr:ptr+N] = k.T``;
- loss: per modality ``einsum`` logits / temperature and cross-entropy; the relational KL as six
  separate ``topk`` + ``gather`` + ``log_softmax`` / ``softmax`` / ``kl_div`` terms (teacher: the
  key of one modality against its queue; students: the queries of the two others).

:func:`copy_weights_from` loads our CMD's weights and queues into this model (tests).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from official_reference_step import OfficialBIGRU, joint_corruption_numpy, shear_numpy, temporal_cropresize
from torch import Tensor, nn

from pcm3.augment.spatial import default_corrupted_joints
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.models import load_official_encoder

MODALITIES = ("joint", "motion", "bone")
SUFFIX = {"joint": "", "motion": "_motion", "bone": "_bone"}  # the official attribute suffixes


def cmd_views(data: np.ndarray, lengths: np.ndarray, cfg: PretrainConfig, layout: Layout,
              rng: np.random.RandomState) -> tuple[Tensor, Tensor]:
    """``(N, C, T, V, M)`` raw clips -> two joint views ``(N, C, view_frames, V, M)``, sample by sample."""
    a = cfg.augment
    k = default_corrupted_joints(layout.num_joints)
    views: list[list[np.ndarray]] = [[], []]
    for i in range(data.shape[0]):
        n = min(int(lengths[i]), data.shape[2])
        for view, p in zip(views, (a.corruption_prob_query, a.corruption_prob_key), strict=True):
            v = temporal_cropresize(data[i], n, a.crop_scale, a.view_frames, a.crop_min_frames, rng)
            view.append(joint_corruption_numpy(v, k, rng) if rng.rand() < p else shear_numpy(v, rng))
    return tuple(torch.from_numpy(np.stack(v).astype(np.float32)) for v in views)  # type: ignore[return-value]


class OfficialCMDBIGRU(OfficialBIGRU):
    """The official ``BIGRU`` forward: frame-by-frame features, last frame per sample, then ``fc``."""

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.features(x, all_seq=True)
        lengths = torch.zeros(x.shape[0], dtype=torch.long) + x.shape[2]
        hidden = torch.empty((1, len(lengths), outputs.shape[-1]))
        for i, length in enumerate(lengths):
            hidden[0, i, :] = outputs[i, length - 1, :]
        return self.fc(hidden[0])


def loss_kld(inputs: Tensor, targets: Tensor) -> Tensor:
    return F.kl_div(F.log_softmax(inputs, dim=1), F.softmax(targets, dim=1), reduction="batchmean")


class OfficialCMD(nn.Module):
    """The official CMD ``MoCo``: three MoCo branches (``encoder_q``, ``encoder_q_motion``, ...)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        o, gru = cfg.method_options, cfg.model.options
        self.cfg, self.layout = cfg, layout
        features = in_channels * layout.num_joints * num_persons
        hidden = o.projector_hidden or 2 * gru.hidden_size
        for m in MODALITIES:
            query = OfficialCMDBIGRU(features, gru.hidden_size, gru.num_layers, hidden, o.embed_dim)
            setattr(self, f"encoder_q{SUFFIX[m]}", query)
            setattr(self, f"encoder_k{SUFFIX[m]}", copy.deepcopy(query).requires_grad_(False))
            queue = F.normalize(torch.randn(o.embed_dim, o.queue_size), dim=0)
            self.register_buffer(f"queue{SUFFIX[m]}", queue)
            self.register_buffer(f"queue_ptr{SUFFIX[m]}", torch.zeros(1, dtype=torch.long))

    def _momentum_update(self, m: str) -> None:
        momentum = self.cfg.method_options.momentum
        for param_q, param_k in zip(getattr(self, f"encoder_q{SUFFIX[m]}").parameters(),
                                    getattr(self, f"encoder_k{SUFFIX[m]}").parameters(), strict=True):
            param_k.data = param_k.data * momentum + param_q.data * (1.0 - momentum)

    def _dequeue_and_enqueue(self, m: str, keys: Tensor) -> None:
        queue, queue_ptr = getattr(self, f"queue{SUFFIX[m]}"), getattr(self, f"queue_ptr{SUFFIX[m]}")
        n, ptr = keys.shape[0], int(queue_ptr)
        queue[:, ptr:ptr + n] = keys.T
        queue_ptr[0] = (ptr + n) % queue.shape[1]

    def _modalities(self, x: Tensor) -> dict[str, Tensor]:
        motion = torch.zeros_like(x)
        motion[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
        bone = torch.zeros_like(x)
        for v, parent in enumerate(self.layout.parents):
            bone[:, :, :, v] = x[:, :, :, v] - x[:, :, :, parent]
        return {"joint": x, "motion": motion, "bone": bone}

    def forward(self, im_q: Tensor, im_k: Tensor) -> dict[str, Tensor]:
        """Named losses ``contrast_<modality>``, ``cmd`` (unweighted) and ``loss`` of two joint views."""
        o = self.cfg.method_options
        views_q, views_k = self._modalities(im_q), self._modalities(im_k)
        q = {m: F.normalize(getattr(self, f"encoder_q{SUFFIX[m]}")(views_q[m]), dim=1) for m in MODALITIES}
        with torch.no_grad():
            for m in MODALITIES:
                self._momentum_update(m)
            k = {m: F.normalize(getattr(self, f"encoder_k{SUFFIX[m]}")(views_k[m]), dim=1)
                 for m in MODALITIES}
        l_pos = {m: torch.einsum("nc,nc->n", q[m], k[m]).unsqueeze(-1) for m in MODALITIES}
        l_neg = {m: torch.einsum("nc,ck->nk", q[m], getattr(self, f"queue{SUFFIX[m]}").clone().detach())
                 for m in MODALITIES}
        lk_neg = {m: torch.einsum("nc,ck->nk", k[m], getattr(self, f"queue{SUFFIX[m]}").clone().detach())
                  for m in MODALITIES}
        topk = o.topk or o.queue_size
        loss_cmd = 0
        for teacher in MODALITIES:
            teacher_topk, index = torch.topk(lk_neg[teacher], topk, dim=-1)
            for student in MODALITIES:
                if student != teacher:
                    student_topk = torch.gather(l_neg[student], -1, index)
                    loss_cmd = loss_cmd + loss_kld(student_topk / o.student_temperature,
                                                   teacher_topk / o.teacher_temperature)
        losses: dict[str, Tensor] = {}
        for m in MODALITIES:
            logits = torch.cat([l_pos[m], l_neg[m]], dim=1) / o.temperature
            losses[f"contrast_{m}"] = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
        losses["cmd"] = loss_cmd
        losses["loss"] = sum(losses[f"contrast_{m}"] for m in MODALITIES) + o.cmd_weight * loss_cmd
        with torch.no_grad():
            for m in MODALITIES:
                self._dequeue_and_enqueue(m, k[m])
        return losses


def reference_train_step(model: OfficialCMD, optimizer: torch.optim.Optimizer, data: np.ndarray,
                         lengths: np.ndarray, rng: np.random.RandomState) -> dict[str, float]:
    """One full official-style step: per-sample views, forward, backward, optimiser update."""
    im_q, im_k = cmd_views(data, lengths, model.cfg, model.layout, rng)
    losses = model(im_q, im_k)
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}


@torch.no_grad()
def copy_weights_from(reference: OfficialCMD, ours: nn.Module) -> None:
    """Our :class:`pcm3.methods.CMD`'s encoders, projectors and queues into ``reference`` (the
    official names: GRU ``*_l{k}`` / ``*_l{k}_reverse`` are our causal layers A / B)."""
    for m in MODALITIES:
        for kind, encoder, projector in (("q", ours.encoder_of(m), ours.projectors[m]),
                                         ("k", ours.key_encoders[m], ours.key_projectors[m])):
            theirs = getattr(reference, f"encoder_{kind}{SUFFIX[m]}")
            state = theirs.state_dict()
            report = load_official_encoder(state, copy.deepcopy(encoder))  # our name -> their name
            mine = encoder.state_dict()
            theirs.load_state_dict({**state, **{name: mine[ours_name] for ours_name, name in
                                                report["loaded"].items()}})
            theirs.fc[0].load_state_dict(projector.fc1.state_dict())
            theirs.fc[2].load_state_dict(projector.fc2.state_dict())
        getattr(reference, f"queue{SUFFIX[m]}").copy_(ours.stream_queues[m].keys.T)
