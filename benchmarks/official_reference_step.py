"""The PCM3 training step written in the official formulation (reference notes §2–§4, §8), for timing.

Written from the notes (not copied), with the same widths, batch and loss terms as
:class:`pcm3.methods.PCM3` built from the same :class:`PretrainConfig`, so a benchmark compares
the formulations at equal configuration:

- views: per sample on the host (the feeder, §2.1): NumPy crop + ``F.interpolate`` resize of one
  ``(1, C*V*M, L, 1)`` tensor, then shear or joint corruption as C x C NumPy products;
- mask (``Jointmask3``, §4.4) and mixing (``ske_swap``, §2.3): one random draw for the whole batch;
- encoder (``BIGRU``, §3.1): BatchNorm, then a bidirectional multi-layer ``nn.GRU`` fed one frame
  at a time with the returned hidden state, the outputs grown with ``torch.cat`` — called once per
  view: q, masked (all frames), reconstructed, mixed, key (5 passes);
- the decoder runs twice (with and without stop-gradient, §4 step 4); the EMA update is a
  per-parameter Python loop; the queue is stored ``(D, K)``; input prompts before the BatchNorm.

Module and parameter names follow the official ``MoCo`` (``encoder_q.input_norm``,
``encoder_q.encoder.gru``, ``encoder_q.fc``), so :func:`pcm3.models.official.load_official_encoder`
loads this module's state dict into a :class:`pcm3.models.BiGRUEncoder`.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcm3.augment.spatial import default_corrupted_joints
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout


# ---------------------------------------------------------------- per-sample views (feeder, §2.1)
def temporal_cropresize(x: np.ndarray, n: int, scale: tuple[float, float], out_len: int,
                        min_len: int, rng: np.random.RandomState) -> np.ndarray:
    """One sample ``(C, T, V, M)`` -> ``(C, out_len, V, M)``: random crop, bilinear resize."""
    c, _, v, m = x.shape
    s = rng.rand() * (scale[1] - scale[0]) + scale[0]
    length = min(max(int(np.floor(n * s)), min_len), n)
    start = rng.randint(0, n - length + 1)
    crop = torch.tensor(x[:, start:start + length], dtype=torch.float)
    crop = crop.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, :, :, None]
    resized = F.interpolate(crop, size=(out_len, 1), mode="bilinear", align_corners=False)
    return resized[0, :, :, 0].view(c, v, m, out_len).permute(0, 3, 1, 2).contiguous().numpy()


def shear_numpy(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """``x_row <- x_row @ S.T`` with ``S`` unit-diagonal, off-diagonals ``U(-1, 1)``."""
    c = x.shape[0]
    s = rng.uniform(-1, 1, (c, c))
    np.fill_diagonal(s, 1.0)
    return np.dot(x.transpose(1, 2, 3, 0), s.T).transpose(3, 0, 1, 2)


def joint_corruption_numpy(x: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Zero ``k`` random joints (p = 0.5) or multiply their rows by a random ``U(-1, 1)`` matrix."""
    x = x.copy()
    joints = rng.choice(x.shape[2], k, replace=False)
    if rng.rand() < 0.5:
        x[:, :, joints] = 0
    else:
        r = rng.uniform(-1, 1, (x.shape[0], x.shape[0]))
        x[:, :, joints] = np.dot(x[:, :, joints].transpose(1, 2, 3, 0), r).transpose(3, 0, 1, 2)
    return x


def official_views(data: np.ndarray, lengths: np.ndarray, cfg: PretrainConfig, layout: Layout,
                   rng: np.random.RandomState) -> tuple[Tensor, Tensor, Tensor]:
    """``(N, C, T, V, M)`` raw clips -> three ``(N, C, view_frames, V, M)`` views, one sample at a time."""
    a = cfg.augment
    k = default_corrupted_joints(layout.num_joints)
    probs = (a.corruption_prob_query, a.corruption_prob_key, -1.0)  # view 3: always shear
    views: list[list[np.ndarray]] = [[], [], []]
    for i in range(data.shape[0]):
        n = min(int(lengths[i]), data.shape[2])
        for view, p in zip(views, probs, strict=True):
            v = temporal_cropresize(data[i], n, a.crop_scale, a.view_frames, a.crop_min_frames, rng)
            view.append(joint_corruption_numpy(v, k, rng) if rng.rand() < p else shear_numpy(v, rng))
    return tuple(torch.from_numpy(np.stack(v).astype(np.float32)) for v in views)  # type: ignore[return-value]


# ---------------------------------------------------------------- batch-shared mask and mix (§4.4, §2.3)
def joint_mask3(n: int, t: int, layout: Layout, num_persons: int, channels: int, ratio: float,
                segment: int) -> Tensor:
    """One body-part segment mask for the whole batch, ``(N, C, T, V, M)``, 1 = visible (person 0 only)."""
    mask = np.ones((n, t, num_persons, layout.num_joints, channels), dtype=np.float32)
    parts = layout.part_joints
    for first in range(0, t, segment):
        chosen = random.sample(range(len(parts)), int(len(parts) * ratio))
        joints = sorted({j for p in chosen for j in parts[p]})
        mask[:, first:first + segment, 0, joints, :] = 0
    return torch.from_numpy(mask).permute(0, 4, 1, 3, 2)


