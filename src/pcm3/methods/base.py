"""The base classes of pre-training methods and the trainer's contract with them.

The trainer calls, and only calls (DDP wraps the method, so ``forward`` is the entry)::

    method.before_step(step, total_steps)      # schedules (EMA momentum)
    losses = method(x, lengths, generator)     # = training_losses(...): named losses, "loss" = total
    ... backward, optimiser step ...
    method.after_step(step)                    # step = steps done so far
    method.has_unused_parameters               # DDP's find_unused_parameters
    method.encoder_spec, method.online_encoder, method.feature_encoder()

``x (N, C, T, V, M)`` are raw padded clips, ``lengths (N,)`` their valid frames, ``generator`` the
step's random generator (views are built on the device, in batch). The parameters a method
trains are its ``parameters()`` that require gradients; frozen EMA copies do not.

* :class:`Method`: the online encoder (any registered backbone, built from ``encoder_spec``,
  which checkpoints hold) and the method's typed options (``cfg.method_options``).
* :class:`MomentumMethod`: key (EMA) copies of online modules, averaged in pairs
  (``momentum_pairs``), the momentum schedule, and any number of :class:`MoCoQueue` buffers.
* :class:`MomentumContrastMethod`: the MoCo layout every contrastive method here shares: the
  encoder and a projector, their key copies and one queue of past keys.

State-dict names that loaders rely on: ``ENCODER_PREFIX`` (the online backbone) and
``EVAL_PROMPT_KEY`` (the clean-view input prompt, when the method has input prompts).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.methods.ema import freeze, momentum_schedule, momentum_update
from pcm3.methods.queue import MoCoQueue
from pcm3.models.encoder import EncoderSpec, PromptedEncoder, build_encoder
from pcm3.models.heads import Projector
from pcm3.models.registry import options_dict

ENCODER_PREFIX = "encoder."  # state-dict prefix of the online backbone
EVAL_PROMPT_KEY = "input_prompts.prompts.base"  # the input prompt of downstream inputs (if any)


def encoder_spec(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> EncoderSpec:
    """The spec of the encoder ``cfg`` pre-trains on inputs ``(N, in_channels, T, V, num_persons)``."""
    return EncoderSpec(cfg.model.backbone, options_dict(cfg.model.options), in_channels, num_persons, layout,
                       stream=cfg.stream, view_frames=cfg.augment.view_frames)


class Method(nn.Module):
    """A pre-training method: an online encoder and a batch -> named losses map."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.options: Any = cfg.method_options  # the method's own options dataclass
        self.layout = layout
        self.in_channels, self.num_persons = in_channels, num_persons
        self.encoder_spec = encoder_spec(cfg, layout, in_channels, num_persons)
        self.encoder = build_encoder(self.encoder_spec).backbone
        self.feature_dim = self.encoder.feature_dim

    @property
    def online_encoder(self) -> nn.Module:
        """The backbone trained by gradients (what downstream tasks use)."""
        return self.encoder

    @property
    def has_unused_parameters(self) -> bool:
        """True when some trainable parameter may get no gradient in a step (DDP needs to know)."""
        return False

    def forward(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """:meth:`training_losses` (DDP calls ``forward``)."""
        return self.training_losses(x, lengths, generator)

    def training_losses(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Named scalar losses of one batch ``x (N, C, T, V, M)``; ``"loss"`` is the weighted total."""
        raise NotImplementedError(f"{type(self).__name__} does not define training_losses")

    def before_step(self, step: int, total_steps: int) -> None:
        """Called before every step (``step`` = steps done so far) for schedules."""

    def after_step(self, step: int) -> None:
        """Called after every optimiser step (``step`` = steps done, this one included)."""

    def eval_input_prompt(self) -> Tensor | None:
        """The input prompt added to downstream inputs (None for methods without prompts)."""
        return None

    def feature_encoder(self) -> PromptedEncoder:
        """The online encoder for downstream tasks, with its spec (shares weights with the method)."""
        return PromptedEncoder(self.encoder, self.eval_input_prompt(), self.encoder_spec)


class MomentumMethod(Method):
    """A method with key (EMA) copies of online modules: ``key ← m·key + (1 − m)·online``.

    Each method passes its own ``momentum`` and ``schedule`` (``"constant"`` or ``"cosine"``, from
    its options); subclasses list their (key, online) pairs in :meth:`momentum_pairs` and call
    :meth:`update_key_encoders` where the method does (before encoding the keys, as MoCo).
    """

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int, *,
                 momentum: float, schedule: str) -> None:
        super().__init__(cfg, layout, in_channels, num_persons)
        self.base_momentum = momentum
        self.momentum_kind = schedule
        self.momentum = self.base_momentum

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """The (key, online) module pairs the EMA averages (parameters only)."""
        raise NotImplementedError(f"{type(self).__name__} does not define momentum_pairs")

    def queues(self) -> dict[str, MoCoQueue]:
        """Every queue of the method, by module name."""
        return {name: m for name, m in self.named_modules() if isinstance(m, MoCoQueue)}

    def before_step(self, step: int, total_steps: int) -> None:
        self.momentum = momentum_schedule(self.base_momentum, step, total_steps, self.momentum_kind)

    @torch.no_grad()
    def update_key_encoders(self) -> None:
        """EMA of every pair (BatchNorm statistics of the key copies are their own)."""
        for key, online in self.momentum_pairs():
            momentum_update(key, online, self.momentum)


class MomentumContrastMethod(MomentumMethod):
    """MoCo: encoder + projector ``(N, D) -> (N, embed_dim)``, their EMA copies (keys) and a
    queue of ``queue_size`` past keys; ``momentum`` / ``schedule`` / ``queue_size`` from the method's
    options (widths default to ``cfg.model``'s; ``projector_hidden=0``: the encoder's feature width)."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int, *,
                 queue_size: int, momentum: float, schedule: str, embed_dim: int | None = None,
                 projector_hidden: int | None = None) -> None:
        super().__init__(cfg, layout, in_channels, num_persons, momentum=momentum, schedule=schedule)
        m = cfg.model
        self.embed_dim = m.embed_dim if embed_dim is None else embed_dim
        hidden = m.projector_hidden if projector_hidden is None else projector_hidden or self.feature_dim
        self.projector = Projector(self.feature_dim, hidden, self.embed_dim)
        self.key_encoder = freeze(copy.deepcopy(self.encoder))
        self.key_projector = freeze(copy.deepcopy(self.projector))
        queue_seed = torch.Generator().manual_seed(cfg.seed)
        self.queue = MoCoQueue(queue_size, self.embed_dim, generator=queue_seed)

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.key_encoder, self.encoder), (self.key_projector, self.projector)]

    def update_key_encoder(self) -> None:
        """EMA of the query encoder and projector parameters (buffers are not averaged)."""
        self.update_key_encoders()
