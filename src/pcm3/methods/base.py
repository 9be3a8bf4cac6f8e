"""One base class for pre-training methods: the encoder, its EMA twin and a MoCo queue.

A method turns a batch of raw clips into named losses (``forward``) and hands the engine a
``feature_encoder()`` for downstream use. Views are built on the device, in batch. The query
encoder is any registered backbone, built from ``encoder_spec`` (written into checkpoints).

State-dict names that loaders rely on: ``ENCODER_PREFIX`` (the query backbone) and
``EVAL_PROMPT_KEY`` (the clean-view input prompt, when the method has input prompts).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.methods.ema import freeze, momentum_schedule, momentum_update
from pcm3.methods.queue import MoCoQueue
from pcm3.models.encoder import EncoderSpec, PromptedEncoder, build_encoder
from pcm3.models.heads import Projector
from pcm3.models.registry import options_dict

ENCODER_PREFIX = "encoder."  # state-dict prefix of the query backbone
EVAL_PROMPT_KEY = "input_prompts.prompts.base"  # the input prompt of downstream inputs (if any)


def encoder_spec(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> EncoderSpec:
    """The spec of the encoder ``cfg`` pre-trains on inputs ``(N, in_channels, T, V, num_persons)``."""
    return EncoderSpec(cfg.model.backbone, options_dict(cfg.model.options), in_channels, num_persons, layout,
                       stream=cfg.stream, view_frames=cfg.augment.view_frames)


class MomentumContrastMethod(nn.Module):
    """Query encoder + projector, their EMA copies (keys) and a queue of past keys."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.layout = layout
        self.in_channels, self.num_persons = in_channels, num_persons
        m = cfg.model
        self.encoder_spec = encoder_spec(cfg, layout, in_channels, num_persons)
        self.encoder = build_encoder(self.encoder_spec).backbone
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
        """The query encoder for downstream tasks, with its spec (shares weights with the method)."""
        return PromptedEncoder(self.encoder, self.eval_input_prompt(), self.encoder_spec)
