import numpy as np
import pytest
import torch

from pcm3.config import from_dict
from pcm3.data import open_store
from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.features import extract_features
from pcm3.tasks.knn import retrieval_precision

from ..conftest import HANDS8


def test_precision_at_k_by_hand():
    # gallery directions (cosine ignores the length): angles 0, 10, 20, 90, 100 degrees
    angles = np.deg2rad([0, 10, 20, 90, 100])
    gallery = np.stack([np.cos(angles), np.sin(angles)], 1) * np.array([[1], [2], [3], [1], [5]])
    gallery_labels = np.array([0, 0, 1, 1, 1])
    query = np.array([[1.0, 0.05], [0.0, 3.0]])  # near 0 degrees; exactly 90 degrees
    query_labels = np.array([0, 1])
    # query 0, 3 nearest: 0 (0), 10 (0), 20 (1) -> 2/3; query 1: 90 (1), 100 (1), 20 (1) -> 3/3
    assert retrieval_precision(gallery, gallery_labels, query, query_labels, k=3) == pytest.approx(
        100 * (2 / 3 + 1) / 2)
    # k = 1: both nearest share the label; k = 5 = the whole gallery: 2/5 and 3/5
    assert retrieval_precision(gallery, gallery_labels, query, query_labels, k=1) == 100.0
    assert retrieval_precision(gallery, gallery_labels, query, query_labels, k=5) == pytest.approx(50.0)
    assert retrieval_precision(gallery, gallery_labels, query, query_labels, k=9) == pytest.approx(50.0)


def _run(encoder, store_path, **overrides):
    spec = get_task("knn")
    ctx = TaskContext(encoder, store_path, torch.device("cpu"), 0)
    return spec.run(ctx, from_dict(spec.config, overrides))


def test_knn_task_matches_a_cosine_nearest_neighbour_reference(tiny_store_path):
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    metrics = _run(raw, tiny_store_path)
    assert set(metrics) == {"top1", "top5_precision"}
    store = open_store(tiny_store_path)
    train, test = store.split("xsub/train"), store.split("xsub/val")
    g = extract_features(raw.encoder, train, torch.device("cpu"), 16)
    q = extract_features(raw.encoder, test, torch.device("cpu"), 16)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    similarity = q @ g.T
    nearest = np.argsort(-similarity, axis=1)
    top1 = 100 * np.mean(train.labels[nearest[:, 0]] == test.labels)
    precision = 100 * np.mean(train.labels[nearest[:, :5]] == test.labels[:, None])
    assert metrics["top1"] == pytest.approx(top1)
    assert metrics["top5_precision"] == pytest.approx(precision)
    assert _run(raw, tiny_store_path, k=3, precision_at=2).keys() == {"top1", "top2_precision"}


def test_bad_k():
    with pytest.raises(ConfigError, match="k and precision_at"):
        from_dict(get_task("knn").config, {"k": 0})
