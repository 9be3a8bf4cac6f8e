"""Tiny run configs for every registered method (its default backbone's and its own ``tiny()``
options), shared by the contract tests."""

from __future__ import annotations

from pcm3.config import to_dict
from pcm3.methods.registry import get_method

from ..conftest import tiny_model


def tiny_method(method: str) -> list[str]:
    """Overrides of a tiny pre-training run of ``method`` on the tiny store."""
    entry = get_method(method)
    own = [f"{method}.{k}={v}" for k, v in to_dict(entry.options.tiny()).items()]
    return [*tiny_model(entry.default_backbone), f"method={method}", *own, "clip.min_frames=5",
            "clip.max_frames=9"]
