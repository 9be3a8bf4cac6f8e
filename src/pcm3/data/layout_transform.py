"""Skeleton data put into another joint layout (:mod:`pcm3.layout_mapping`), as records or as a
new store that every task reads like any other.

The mapped data is pre-processed again with the target layout's joints (by default the steps
``repair, center, align``): a MediaPipe or COCO layout has no centre joint and no up pair, the
NTU and Kinect v1 layouts have them. Repair and centring give the same result whether the data
was mapped before or after them; alignment does not quite: data aligned with the source
layout's joints (COCO's and MediaPipe's shoulders only) and re-aligned after mapping can differ
from data mapped first by a rotation about the across (shoulder) axis. Map while converting
(``pcm3 data convert --map-layout``) to align once, with the target's joints.
"""

from __future__ import annotations

from collections.abc import Sequence as Steps
from dataclasses import replace
from pathlib import Path

import numpy as np

from pcm3.data.preprocess import STEPS, describe, make_transform
from pcm3.data.records import Converted, Sample, Sequence
from pcm3.data.store import (
    UNTRIMMED_DIR,
    SkeletonStore,
    UntrimmedStore,
    WriteOptions,
    open_store,
    write_trimmed,
    write_untrimmed,
)
from pcm3.errors import DataError
from pcm3.layout_mapping import LayoutMapping, layout_mapping
from pcm3.layouts import Layout


def map_converted(converted: Converted, target: Layout | str | LayoutMapping,
                  absent: str = "nearest") -> Converted:
    """``converted`` with every sample ``(C, T, V, M)`` and sequence in layout ``target`` (a
    layout, or a mapping from ``converted.layout``).

    Per-joint confidences ``(T, V, M)`` are mapped with the same weights. The mapping is
    recorded in ``source["layout_mapping"]``.
    """
    mapping = (target if isinstance(target, LayoutMapping)
               else layout_mapping(converted.layout, target, absent))
    if mapping.source.to_dict() != converted.layout.to_dict():
        raise DataError(f"the data has layout {converted.layout.name!r}; the mapping reads "
                        f"{mapping.source.name!r}")

    def conf(c: np.ndarray | None) -> np.ndarray | None:
        return None if c is None else mapping.apply(c[None], joint_axis=2, channel_axis=0)[0]

    samples = [replace(s, x=mapping.apply(s.x, joint_axis=2, channel_axis=0), confidence=conf(s.confidence))
               for s in converted.samples]
    sequences = [replace(s, x=mapping.apply(s.x, joint_axis=2, channel_axis=0)) for s in converted.sequences]
    source = dict(converted.source, layout_mapping=mapping.to_dict())
    return replace(converted, layout=mapping.target, samples=samples, sequences=sequences, source=source)


def _trimmed_records(store: SkeletonStore) -> tuple[list[Sample], dict[str, list[str]]]:
    ids = [str(i) for i in store.ids]
    samples = []
    for i in range(len(store)):
        conf = None
        if store.confidence is not None:
            conf = np.asarray(store.confidence[i])[: int(store.lengths[i])]
        samples.append(Sample(ids[i], store.sample(i), int(store.labels[i]), conf))
    splits = {name: [ids[j] for j in store.split(name).indices.tolist()] for name in store.split_names}
    return samples, splits


def _untrimmed_records(store: UntrimmedStore) -> tuple[list[Sequence], dict[str, list[str]]]:
    ids = [str(i) for i in store.ids]
    sequences = [Sequence(ids[i], store.sequence(i), store.intervals(i)) for i in range(len(store))]
    splits = {name: [ids[j] for j in store.split(name).indices.tolist()] for name in store.split_names}
    return sequences, splits


def store_records(path: str | Path) -> Converted:
    """Everything a store folder holds (its clips and its ``untrimmed/`` recordings) as records."""
    path = Path(path)
    store = open_store(path)
    trimmed = store if isinstance(store, SkeletonStore) else None
    untrimmed = store if isinstance(store, UntrimmedStore) else None
    if trimmed is not None and (path / UNTRIMMED_DIR / "meta.json").exists():
        untrimmed = UntrimmedStore(path / UNTRIMMED_DIR)
    out = Converted(layout=store.layout, class_names=list(store.class_names),
                    source={"format": "store", "path": str(path), "fingerprint": store.fingerprint})
    if trimmed is not None:
        out.samples, out.splits = _trimmed_records(trimmed)
    if untrimmed is not None:
        out.sequences, out.sequence_splits = _untrimmed_records(untrimmed)
    return out


def write_mapped_store(src: str | Path, out: str | Path, target: Layout | str, absent: str = "nearest",
                       steps: Steps[str] = STEPS) -> tuple[LayoutMapping, SkeletonStore | UntrimmedStore]:
    """Write the store at ``src`` in layout ``target`` to ``out`` (clips at ``out``, recordings at
    ``out/untrimmed``), pre-processed with ``steps`` (untrimmed recordings: without ``repair``).

    Returns the mapping and the new trimmed store (the untrimmed one when there are no clips).
    The whole store is read into memory.
    """
    src, out = Path(src), Path(out)
    if src.resolve() == out.resolve():
        raise DataError("the mapped store must go to another folder than its source", path=out)
    records = store_records(src)
    mapping = layout_mapping(records.layout, target, absent)
    converted = map_converted(records, mapping)
    layout = converted.layout
    written: SkeletonStore | UntrimmedStore | None = None
    if converted.sequences:
        seq_steps = tuple(s for s in steps if s != "repair")
        channels = converted.sequences[0].x.shape[0]
        out.mkdir(parents=True, exist_ok=True)
        written = write_untrimmed(out / UNTRIMMED_DIR, converted, make_transform(layout, seq_steps),
                                  describe(layout, seq_steps, channels))
    if converted.samples:
        if "repair" in steps and any(s.confidence is not None for s in converted.samples):
            steps = tuple(s for s in steps if s != "repair")  # repair moves frames, scores would not follow
        channels = converted.samples[0].x.shape[0]
        written = write_trimmed(out, converted, WriteOptions(), make_transform(layout, steps),
                                describe(layout, steps, channels))
    if written is None:
        raise DataError("the store holds neither clips nor recordings", path=src)
    return mapping, written
