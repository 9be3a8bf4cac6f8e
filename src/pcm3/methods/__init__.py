"""Pre-training methods: one registry, one engine. Each method maps a batch to named losses.

Importing this package imports every built-in method file (each registers itself with
``pcm3.methods.registry.register_method``).
"""

from __future__ import annotations

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.methods.base import Method, MomentumContrastMethod, MomentumMethod, encoder_spec
from pcm3.methods.cmd import CMD
from pcm3.methods.mamp import MAMP
from pcm3.methods.pcm3 import PCM3
from pcm3.methods.pcm3_options import PCM3Options, PCM3PlusPlusOptions
from pcm3.methods.pcm3pp import PCM3PlusPlus
from pcm3.methods.registry import METHODS, get_method, known_methods, register_method
from pcm3.methods.skeletonclr import SkeletonCLR
from pcm3.models.encoder import PromptedEncoder

register_method("pcm3", options=PCM3Options, default_backbone="bigru")(PCM3)
register_method("pcm3pp", options=PCM3PlusPlusOptions, default_backbone="bigru")(PCM3PlusPlus)


def build_method(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> Method:
    """The method named by ``cfg.method`` for inputs ``(N, in_channels, T, V, num_persons)``."""
    entry = get_method(cfg.method)
    entry.check_backbone(cfg.model.backbone)
    return entry.cls(cfg, layout, in_channels, num_persons)


__all__ = [
    "CMD",
    "MAMP",
    "METHODS",
    "Method",
    "MomentumContrastMethod",
    "MomentumMethod",
    "PromptedEncoder",
    "SkeletonCLR",
    "build_method",
    "encoder_spec",
    "known_methods",
]
