"""One base class for pre-training methods: the encoder, its EMA twin and a MoCo queue.

A method turns a batch of raw clips into named losses (``forward``) and hands the engine a
``feature_encoder()`` for downstream use. Views are built on the device, in batch.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.methods.ema import freeze, momentum_schedule, momentum_update
from pcm3.methods.queue import MoCoQueue
from pcm3.models.heads import Projector
from pcm3.models.registry import create_backbone


class PromptedEncoder(nn.Module):
    """A backbone plus the input prompt it was pre-trained with on clean views (or none).

    Same API as the backbone (``forward_features``, ``forward_dense``, ``feature_dim``); this
    is what downstream tasks and ``pcm3 export`` use.
    """

    def __init__(self, backbone: nn.Module, input_prompt: Tensor | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = backbone.feature_dim
        if input_prompt is not None:
            self.register_buffer("input_prompt", input_prompt.detach().clone())
        else:
            self.input_prompt = None

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.backbone.forward_features(x, lengths, input_prompt=self.input_prompt)

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.backbone.forward_dense(x, lengths, input_prompt=self.input_prompt)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


class MomentumContrastMethod(nn.Module):
    """Query encoder + projector, their EMA copies (keys) and a queue of past keys."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.layout = layout
        self.in_channels, self.num_persons = in_channels, num_persons
        m = cfg.model
        self.encoder = create_backbone(
            m.backbone, num_joints=layout.num_joints, num_persons=num_persons, in_channels=in_channels,
            hidden_size=m.hidden_size, num_layers=m.num_layers, bidirectional=m.bidirectional,
            pooling=m.pooling,
        )
        self.feature_dim = self.encoder.feature_dim
        self.projector = Projector(self.feature_dim, m.projector_hidden, m.embed_dim)
        self.key_encoder = freeze(copy.deepcopy(self.encoder))
        self.key_projector = freeze(copy.deepcopy(self.projector))
        queue_seed = torch.Generator().manual_seed(cfg.seed)
        self.queue = MoCoQueue(cfg.moco.queue_size, m.embed_dim, generator=queue_seed)
        self.momentum = cfg.moco.momentum

    def set_progress(self, step: int, total_steps: int) -> None:
        """Called by the engine before every step (momentum schedules)."""
        self.momentum = momentum_schedule(self.cfg.moco.momentum, step, total_steps,
                                          self.cfg.moco.momentum_schedule)

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        """EMA of the query encoder and projector parameters (buffers are not averaged)."""
        momentum_update(self.key_encoder, self.encoder, self.momentum)
        momentum_update(self.key_projector, self.projector, self.momentum)

    def train(self, mode: bool = True) -> MomentumContrastMethod:
        super().train(mode)
        self.key_encoder.train(mode)
        return self

    def eval_input_prompt(self) -> Tensor | None:
        """The input prompt added to downstream inputs (None for methods without prompts)."""
        return None

    def feature_encoder(self) -> PromptedEncoder:
        """The query encoder for downstream tasks (shares weights with the method)."""
        return PromptedEncoder(self.encoder, self.eval_input_prompt())
