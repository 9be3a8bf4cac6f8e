"""Pre-training methods: one table, one engine. Each method maps a batch to named losses."""

from __future__ import annotations

from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.layouts import Layout
from pcm3.methods.base import MomentumContrastMethod, encoder_spec
from pcm3.methods.pcm3 import PCM3
from pcm3.methods.pcm3pp import PCM3PlusPlus
from pcm3.models.encoder import PromptedEncoder

METHODS: dict[str, type[MomentumContrastMethod]] = {
    "pcm3": PCM3,
    "pcm3pp": PCM3PlusPlus,
}


def build_method(
    cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int
) -> MomentumContrastMethod:
    """The method named by ``cfg.method`` for inputs ``(N, in_channels, T, V, num_persons)``."""
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; methods: {', '.join(METHODS)}")
    return METHODS[cfg.method](cfg, layout, in_channels, num_persons)


__all__ = ["METHODS", "MomentumContrastMethod", "PromptedEncoder", "build_method", "encoder_spec"]
