"""Retrieval / k-NN evaluation (CMD ``action_retrieval_cmd.py``).

Frozen encoder, centre-crop evaluation view for gallery and queries; features L2-normalised;
cosine distance; the labelled training split is the gallery, the test split the queries.

- ``top1``: accuracy of a ``k``-NN classifier (k = 1 is the official protocol);
- ``top5_precision``: retrieval precision@5, the mean over queries of the fraction of the 5
  nearest gallery items sharing the query's label (fewer when the gallery is smaller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, register_task
from pcm3.tasks.features import (
    FrozenFeatureConfig,
    cached_features,
    knn_top1,
    labelled_splits,
)


@dataclass
class KnnConfig(FrozenFeatureConfig):
    k: int = 1
    precision_at: int = 5

    def validate(self) -> None:
        if self.k < 1 or self.precision_at < 1:
            raise ConfigError(f"k and precision_at must be >= 1, got {self.k} and {self.precision_at}")


def retrieval_precision(gallery: np.ndarray, gallery_labels: np.ndarray, query: np.ndarray,
                        query_labels: np.ndarray, k: int = 5) -> float:
    """Percent: mean over queries ``(Q, D)`` of the fraction of the ``k`` nearest (cosine)
    gallery items ``(G, D)`` with the query's label (k is capped at G)."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import normalize

    k = min(k, len(gallery))
    index = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(normalize(gallery))
    neighbours = index.kneighbors(normalize(query), return_distance=False)  # (Q, k)
    same = np.asarray(gallery_labels)[neighbours] == np.asarray(query_labels)[:, None]
    return float(same.mean() * 100.0)


@register_task("knn", KnnConfig, "k-NN retrieval on frozen features, cosine (top-1, precision@5)")
def run(ctx: TaskContext, cfg: KnnConfig) -> dict[str, float]:
    _, train, test, rows, y_test = labelled_splits(ctx, cfg, "knn")
    gallery = cached_features(ctx.encoder, train, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)[rows]
    query = cached_features(ctx.encoder, test, ctx.device, cfg.feature_batch_size, cfg.crop_ratio)
    y_gallery = train.labels[rows]
    k = min(cfg.k, len(rows))
    return {
        "top1": knn_top1(gallery, y_gallery, query, y_test, k=k) * 100.0,
        f"top{cfg.precision_at}_precision": retrieval_precision(gallery, y_gallery, query, y_test,
                                                                cfg.precision_at),
    }
