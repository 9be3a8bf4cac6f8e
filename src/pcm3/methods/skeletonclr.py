"""SkeletonCLR: MoCo v2 on two augmented views of each clip (ST-GCN by default).

Per batch of raw clips ``(N, C, T, V, M)``: every clip's valid frames are resized to
``augment.view_frames`` (the official data are resized to 50 frames), then two views are drawn,
each a mirror-padded temporal crop followed by a shear, and turned into the run's stream::

    q = normalize(g(E(view1)))      k = normalize(g_k(E_k(view2)))   (EMA encoder, no gradient)
    loss = InfoNCE(q, k, queue) at ``temperature``; then k is enqueued

``g`` is ``Linear(D, hidden) -> ReLU -> Linear(hidden, embed_dim)`` (official: hidden = D).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pcm3.augment.spatial import shear
from pcm3.augment.temporal import TemporalCrop, crop_resize, padded_temporal_crop
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.losses import info_nce
from pcm3.methods.base import MomentumContrastMethod
from pcm3.methods.registry import register_method
from pcm3.modalities import to_stream


@dataclass
class SkeletonCLROptions:
    """SkeletonCLR's settings (defaults: the official NTU configs)."""

    queue_size: int = 32768
    momentum: float = 0.999
    temperature: float = 0.07
    embed_dim: int = 128
    projector_hidden: int = 0  # 0: the backbone's feature width (official MLP head)
    shear_magnitude: float = 0.5
    padding_ratio: int = 6  # mirror-pad T // padding_ratio frames on each side before the crop

    def validate(self) -> None:
        for key in ("queue_size", "embed_dim", "padding_ratio"):
            if getattr(self, key) < 1:
                raise ConfigError(f"skeletonclr.{key} must be at least 1, got {getattr(self, key)}")
        if self.projector_hidden < 0:
            raise ConfigError(f"skeletonclr.projector_hidden must be 0 (feature width) or more, got "
                              f"{self.projector_hidden}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"skeletonclr.momentum must be in [0, 1), got {self.momentum}")
        if self.temperature <= 0 or self.shear_magnitude < 0:
            raise ConfigError("skeletonclr: temperature must be > 0 and shear_magnitude >= 0, got "
                              f"{self.temperature}, {self.shear_magnitude}")

    @classmethod
    def tiny(cls) -> SkeletonCLROptions:
        return cls(queue_size=32, embed_dim=8)


@register_method("skeletonclr", options=SkeletonCLROptions, default_backbone="stgcn")
class SkeletonCLR(MomentumContrastMethod):
    """MoCo v2 on two views (see the module docstring)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        o: SkeletonCLROptions = cfg.method_options
        super().__init__(cfg, layout, in_channels, num_persons, queue_size=o.queue_size,
                         embed_dim=o.embed_dim, projector_hidden=o.projector_hidden, momentum=o.momentum,
                         schedule="constant")

    def make_views(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two views ``(N, C, view_frames, V, M)`` in the run's stream."""
        o = self.options
        whole = TemporalCrop(start=torch.zeros_like(lengths), length=lengths)
        clips = crop_resize(x, whole, self.cfg.augment.view_frames)
        views = [shear(padded_temporal_crop(clips, generator, o.padding_ratio), generator, o.shear_magnitude)
                 for _ in range(2)]
        return tuple(to_stream(v, self.cfg.stream, self.layout) for v in views)  # type: ignore[return-value]

    def embed(self, view: Tensor, key: bool = False) -> Tensor:
        """``(N, C, T, V, M) -> (N, embed_dim)``, L2-normalised (query or key branch)."""
        encoder, projector = (self.key_encoder, self.key_projector) if key else (self.encoder, self.projector)
        return F.normalize(projector(encoder.forward_features(view)), dim=1)

    def training_losses(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        query_view, key_view = self.make_views(x, lengths, generator)
        self.update_key_encoders()
        with torch.no_grad():
            k = self.embed(key_view, key=True)
        q = self.embed(query_view)
        loss = info_nce(q, k, self.queue.snapshot(), self.options.temperature)
        self.queue.enqueue(k)
        return {"contrast": loss, "loss": loss}


__all__ = ["SkeletonCLR", "SkeletonCLROptions"]
