"""What ``pcm3 embed`` reads: the clips of a store (a split of it, or its untrimmed recordings)
or of videos (pose-estimated as by ``pcm3 data convert --format video``), and how it writes
their features.

Features go to ``OUT`` (``.npy``): ``(N, D)`` one row per clip, or with ``dense`` ``(sum of T_i, D)``
one row per frame, clip after clip. Beside it, ``OUT.ids.txt`` holds the N clip ids (one per line)
and ``OUT.json`` the ids, the lengths T_i, the encoder, the layout and, for videos, the frame of
the video where each clip starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.data.store import UNTRIMMED_DIR, SkeletonStore, open_store
from pcm3.embedding import Embedder
from pcm3.errors import Pcm3Error
from pcm3.layouts import Layout


@dataclass
class Clips:
    """N clips: ``clip(i)`` ``(C, T_i, V, M)`` float32; ``preprocessed``: they went through a
    store's pre-processing already (a store) or not yet (videos); ``info``: facts for OUT.json."""

    ids: list[str]
    layout: Layout
    clip_reader: Any
    preprocessed: bool
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def clip(self, i: int) -> np.ndarray:
        return self.clip_reader(i)


def is_store(path: Path) -> bool:
    return (path / "meta.json").exists() or (path / UNTRIMMED_DIR / "meta.json").exists()


def store_clips(path: str | Path, split: str | None = None) -> Clips:
    """The clips of a trimmed store (or of ``split``), or the recordings of an untrimmed one."""
    store = open_store(path)
    if split is not None:
        store = store.split(split)
    reader = store.sample if isinstance(store, SkeletonStore) else store.sequence
    kind = "clips" if isinstance(store, SkeletonStore) else "untrimmed recordings"
    info = {"data": str(path), "split": store.split_name, "kind": kind, "fingerprint": store.fingerprint}
    return Clips([str(i) for i in store.ids], store.layout, reader, True, info)


def video_clips(path: str | Path, options: Any, skip_bad: bool = False) -> Clips:
    """Every video under ``path`` (a file or a folder, as the ``video`` format reads it) as a
    clip, cut to the frames with a person; recordings under ``sequences/`` are not cut."""
    from pcm3.data.formats import ReadOptions, read

    converted = read(path, "video", ReadOptions(skip_bad=skip_bad, video=options))
    arrays = [s.x for s in converted.samples] + [s.x for s in converted.sequences]
    ids = [s.id for s in converted.samples] + [s.id for s in converted.sequences]
    videos = converted.source["videos"]
    first = [videos[s.id]["person_from"] for s in converted.samples] + [0] * len(converted.sequences)
    info = {"data": str(path), "kind": "videos", "first_frame": first, "pose": converted.source,
            "skipped": [s.to_dict() for s in converted.skipped]}
    return Clips(ids, converted.layout, lambda i: arrays[i], False, info)


def _batches(clips: Clips, frames_per_batch: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(start, stop, x (n, M, T, V, C), lengths (n,))``: consecutive clips, zero padded."""
    start = 0
    while start < len(clips):
        group = [clips.clip(start)]
        while start + len(group) < len(clips):
            nxt = clips.clip(start + len(group))
            longest = max(max(c.shape[1] for c in group), nxt.shape[1])
            if longest * (len(group) + 1) > frames_per_batch:
                break
            group.append(nxt)
        lengths = np.array([c.shape[1] for c in group], dtype=np.int64)
        c, _, v, m = group[0].shape
        x = np.zeros((len(group), m, int(lengths.max()), v, c), dtype=np.float32)
        for row, clip in enumerate(group):
            x[row, :, : clip.shape[1]] = clip.transpose(3, 1, 2, 0)
        yield start, start + len(group), x, lengths
        start += len(group)


def embed_clips(embedder: Embedder, clips: Clips, dense: bool = False, map_layout: str | None = None,
                absent: str = "nearest", frames_per_batch: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """``(features, lengths)`` of every clip: ``(N, D)``, or with ``dense`` ``(sum T_i, D)``.

    Clips of another layout than the encoder's need ``map_layout`` = the encoder's layout.
    Store clips are used as stored unless they are mapped; videos and mapped clips are
    pre-processed as a store would be.
    """
    target = embedder.layout
    if clips.layout.to_dict() != target.to_dict():
        if map_layout is None:
            raise Pcm3Error(f"the data has layout {clips.layout.name!r}, the encoder reads {target.name!r}: "
                            f"add --map-layout {target.name} to map the joints (docs/layouts.md)")
        if map_layout != target.name:
            raise Pcm3Error(f"--map-layout {map_layout}: the encoder reads layout {target.name!r}")
    mapped = clips.layout.to_dict() != target.to_dict()
    preprocess = mapped or not clips.preprocessed
    parts, lengths = [], []
    for _, _, x, lens in _batches(clips, frames_per_batch):
        feats = embedder.encode(x, lens, dense=dense, layout=clips.layout, absent=absent,
                                preprocess=preprocess)
        parts += [f[:n] for f, n in zip(feats, lens, strict=True)] if dense else [feats]
        lengths.append(lens)
    if not parts:
        raise Pcm3Error("no clips to embed")
    return np.concatenate(parts), np.concatenate(lengths)


def write_features(out: str | Path, features: np.ndarray, clips: Clips, lengths: np.ndarray,
                   embedder: Embedder, dense: bool) -> list[Path]:
    """Write ``out`` (.npy), ``out.ids.txt`` and ``out.json`` (module docstring); their paths."""
    out = Path(out)
    if out.suffix != ".npy":
        raise Pcm3Error(f"{out}: the features file must end in .npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, features.astype(np.float32))
    ids_path, meta_path = out.with_suffix(".ids.txt"), out.with_suffix(".json")
    ids_path.write_text("".join(f"{i}\n" for i in clips.ids))
    meta = {"ids": clips.ids, "lengths": [int(n) for n in lengths], "dense": dense,
            "shape": list(features.shape), "encoder": embedder.loaded.source, "layout": embedder.layout.name,
            "data_layout": clips.layout.name, "stream": embedder.loaded.stream, **clips.info}
    meta_path.write_text(json.dumps(meta, indent=1))
    return [out, ids_path, meta_path]
