"""What a format reader hands to the store writer: plain records, no I/O, no training code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pcm3.layouts import Layout


@dataclass
class Sample:
    """One trimmed action clip.

    ``x``: ``(C, T, V, M)`` float32 with only the recorded frames (``T >= 1``);
    ``label``: 0-based class index, ``-1`` when unlabelled;
    ``confidence``: optional ``(T, V, M)`` per-joint scores (2D pose estimators).
    """

    id: str
    x: np.ndarray
    label: int = -1
    confidence: np.ndarray | None = None


@dataclass
class Sequence:
    """One untrimmed recording with its action intervals.

    ``x``: ``(C, T, V, M)`` float32; ``intervals``: ``(K, 3)`` int64 rows
    ``(label, start, end)`` with ``0 <= start < end <= T`` (end exclusive).
    """

    id: str
    x: np.ndarray
    intervals: np.ndarray


@dataclass
class Skipped:
    """A sample left out by ``--skip-bad``, and why."""

    path: str
    sample: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sample": self.sample, "reason": self.reason}


@dataclass
class Converted:
    """Everything one reader produced from one source.

    ``splits`` / ``sequence_splits`` map a split name (``"xsub/train"``) to member ids.
    ``source`` describes where the data came from (recorded in the store metadata).
    """

    layout: Layout
    class_names: list[str]
    samples: list[Sample] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)
    sequences: list[Sequence] = field(default_factory=list)
    sequence_splits: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
