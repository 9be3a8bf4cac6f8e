"""Data: format readers, pre-processing, the canonical store, the built-in dataset."""

from pcm3.data.records import Converted, Sample, Sequence, Skipped
from pcm3.data.store import (
    SkeletonStore,
    UntrimmedStore,
    open_store,
    open_untrimmed,
    write_store,
)

__all__ = [
    "Converted",
    "Sample",
    "Sequence",
    "SkeletonStore",
    "Skipped",
    "UntrimmedStore",
    "open_store",
    "open_untrimmed",
    "write_store",
]
