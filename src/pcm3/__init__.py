"""pcm3: self-supervised skeleton action representation learning (PCM3 / PCM3++) and benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pcm3.errors import Pcm3Error

if TYPE_CHECKING:
    from pcm3.embedding import Embedder

__version__ = "0.1.0.dev0"


def load_encoder(path: str | Path, device: str = "cpu", **options: Any) -> Embedder:
    """A pre-trained encoder (``.pt`` checkpoint or ``.safetensors`` export) whose
    ``encode(x, lengths=None, dense=False)`` turns NumPy clips ``(N, T, V, C)`` or
    ``(N, M, T, V, C)`` into features (:class:`pcm3.embedding.Embedder`, ``docs/embedding.md``)."""
    from pcm3.embedding import load_encoder as load

    return load(path, device, **options)


__all__ = ["Pcm3Error", "__version__", "load_encoder"]
