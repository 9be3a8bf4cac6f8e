"""The ``pcm3`` / ``pcm3pp`` config blocks.

PCM3's settings still sit in the run config's shared blocks (``loss``, ``clip``, ``moco``,
``model`` heads); its own block has no keys yet, so ``pcm3: {...}`` with any key is refused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PCM3Options:
    """No options of its own (see the module docstring)."""

    @classmethod
    def tiny(cls) -> PCM3Options:
        return cls()


@dataclass
class PCM3PlusPlusOptions(PCM3Options):
    """No options of its own (see the module docstring)."""

    @classmethod
    def tiny(cls) -> PCM3PlusPlusOptions:
        return cls()
