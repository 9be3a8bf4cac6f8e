"""pcm3: self-supervised skeleton action representation learning (PCM3 / PCM3++) and benchmark."""

from pcm3.errors import Pcm3Error

__version__ = "0.1.0.dev0"

__all__ = ["Pcm3Error", "__version__"]
