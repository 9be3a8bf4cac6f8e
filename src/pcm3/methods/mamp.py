"""MAMP: masked motion prediction on a token-masking transformer.

Per batch of raw clips ``(N, C, T, V, M)``: a random crop of the valid frames resized to
``augment.view_frames`` (``augment.crop_scale``, ``augment.crop_min_frames``; official: 0.5-1 of
the clip, at least 64 frames, 120 frames out), a random rotation, the run's stream. Per person,
with tokens of ``u`` frames x 1 joint (``L = P * V``)::

    m        = token motion magnitude (mean |patch[p] - patch[p-1]|)
    keep     = the int(L * (1 - mask_ratio)) lowest of log softmax(m / (max m * tau)) + Gumbel
    z        = E(tokens[keep])                       (the backbone's forward_tokens)
    pred     = DEC(z, keep)                           (B, L, u*C)
    target   = per-token normalised patches of x[t + s] - x[t]   (s = motion_stride)
    loss     = mean over masked tokens of the per-token MSE
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pcm3.augment.rotation import random_rotation
from pcm3.augment.temporal import temporal_crop_resize
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.methods.base import Method
from pcm3.methods.mamp_decoder import MotionDecoder
from pcm3.methods.mamp_targets import (
    frame_motion,
    masked_token_mse,
    motion_aware_keep_index,
    normalized_targets,
    patchify,
    per_person,
    token_motion,
)
from pcm3.methods.registry import register_method
from pcm3.modalities import to_stream

TOKEN_MASKING = ("forward_tokens", "num_patches")  # the backbone members MAMP calls


@dataclass
class MAMPOptions:
    """MAMP's settings (defaults: the official NTU-60 configs; NTU-120 uses tau 0.75, depth 5)."""

    mask_ratio: float = 0.9
    motion_aware_tau: float = 0.8  # 0: uniform random masking (MAE)
    motion_stride: int = 1
    normalize_target: bool = True
    rotation: float = 0.3  # max random rotation angle (radians) per axis; 0: none
    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    decoder_mlp_ratio: float = 4.0

    def validate(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mamp.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.motion_aware_tau < 0 or self.rotation < 0:
            raise ConfigError(f"mamp: motion_aware_tau and rotation must be >= 0, got "
                              f"{self.motion_aware_tau}, {self.rotation}")
        for key in ("motion_stride", "decoder_dim", "decoder_depth", "decoder_heads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"mamp.{key} must be at least 1, got {getattr(self, key)}")
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError(f"mamp.decoder_dim ({self.decoder_dim}) must be a multiple of decoder_heads "
                              f"({self.decoder_heads})")

    @classmethod
    def tiny(cls) -> MAMPOptions:
        return cls(decoder_dim=8, decoder_depth=1, decoder_heads=2)


@register_method("mamp", options=MAMPOptions, default_backbone="transformer", requires=TOKEN_MASKING)
class MAMP(Method):
    """Masked motion prediction (see the module docstring)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__(cfg, layout, in_channels, num_persons)
        o: MAMPOptions = self.options
        frames, u = cfg.augment.view_frames, self.encoder.time_stride
        if frames % u:
            raise ConfigError(f"mamp: augment.view_frames = {frames} must be a multiple of the backbone's "
                              f"patch of {u} frames")
        self.patches = self.encoder.num_patches(frames)
        tokens = self.patches * layout.num_joints
        self.keep = int(tokens * (1 - o.mask_ratio))
        if self.keep < 1:
            raise ConfigError(f"mamp: mask_ratio {o.mask_ratio} keeps no token of {tokens}; lower it")
        self.decoder = MotionDecoder(self.feature_dim, u * in_channels, self.patches, layout.num_joints,
                                     o.decoder_dim, o.decoder_depth, o.decoder_heads, o.decoder_mlp_ratio)

    def make_view(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> Tensor:
        """``(N, C, view_frames, V, M)``: crop-resize, rotation, the run's stream."""
        a = self.cfg.augment
        view = temporal_crop_resize(x, lengths, generator, a.view_frames, a.crop_scale, a.crop_min_frames)
        if self.options.rotation > 0:
            view = random_rotation(view, generator, self.options.rotation)
        return to_stream(view, self.cfg.stream, self.layout)

    def training_losses(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        o, u = self.options, self.encoder.time_stride
        view = self.make_view(x, lengths, generator)
        sequences = per_person(view)  # (N*M, T, V, C)
        motion = token_motion(patchify(sequences, u), self.layout.num_joints)
        keep_index, mask = motion_aware_keep_index(motion.detach(), self.keep, o.motion_aware_tau, generator)
        kept = self.encoder.forward_tokens(view, None, keep_index)
        prediction = self.decoder(kept, keep_index)
        target = patchify(frame_motion(sequences, o.motion_stride), u)
        if o.normalize_target:
            target = normalized_targets(target)
        loss = masked_token_mse(prediction.float(), target.float(), mask)
        return {"motion": loss, "loss": loss}


__all__ = ["MAMP", "MAMPOptions"]
