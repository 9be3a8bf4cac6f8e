"""Frozen-encoder features on the deterministic evaluation view, and 1-NN retrieval."""

from __future__ import annotations

import numpy as np
import torch

from pcm3.augment.temporal import centre_crop_resize
from pcm3.data.store import SkeletonStore
from pcm3.engine.batches import ClipBatches
from pcm3.modalities import to_stream


@torch.no_grad()
def extract_features(
    encoder: torch.nn.Module,
    store: SkeletonStore,
    device: torch.device,
    frames: int = 64,
    stream: str = "joint",
    batch_size: int = 256,
    crop_ratio: float = 0.95,
) -> np.ndarray:
    """``(N, D)`` float32 sequence features of every sample of ``store``, in store order.

    The view is the official evaluation view: the central ``crop_ratio`` of each clip resized
    to ``frames`` frames (reference notes §6.1), then the stream's modality. The encoder is
    put in eval mode (its BatchNorm statistics are not touched).
    """
    encoder.eval()
    reader = ClipBatches(store, batch_size, shuffle=False, drop_last=False)
    out = []
    for batch in reader.epoch(0):
        batch = batch.to(device)
        view = centre_crop_resize(batch.x, batch.lengths, out_len=frames, ratio=crop_ratio)
        view = to_stream(view, stream, store.layout)
        out.append(encoder.forward_features(view).float().cpu())
    return torch.cat(out).numpy()


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
