"""The MAMP training step written in the official formulation, for timing against
:class:`pcm3.methods.MAMP` (``benchmarks/method_speed.py --reference``).

Written from the published training code (not copied), with the widths, mask ratio, masking
temperature, motion stride and decoder of our method built from the same :class:`PretrainConfig`,
on the paper backbone (the transformer, :class:`reference_mamp_encoder.ReferenceMAMPEncoder`):

- views: per sample on the host, as the feeder does: the valid frames counted from the data
  (``(x.sum over C, V, M) != 0``), a NumPy random crop of ``augment.crop_scale`` of them (at least
  ``augment.crop_min_frames``), resized to ``augment.view_frames`` by ``F.interpolate`` on a
  ``(1, 1, C*V*M, L)`` tensor; then a random rotation: three ``U(-theta, theta)`` angles, a
  rotation matrix per frame built by stacking ``(T, 3, 3)`` tensors, one ``matmul``;
- model: persons folded into the batch ``(N*M, T, V, C)``; frame-difference targets; the input
  patchified (``einsum``) for the motion of every token; motion-aware masking as
  ``softmax(motion / (max * tau))``, ``log`` + Gumbel noise, ``argsort`` twice (shuffle and
  restore), the kept tokens gathered, the mask unshuffled by a ``gather``;
- decoder: ``decoder_embed``, mask tokens appended with ``torch.cat`` and put back in place by a
  ``gather`` with the restore indices, ``decoder_pos_embed + decoder_temp_embed``, blocks with an
  explicit ``softmax(q k^T) v`` attention, LayerNorm, ``decoder_pred``;
- loss: per-token normalised targets, mean squared error over the masked tokens.

:func:`copy_weights_from` loads our MAMP's weights into this model (tests).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from reference_mamp_encoder import ReferenceBlock, ReferenceMAMPEncoder, copy_block_weights
from reference_mamp_encoder import copy_weights_from as copy_encoder_weights
from torch import Tensor, nn

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout


# ---------------------------------------------------------------- per-sample views (feeder)
def valid_crop_resize(x: np.ndarray, valid: int, interval: tuple[float, float], min_len: int, window: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """One sample ``(C, T, V, M)`` -> ``(C, window, V, M)``: a random crop of the valid frames, resized."""
    c, _, v, m = x.shape
    p = rng.rand() * (interval[1] - interval[0]) + interval[0]
    length = int(np.minimum(np.maximum(int(np.floor(valid * p)), min_len), valid))
    bias = rng.randint(0, valid - length + 1)
    crop = torch.tensor(x[:, bias:bias + length], dtype=torch.float)
    crop = crop.permute(0, 2, 3, 1).contiguous().view(c * v * m, length)[None, None]
    crop = F.interpolate(crop, size=(c * v * m, window), mode="bilinear", align_corners=False).squeeze()
    return crop.contiguous().view(c, v, m, window).permute(0, 3, 1, 2).contiguous().numpy()


def _rotation(angles: Tensor) -> Tensor:
    """``(T, 3)`` angles -> ``(T, 3, 3)`` matrices ``R_z R_y R_x``, built row by row."""
    cos, sin = angles.cos(), angles.sin()
    zeros, ones = torch.zeros(angles.shape[0], 1), torch.ones(angles.shape[0], 1)
    rx = torch.cat((torch.stack((ones, zeros, zeros), dim=-1),
                    torch.stack((zeros, cos[:, 0:1], sin[:, 0:1]), dim=-1),
                    torch.stack((zeros, -sin[:, 0:1], cos[:, 0:1]), dim=-1)), dim=1)
    ry = torch.cat((torch.stack((cos[:, 1:2], zeros, -sin[:, 1:2]), dim=-1),
                    torch.stack((zeros, ones, zeros), dim=-1),
                    torch.stack((sin[:, 1:2], zeros, cos[:, 1:2]), dim=-1)), dim=1)
    rz = torch.cat((torch.stack((cos[:, 2:3], sin[:, 2:3], zeros), dim=-1),
                    torch.stack((-sin[:, 2:3], cos[:, 2:3], zeros), dim=-1),
                    torch.stack((zeros, zeros, ones), dim=-1)), dim=1)
    return rz.matmul(ry).matmul(rx)


def random_rot(x: np.ndarray, theta: float) -> Tensor:
    """Rotate one sample ``(C, T, V, M)`` by three random angles (the same matrix for every frame)."""
    data = torch.from_numpy(x)
    c, t, v, m = data.shape
    data = data.permute(1, 0, 2, 3).contiguous().view(t, c, v * m)
    angles = torch.stack([torch.zeros(3).uniform_(-theta, theta)] * t, dim=0)
    return torch.matmul(_rotation(angles), data).view(t, c, v, m).permute(1, 0, 2, 3).contiguous()


def mamp_views(data: np.ndarray, cfg: PretrainConfig, rng: np.random.RandomState) -> Tensor:
    """``(N, C, T, V, M)`` raw clips -> one view ``(N, C, view_frames, V, M)``, sample by sample."""
    a, o = cfg.augment, cfg.method_options
    samples = []
    for i in range(data.shape[0]):
        x = np.array(data[i])
        valid = int(np.sum(x.sum(0).sum(-1).sum(-1) != 0))
        view = valid_crop_resize(x, valid, a.crop_scale, a.crop_min_frames, a.view_frames, rng)
        samples.append(random_rot(view, o.rotation) if o.rotation > 0 else torch.from_numpy(view))
    return torch.stack(samples).float()


# ---------------------------------------------------------------- model
class OfficialMAMP(nn.Module):
    """The official MAMP ``Transformer``: encoder on the kept tokens, light decoder, motion loss."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        s, o = cfg.model.options, cfg.method_options
        self.cfg, self.layout = cfg, layout
        frames, self.u = cfg.augment.view_frames, s.patch_frames
        self.tp, self.vp = frames // s.patch_frames, layout.num_joints
        self.encoder = ReferenceMAMPEncoder(in_channels, layout.num_joints, frames, s.embed_dim, s.depth,
                                            s.num_heads, s.mlp_ratio, s.patch_frames, s.qkv_bias)
        d = o.decoder_dim
        self.decoder_embed = nn.Linear(s.embed_dim, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.decoder_blocks = nn.ModuleList(ReferenceBlock(d, o.decoder_heads, o.decoder_mlp_ratio, True)
                                            for _ in range(o.decoder_depth))
        self.decoder_norm = nn.LayerNorm(d)
        self.decoder_temp_embed = nn.Parameter(torch.zeros(1, self.tp, 1, d))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, 1, self.vp, d))
        self.decoder_pred = nn.Linear(d, s.patch_frames * in_channels)
        for p in (self.mask_token, self.decoder_temp_embed, self.decoder_pos_embed,
                  self.encoder.pos_embed, self.encoder.temp_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def patchify(self, x: Tensor) -> Tensor:
        """``(NM, T, V, C) -> (NM, TP * VP, u * C)``."""
        nm, t, v, c = x.shape
        x = torch.einsum("ntuvc->ntvuc", x.reshape(nm, t // self.u, self.u, v, c))
        return x.reshape(nm, (t // self.u) * v, self.u * c)

    def masking(self, x: Tensor, x_orig: Tensor, mask_ratio: float, tau: float
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Kept tokens ``(NM, K, D)``, mask ``(NM, L)`` (1 = removed) and the restore indices."""
        nm, length, d = x.shape
        keep = int(length * (1 - mask_ratio))
        if tau > 0:
            motion = torch.zeros_like(x_orig)
            motion[:, 1:] = torch.abs(x_orig[:, 1:] - x_orig[:, :-1])
            motion[:, 0] = motion[:, 1]
            motion = motion.mean(dim=[3]).reshape(nm, length)
            motion = motion / (torch.max(motion, dim=-1, keepdim=True).values * tau + 1e-10)
            gumbel = -torch.log(-torch.log(torch.rand(nm, length) + 1e-10) + 1e-10)
            noise = torch.log(F.softmax(motion, dim=-1)) + gumbel
        else:
            noise = torch.rand(nm, length)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        kept = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones([nm, length])
        mask[:, :keep] = 0
        return kept, torch.gather(mask, dim=1, index=ids_restore), ids_restore

    def forward_decoder(self, x: Tensor, ids_restore: Tensor) -> Tensor:
        nm = x.shape[0]
        x = self.decoder_embed(x)
        c = x.shape[-1]
        mask_tokens = self.mask_token.repeat(nm, self.tp * self.vp - x.shape[1], 1)
        x_ = torch.cat([x, mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, c))
        x = x_.view([nm, self.tp, self.vp, c]) + self.decoder_pos_embed + self.decoder_temp_embed
        x = x.reshape(nm, self.tp * self.vp, c)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Named losses ``motion`` and ``loss`` (equal) of one view ``(N, C, T, V, M)``."""
        o = self.cfg.method_options
        n, c, t, v, m = x.shape
        seq = x.permute(0, 4, 2, 3, 1).contiguous().view(n * m, t, v, c)
        motion = torch.zeros_like(seq)
        motion[:, :-o.motion_stride] = seq[:, o.motion_stride:] - seq[:, :-o.motion_stride]
        x_orig = self.patchify(seq).reshape(n * m, self.tp, self.vp, -1)
        tokens = self.encoder.embed(x)
        kept, mask, ids_restore = self.masking(tokens, x_orig, o.mask_ratio, o.motion_aware_tau)
        pred = self.forward_decoder(self.encoder.encode(kept), ids_restore)
        target = self.patchify(motion)
        if o.normalize_target:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        loss = (loss * mask).sum() / mask.sum()
        return {"motion": loss, "loss": loss}


def reference_train_step(model: OfficialMAMP, optimizer: torch.optim.Optimizer, data: np.ndarray,
                         lengths: np.ndarray, rng: np.random.RandomState) -> dict[str, float]:
    """One full official-style step: per-sample view, forward, backward, optimiser update (``lengths``
    unused: the feeder counts the valid frames itself)."""
    losses = model(mamp_views(data, model.cfg, rng))
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    return {name: value.item() for name, value in losses.items()}


@torch.no_grad()
def copy_weights_from(reference: OfficialMAMP, ours: nn.Module) -> None:
    """Our :class:`pcm3.methods.MAMP`'s encoder and decoder into ``reference``."""
    copy_encoder_weights(reference.encoder, ours.encoder)
    dec = ours.decoder
    reference.decoder_embed.load_state_dict(dec.embed.state_dict())
    reference.mask_token.copy_(dec.mask_token)
    reference.decoder_temp_embed.copy_(dec.time_embed.view(reference.decoder_temp_embed.shape))
    reference.decoder_pos_embed.copy_(dec.joint_embed.view(reference.decoder_pos_embed.shape))
    copy_block_weights(reference.decoder_blocks, dec.blocks)
    reference.decoder_norm.load_state_dict(dec.norm.state_dict())
    reference.decoder_pred.load_state_dict(dec.predict.state_dict())
