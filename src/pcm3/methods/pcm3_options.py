"""The ``pcm3`` / ``pcm3pp`` config blocks: loss terms, the MoCo key encoder and queue, and (PCM3++)
the clip branch.

A config states them in the method's block: ``method: pcm3`` + ``pcm3: {loss: {...}, moco: {...}}``,
``method: pcm3pp`` + ``pcm3pp: {loss: ..., moco: ..., clip: ...}`` (overrides ``pcm3.loss.masked=0``,
``pcm3pp.clip.path=mask``). The older top-level spelling (``loss``, ``moco``, ``clip``) is still
read: :mod:`pcm3.engine.config_migration` moves it into the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pcm3.errors import ConfigError


@dataclass
class LossConfig:
    """Loss terms and weights; a weight of 0 removes the term (and its computation)."""

    temperature: float = 0.07
    kl_student_temperature: float = 0.1
    kl_teacher_temperature: float = 0.05
    kl_topk: int | None = None
    contrast: float = 1.0  # query <-> key InfoNCE
    mix: float = 1.0  # mixed <-> mixed key
    masked: float = 1.0  # masked view <-> key
    reconstructed: float = 1.0  # reconstructed view <-> key
    kl: float = 1.0  # relational distillation, summed over the four pairs
    reconstruction: float = 40.0  # masked MSE
    semantic_guidance: bool = True  # contrast gradients reach the decoder (stop-grad branch)


@dataclass
class MoCoConfig:
    """The key (EMA) encoder and the queue of past keys."""

    queue_size: int = 16384
    momentum: float = 0.999
    momentum_schedule: Literal["constant", "cosine"] = "constant"


@dataclass
class ClipConfig:
    """PCM3++ clip-level contrast (method ``pcm3pp``)."""

    weight: float = 1.0  # InfoNCE of clip <-> full-view anchor; 0 removes the branch
    kl: float = 1.0  # relational KL of the clip pair (joint stream)
    min_frames: int = 8  # clip length ~ U{min_frames .. max_frames} of the view's frames
    max_frames: int = 16
    # where the clip comes from and what it is contrasted with: "query" = cut from the query view,
    # anchor = an extra key-encoder pass over the whole query view; "key" = the paper's notation: cut
    # from the key view x_k, anchor = the key embedding k the sequence pairs already use (no extra pass)
    source: Literal["query", "key"] = "query"
    # crop: clip frames only (padded to the batch's longest clip); mask: view length, clip moved to
    # frame 0, zeros after; in_place: view length, frames outside the clip zeroed, the clip where it was
    path: Literal["crop", "mask", "in_place"] = "crop"
    own_queue: bool = False  # True: a second queue holding the clip anchors


@dataclass
class PCM3Options:
    """PCM3's settings (defaults: the paper's NTU settings, MoCo queue 16384, momentum 0.999)."""

    loss: LossConfig = field(default_factory=LossConfig)
    moco: MoCoConfig = field(default_factory=MoCoConfig)

    def validate(self) -> None:
        if self.moco.queue_size < 1:
            raise ConfigError(f"moco.queue_size must be at least 1, got {self.moco.queue_size}")
        if not 0.0 <= self.moco.momentum < 1.0:
            raise ConfigError(f"moco.momentum must be in [0, 1), got {self.moco.momentum}")

    @classmethod
    def tiny(cls) -> PCM3Options:
        return cls(moco=MoCoConfig(queue_size=32))


@dataclass
class PCM3PlusPlusOptions(PCM3Options):
    """PCM3's settings plus the clip branch."""

    clip: ClipConfig = field(default_factory=ClipConfig)

    def validate(self) -> None:
        super().validate()
        if not 1 <= self.clip.min_frames <= self.clip.max_frames:
            raise ConfigError("clip: need 1 <= min_frames <= max_frames <= augment.view_frames, got "
                              f"{self.clip.min_frames}, {self.clip.max_frames}")

    @classmethod
    def tiny(cls) -> PCM3PlusPlusOptions:
        return cls(moco=MoCoConfig(queue_size=32), clip=ClipConfig(min_frames=5, max_frames=9))


__all__ = ["ClipConfig", "LossConfig", "MoCoConfig", "PCM3Options", "PCM3PlusPlusOptions"]
