"""What every format reader shares: its options, its bad-sample policy, basic checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from pcm3.data.records import Skipped
from pcm3.errors import DataError

if TYPE_CHECKING:
    from pcm3.data.pose.estimator import VideoPoseOptions

T = TypeVar("T")


@dataclass
class ReadOptions:
    """Options a reader may use; each reader documents which ones it reads.

    ``layout``: layout name or YAML path (formats without a fixed layout);
    ``missing_list``: NTU missing-skeleton list(s) to drop; ``split_file``: overrides the
    format's split file; ``labels``: a label file or folder when not found beside the data;
    ``max_bodies``: bodies kept per sample (by motion energy); ``skip_bad``: skip and report
    bad samples instead of stopping at the first one; ``video``: how videos become skeletons
    (``video`` format; None = the defaults of :class:`~pcm3.data.pose.estimator.VideoPoseOptions`).
    """

    layout: str | None = None
    missing_list: tuple[Path, ...] = ()
    split_file: Path | None = None
    labels: Path | None = None
    max_bodies: int = 2
    skip_bad: bool = False
    video: VideoPoseOptions | None = None


class BadSamples:
    """Applies the ``--skip-bad`` policy: raise the first :class:`DataError`, or record it."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[Skipped] = []

    def attempt(self, fn: Callable[[], T], path: str | Path, sample: str | None = None) -> T | None:
        """``fn()``, or ``None`` after recording its :class:`DataError` when skipping."""
        try:
            return fn()
        except DataError as exc:
            if not self.skip_bad:
                raise
            self.skipped.append(Skipped(str(exc.path or path), exc.sample or sample, exc.problem))
            return None


def check_coordinates(x: np.ndarray, path: str | Path, sample: str | None, joints: int | None) -> None:
    """Raise a :class:`DataError` unless ``x (C, T, V, M)`` is non-empty, finite, V == joints."""
    if x.ndim != 4:
        raise DataError(f"expected a (C, T, V, M) array, got shape {x.shape}", path=path, sample=sample)
    if x.shape[1] == 0:
        raise DataError("empty sequence (0 frames)", path=path, sample=sample)
    if joints is not None and x.shape[2] != joints:
        raise DataError(f"{x.shape[2]} joints per body, expected {joints}", path=path, sample=sample)
    finite = np.isfinite(x)
    if not finite.all():
        frame = int(np.nonzero(~finite.all(axis=(0, 2, 3)))[0][0])
        raise DataError(f"NaN or inf coordinates (first at frame {frame})", path=path, sample=sample)