def _bounds(low: int, high: int, top: int) -> tuple[int, int]:
    return (low, high) if high <= top else (max(1, min(low, top - 1)), top)


def ske_swap(x: Tensor, layout: Layout, unit: int = 4) -> tuple[Tensor, Tensor, float]:
    """Batch-shared mixing of ``x`` ``(N, C, T, V, M)``: ``(mixed, partner (N,), lam)``."""
    n, _, t, _, _ = x.shape
    partner = (torch.arange(n) + random.randint(1, max(n - 1, 1))) % n
    other = x[partner]
    parts = layout.part_joints
    cs = random.randint(*_bounds(2, 3, len(parts)))
    joints = sorted({j for p in random.sample(range(len(parts)), cs) for j in parts[p]})
    ct = random.randint(*_bounds(7, 11, t // unit))
    first = unit * random.randint(0, t // unit - ct)
    rt = unit * ct
    p = random.random()
    if p <= 0.25:  # mixup
        lam = random.random()
        return (1 - lam) * x + lam * other, partner, lam
    mixed = x.clone()
    lam = rt * len(joints) / (t * layout.num_joints)
    if p > 0.5:  # cutmix
        mixed[:, :, first:first + rt, joints] = other[:, :, first:first + rt, joints]
    else:  # speed-changed paste
        src = other[:, :, :min(2 * rt, t)]
        c, v, m = src.shape[1], src.shape[3], src.shape[4]
        src = F.interpolate(src.reshape(n, c, src.shape[2], v * m), size=(rt, v * m))
        mixed[:, :, first:first + rt, joints] = src.reshape(n, c, rt, v, m)[:, :, :, joints]
    return mixed, partner, lam


# ---------------------------------------------------------------- model (§3)
class OfficialBIGRU(nn.Module):
    """Input BatchNorm + bidirectional GRU called one frame at a time + projector ``fc``."""

    def __init__(self, num_features: int, hidden: int, layers: int, projector_hidden: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(num_features)
        self.encoder = nn.Module()
        self.encoder.gru = nn.GRU(num_features, hidden, num_layers=layers, bidirectional=True,
                                  batch_first=True)
        for param in self.encoder.gru.parameters():
            if param.dim() == 2:
                nn.init.xavier_uniform_(param)
        self.fc = nn.Sequential(nn.Linear(2 * hidden, projector_hidden), nn.ReLU(),
                                nn.Linear(projector_hidden, embed_dim))

    def features(self, x: Tensor, prompt: Tensor | None = None, all_seq: bool = False) -> Tensor:
        """``(N, C, T, V, M)`` -> last-frame ``(N, 2H)`` or per-frame ``(N, T, 2H)`` features."""
        n, _, t, _, _ = x.shape
        u = x.permute(0, 2, 3, 1, 4).reshape(n, t, -1)
        if prompt is not None:
            u = u + prompt  # before a train-mode BatchNorm, as officially
        u = self.input_norm(u.permute(0, 2, 1)).permute(0, 2, 1)
        outputs, hidden = None, None
        for frame in range(t):
            out, hidden = self.encoder.gru(u[:, frame:frame + 1], hidden)
            outputs = out if outputs is None else torch.cat((outputs, out), dim=1)
        return outputs if all_seq else outputs[:, -1]


class OfficialDecoder(nn.Module):
    """``DEC``: a unidirectional GRU, then a per-frame ``Linear`` to ``V*C*M`` coordinates."""

    def __init__(self, in_features: int, hidden: int, layers: int, num_features: int) -> None:
        super().__init__()
        self.decoder = nn.GRU(in_features, hidden, num_layers=layers, batch_first=True)
        self.reconstruction = nn.Linear(hidden, num_features)

    def forward(self, f: Tensor, shape: tuple[int, int, int]) -> Tensor:
        """``(N, T, in)`` -> ``(N, C, T, V, M)`` for ``shape = (C, V, M)``."""
        c, v, m = shape
        y = self.reconstruction(self.decoder(f)[0])
        return y.reshape(f.shape[0], f.shape[1], v, c, m).permute(0, 3, 1, 2, 4)


class OfficialPCM3(nn.Module):
    """The official ``MoCo`` joint-stream model with prompts (``forward_pcm3_wprompt``)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        m = cfg.model
        self.cfg, self.layout = cfg, layout
        self.shape = (in_channels, layout.num_joints, num_persons)
        f = in_channels * layout.num_joints * num_persons
        gru = m.options  # BiGRUOptions
        self.encoder_q = OfficialBIGRU(f, gru.hidden_size, gru.num_layers, m.projector_hidden, m.embed_dim)
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)
        self.linear = nn.Sequential(nn.Linear(2 * gru.hidden_size, m.neck_hidden),
                                    nn.BatchNorm1d(m.neck_hidden), nn.ReLU(),
                                    nn.Linear(m.neck_hidden, m.neck_hidden))
        self.recons_decoder = OfficialDecoder(m.neck_hidden, m.decoder_hidden_size, m.decoder_layers, f)
        self.cl_prompt = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 2 * m.prompt_length)))
        self.mp_prompt = nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 2 * m.prompt_length)))
        for name in ("base", "mask", "recons", "mix"):
            setattr(self, f"{name}_prompt", nn.Parameter(nn.init.xavier_uniform_(torch.empty(1, 1, f))))
        queue_size = cfg.method_options.moco.queue_size
        self.register_buffer("queue", F.normalize(torch.randn(m.embed_dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    def _task_prompt(self, f: Tensor, prompt: Tensor) -> Tensor:
        """Add both halves of ``prompt`` at one random offset shared by the batch (and frames)."""
        half, length = f.shape[-1] // 2, prompt.shape[1] // 2
        s = random.randint(0, half - length - 1)
        pad = (s, half - length - s)
        return f + torch.cat((F.pad(prompt[0, :length], pad), F.pad(prompt[0, length:], pad)))

    def _embed(self, encoder: OfficialBIGRU, feature: Tensor) -> Tensor:
        return F.normalize(encoder.fc(self._task_prompt(feature, self.cl_prompt)), dim=1)

    def _neck_decoder(self, f: Tensor) -> Tensor:
        n, t, d = f.shape
        return self.recons_decoder(self.linear(f.reshape(n * t, d)).reshape(n, t, -1), self.shape)

    def forward(self, im_q: Tensor, im_k: Tensor, im_3: Tensor) -> dict[str, Tensor]:
        """Named losses (``"loss"`` = the weighted total) for the three feeder views."""
        w, a = self.cfg.method_options.loss, self.cfg.augment
        n, t = im_q.shape[0], im_q.shape[2]
        mask = joint_mask3(n, t, self.layout, self.shape[2], self.shape[0], a.mask_ratio,
                           a.mask_segment_frames)
        masked = im_3 * mask
        mixed, partner, lam = ske_swap(im_q, self.layout)

        q = self._embed(self.encoder_q, self.encoder_q.features(im_q, self.base_prompt))
        dense = self.encoder_q.features(masked, self.mask_prompt, all_seq=True)
        prompted = self._task_prompt(dense, self.mp_prompt)  # the decoder's input only
        recon = self._neck_decoder(prompted)
        recon_cl = self._neck_decoder(prompted.detach())
        mask_q = self._embed(self.encoder_q, dense[:, -1])  # the last step before the mp prompt
        filled = recon_cl * (1 - mask) + masked
        recons_q = self._embed(self.encoder_q, self.encoder_q.features(filled, self.recons_prompt))
        pc = self._embed(self.encoder_q, self.encoder_q.features(mixed, self.mix_prompt))

        with torch.no_grad():
            momentum = self.cfg.method_options.moco.momentum
            for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(),
                                        strict=True):
                param_k.data = param_k.data * momentum + param_q.data * (1.0 - momentum)
            k = self._embed(self.encoder_k, self.encoder_k.features(im_k, self.base_prompt))
            kc = F.normalize((1 - lam) * k + lam * k[partner], dim=1)

        queue = self.queue.clone().detach()
        pairs = {"contrast": (q, k), "mix": (pc, kc), "masked": (mask_q, k), "reconstructed": (recons_q, k)}
        losses: dict[str, Tensor] = {}
        kl = []
        for name, (s, teacher) in pairs.items():
            l_pos = (s * teacher).sum(dim=1, keepdim=True)
            l_neg = s @ queue
            logits = torch.cat((l_pos, l_neg), dim=1) / w.temperature
            losses[name] = F.cross_entropy(logits, torch.zeros(n, dtype=torch.long))
            with torch.no_grad():
                target = F.softmax(teacher @ queue / w.kl_teacher_temperature, dim=1)
            kl.append(F.kl_div(F.log_softmax(l_neg / w.kl_student_temperature, dim=1), target,
                               reduction="batchmean"))
        losses["kl"] = sum(kl)
        hidden = 1 - mask
        losses["reconstruction"] = ((recon - im_3) * hidden).square().sum() / hidden.sum()
        losses["loss"] = (w.contrast * losses["contrast"] + w.mix * losses["mix"] + w.kl * losses["kl"]
                          + w.reconstruction * losses["reconstruction"] + w.masked * losses["masked"]
                          + w.reconstructed * losses["reconstructed"])
        with torch.no_grad():
            ptr = int(self.queue_ptr)
            self.queue[:, ptr:ptr + n] = k.T
            self.queue_ptr[0] = (ptr + n) % self.queue.shape[1]
        return losses


def reference_train_step(model: OfficialPCM3, optimizer: torch.optim.Optimizer, data: np.ndarray,
                         lengths: np.ndarray, rng: np.random.RandomState) -> dict[str, float]:
    """One full official-style step: per-sample views, forward, backward, SGD update."""
    im_q, im_k, im_3 = official_views(data, lengths, model.cfg, model.layout, rng)
    losses = model(im_q, im_k, im_3)
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}
