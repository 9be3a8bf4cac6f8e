"""CMD: cross-modal mutual distillation. Joint, motion and bone encoders (BiGRU by default) are
trained together, each a MoCo with its own EMA copy and queue, and each modality's relations to
its queue are distilled into the others.

Per batch of raw clips ``(N, C, T, V, M)``: two views as PCM3's query and key views (temporal
crop-resize, then shear or joint corruption), each turned into the three modalities; for each
modality m::

    q_m = normalize(g_m(E_m(view1_m)))     k_m = normalize(g_km(E_km(view2_m)))   (EMA, no gradient)

losses: InfoNCE per modality (``contrast_joint``, ``contrast_motion``, ``contrast_bone``) and the
relational KL of every ordered pair of modalities (``cmd``, see :func:`cmd_losses`), weighted by
``cmd_weight``. The encoder of the run's ``stream`` is ``encoder`` (what checkpoints export);
the other two are ``other_encoders``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcm3.augment.spatial import spatial_augment
from pcm3.augment.temporal import temporal_crop_resize
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.methods.base import MomentumMethod
from pcm3.methods.cmd_losses import cmd_losses
from pcm3.methods.ema import freeze
from pcm3.methods.queue import MoCoQueue
from pcm3.methods.registry import register_method
from pcm3.modalities import to_stream
from pcm3.models.encoder import build_encoder
from pcm3.models.heads import Projector

MODALITIES = ("joint", "motion", "bone")


@dataclass
class CMDOptions:
    """CMD's settings (defaults: the official NTU scripts)."""

    queue_size: int = 16384
    momentum: float = 0.999
    temperature: float = 0.07
    student_temperature: float = 0.1
    teacher_temperature: float = 0.05
    topk: int | None = 8192  # None: all queue entries
    cmd_weight: float = 1.0
    embed_dim: int = 128
    projector_hidden: int = 0  # 0: the backbone's feature width (official MLP head)

    def validate(self) -> None:
        if self.queue_size < 1 or self.embed_dim < 1 or self.projector_hidden < 0:
            raise ConfigError(f"cmd: queue_size and embed_dim must be >= 1, projector_hidden >= 0; got "
                              f"{self.queue_size}, {self.embed_dim}, {self.projector_hidden}")
        if self.topk is not None and not 1 <= self.topk <= self.queue_size:
            raise ConfigError(f"cmd.topk must be in 1..queue_size ({self.queue_size}) or null, got "
                              f"{self.topk}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"cmd.momentum must be in [0, 1), got {self.momentum}")
        if min(self.temperature, self.student_temperature, self.teacher_temperature) <= 0:
            raise ConfigError("cmd: temperatures must be > 0")
        if self.cmd_weight < 0:
            raise ConfigError(f"cmd.cmd_weight must be >= 0, got {self.cmd_weight}")

    @classmethod
    def tiny(cls) -> CMDOptions:
        return cls(queue_size=32, topk=8, embed_dim=8)


@register_method("cmd", options=CMDOptions, default_backbone="bigru")
class CMD(MomentumMethod):
    """Three MoCo branches, one per modality, plus cross-modal relational KL."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        o: CMDOptions = cfg.method_options
        super().__init__(cfg, layout, in_channels, num_persons, momentum=o.momentum, schedule="constant")
        self.other_encoders = nn.ModuleDict({
            m: build_encoder(dataclasses.replace(self.encoder_spec, stream=m)).backbone
            for m in MODALITIES if m != cfg.stream})
        hidden = o.projector_hidden or self.feature_dim
        self.projectors = nn.ModuleDict({m: Projector(self.feature_dim, hidden, o.embed_dim)
                                         for m in MODALITIES})
        self.key_encoders = nn.ModuleDict({m: freeze(copy.deepcopy(self.encoder_of(m))) for m in MODALITIES})
        self.key_projectors = nn.ModuleDict({m: freeze(copy.deepcopy(self.projectors[m]))
                                             for m in MODALITIES})
        self.stream_queues = nn.ModuleDict({
            m: MoCoQueue(o.queue_size, o.embed_dim, generator=torch.Generator().manual_seed(cfg.seed + i))
            for i, m in enumerate(MODALITIES)})

    def encoder_of(self, modality: str) -> nn.Module:
        """The online encoder of ``modality``."""
        return self.encoder if modality == self.cfg.stream else self.other_encoders[modality]

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [pair for m in MODALITIES for pair in ((self.key_encoders[m], self.encoder_of(m)),
                                                      (self.key_projectors[m], self.projectors[m]))]

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> list[dict[str, Tensor]]:
        """Query and key views, each ``{modality: (N, C, view_frames, V, M)}``."""
        a, layout = self.cfg.augment, self.layout
        views = []
        for p in (a.corruption_prob_query, a.corruption_prob_key):
            crop = temporal_crop_resize(x, lengths, generator, a.view_frames, a.crop_scale, a.crop_min_frames)
            joints = spatial_augment(crop, layout, generator, p, a.shear_magnitude)
            views.append({m: to_stream(joints, m, layout) for m in MODALITIES})
        return views

    def embed(self, view: Tensor, modality: str, key: bool = False) -> Tensor:
        """``(N, C, T, V, M) -> (N, embed_dim)``, L2-normalised, by ``modality``'s query or key branch."""
        encoder, projector = ((self.key_encoders[modality], self.key_projectors[modality]) if key
                              else (self.encoder_of(modality), self.projectors[modality]))
        return F.normalize(projector(encoder.forward_features(view)), dim=1)

    def training_losses(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        o = self.options
        query_views, key_views = self.make_views(x, lengths, generator)
        self.update_key_encoders()
        with torch.no_grad():
            keys = {m: self.embed(key_views[m], m, key=True) for m in MODALITIES}
        queries = {m: self.embed(query_views[m], m) for m in MODALITIES}
        queues = {m: self.stream_queues[m].snapshot() for m in MODALITIES}
        losses = cmd_losses(queries, keys, queues, o.temperature, o.student_temperature,
                            o.teacher_temperature, o.topk)
        losses["loss"] = sum(losses[f"contrast_{m}"] for m in MODALITIES) + o.cmd_weight * losses["cmd"]
        for m in MODALITIES:
            self.stream_queues[m].enqueue(keys[m])
        return losses


__all__ = ["CMD", "MODALITIES", "CMDOptions"]
