"""Sequence features of a frozen encoder over a store, on the deterministic evaluation view or
a random crop, and 1-NN accuracy: what the trainer's online health signal and the downstream
tasks (:mod:`pcm3.tasks.features`) share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pcm3.augment.temporal import centre_crop_resize, temporal_crop_resize
from pcm3.data.batches import ClipBatches
from pcm3.data.store import SkeletonStore
from pcm3.modalities import to_stream

# (view (B, C, frames, V, M), rows (B,) positions in the store) -> view of the same shape
ViewTransform = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (x (B, C, T, V, M) padded clips, lengths (B,)) -> view (B, C, frames, V, M)
MakeView = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def encode_views(
    encoder: torch.nn.Module,
    store: SkeletonStore,
    device: torch.device,
    make_view: MakeView,
    stream: str = "joint",
    batch_size: int = 256,
    view_transform: ViewTransform | None = None,
) -> np.ndarray:
    """``(N, D)`` float32 features of ``make_view`` of every clip of ``store``, in store order.

    Per batch: ``make_view(x, lengths)``, then ``view_transform(view, rows)`` (e.g. occlusion),
    then the stream's modality, then ``encoder.forward_features`` in eval mode.
    """
    encoder.eval()
    reader = ClipBatches(store, batch_size, shuffle=False, drop_last=False)
    out = []
    for batch in reader.epoch(0):
        batch = batch.to(device)
        view = make_view(batch.x, batch.lengths)
        if view_transform is not None:
            view = view_transform(view, batch.index)
        view = to_stream(view, stream, store.layout)
        out.append(encoder.forward_features(view).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def extract_features(
    encoder: torch.nn.Module,
    store: SkeletonStore,
    device: torch.device,
    frames: int = 64,
    stream: str = "joint",
    batch_size: int = 256,
    crop_ratio: float = 0.95,
    view_transform: ViewTransform | None = None,
) -> np.ndarray:
    """``(N, D)`` float32 sequence features of every sample of ``store``, in store order.

    The view is the official evaluation view (the test view of CMD's and PCM3's linear
    evaluation): the central ``crop_ratio`` of each clip resized to ``frames`` frames, then
    ``view_transform`` if given (applied to the resized joint coordinates), then the stream's
    modality. The encoder is put in eval mode (its BatchNorm statistics are not touched).
    """

    def centre_view(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return centre_crop_resize(x, lengths, out_len=frames, ratio=crop_ratio)

    return encode_views(encoder, store, device, centre_view, stream, batch_size, view_transform)


@torch.no_grad()
def random_crop_features(
    encoder: torch.nn.Module,
    store: SkeletonStore,
    device: torch.device,
    generator: torch.Generator,
    frames: int = 64,
    stream: str = "joint",
    scale: tuple[float, float] = (0.5, 1.0),
    batch_size: int = 256,
) -> np.ndarray:
    """``(N, D)`` features of a fresh random crop of every clip (the CMD downstream training
    view: crop scale ``U(scale)``, at least ``frames`` frames or the whole clip, resized to
    ``frames``). The crops are drawn from ``generator`` batch by batch."""

    def random_view(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return temporal_crop_resize(x, lengths, generator, out_len=frames, scale=scale, min_len=frames)

    return encode_views(encoder, store, device, random_view, stream, batch_size)


def knn_top1(
    gallery: np.ndarray, gallery_labels: np.ndarray, query: np.ndarray, query_labels: np.ndarray,
    k: int = 1,
) -> float:
    """Top-1 accuracy of a k-NN classifier, cosine distance on L2-normalised features."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import normalize

    keep = gallery_labels >= 0
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    clf.fit(normalize(gallery[keep]), gallery_labels[keep])
    return float((clf.predict(normalize(query)) == query_labels).mean())
