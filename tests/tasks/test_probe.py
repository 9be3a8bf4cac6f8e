import numpy as np
import pytest
import torch

from pcm3.config import from_dict
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.tasks.probe import (
    ProbeConfig,
    feature_statistics,
    predict_scores,
    topk_accuracy,
    train_linear_head,
)


def _clusters(n_per_class=20, dim=6, classes=3, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 3
    labels = np.repeat(np.arange(classes), n_per_class)
    features = centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))
    return features.astype(np.float32), labels


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert topk_accuracy(scores, [2, 1], 1) == 0.0
    assert topk_accuracy(scores, [2, 1], 2) == 100.0  # row 0: {1, 2}; row 1: {0, 1}
    assert topk_accuracy(scores, [1, 1], 1) == 50.0
    assert topk_accuracy(scores, [2, 2], 5) == 100.0  # k capped at K = 3


def test_separable_clusters_are_learned_and_scores_are_probabilities():
    x, y = _clusters()
    head = train_linear_head(x, y, 3, ProbeConfig(epochs=10), seed=0)
    probs = predict_scores(head, x)
    assert probs.shape == (60, 3)
    torch.testing.assert_close(probs.sum(1), torch.ones(60))
    assert topk_accuracy(probs, y) == 100.0
    logits = predict_scores(head, x, softmax=False)
    torch.testing.assert_close(logits, head(torch.from_numpy(x)))
    assert not head.training


def test_standardisation_uses_training_statistics_and_makes_the_scale_irrelevant():
    x, y = _clusters()
    mean, std = feature_statistics(torch.from_numpy(x))
    torch.testing.assert_close(mean, torch.from_numpy(x.mean(0)))
    torch.testing.assert_close(std, torch.from_numpy(x.std(0)))
    cfg = ProbeConfig(epochs=5)
    small = train_linear_head(x, y, 3, cfg, seed=1)
    big = train_linear_head(x * 1000.0 + 5.0, y, 3, cfg, seed=1)  # e.g. raw coordinates in mm
    torch.testing.assert_close(small.fc.weight, big.fc.weight, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(predict_scores(small, x), predict_scores(big, x * 1000.0 + 5.0),
                               rtol=1e-3, atol=1e-4)
    raw = train_linear_head(x, y, 3, ProbeConfig(epochs=1, standardize=False), seed=1)
    assert torch.equal(raw.mean, torch.zeros(6)) and torch.equal(raw.std, torch.ones(6))


def test_constant_feature_dimensions_do_not_divide_by_zero():
    x, y = _clusters()
    x[:, 2] = 7.0
    head = train_linear_head(x, y, 3, ProbeConfig(epochs=3))
    assert head.std[2] == 1.0 and torch.isfinite(head.fc.weight).all()


def test_initialisation_is_normal_0_01_and_bias_zero():
    x, y = _clusters(n_per_class=4)
    wide = np.tile(x, (1, 200))  # 1200 dimensions: enough weights to estimate their std
    head = train_linear_head(wide, y, 3, ProbeConfig(epochs=1, lr=0.0), seed=3)  # lr 0: the init
    w = head.fc.weight.detach()
    assert abs(float(w.std()) - 0.01) < 0.001 and abs(float(w.mean())) < 0.001
    assert torch.equal(head.fc.bias, torch.zeros(3))


def test_deterministic_given_the_seed():
    x, y = _clusters(spread=3.0)  # overlapping: the result depends on the batch order
    cfg = ProbeConfig(epochs=3)
    a, b = (train_linear_head(x, y, 3, cfg, seed=5) for _ in range(2))
    c = train_linear_head(x, y, 3, cfg, seed=6)
    assert torch.equal(a.fc.weight, b.fc.weight)
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_learning_rate_schedule_steps_at_the_milestones(monkeypatch):
    x, y = _clusters(n_per_class=2)
    seen, lrs = [], []

    def features(epoch):
        seen.append(epoch)
        return x

    step = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    train_linear_head(features, y, 3, ProbeConfig(epochs=4, milestones=[1, 3], lr=1.0, gamma=0.5))
    assert seen == [0, 1, 2, 3]  # a fresh feature set per epoch (augmented protocols)
    assert lrs == [1.0, 0.5, 0.5, 0.25]  # one step per epoch (6 samples < batch 64)


def test_bad_labels_and_shapes_and_config():
    x, y = _clusters(n_per_class=2)
    with pytest.raises(Pcm3Error, match=r"labels must be in 0\.\.1"):
        train_linear_head(x, y, 2)
    with pytest.raises(Pcm3Error, match="features must be"):
        train_linear_head(x[:3], y, 3)
    with pytest.raises(ConfigError, match="epochs and batch_size"):
        from_dict(ProbeConfig, {"epochs": 0})
    assert from_dict(ProbeConfig, {}) == ProbeConfig()
    assert (ProbeConfig().lr, ProbeConfig().batch_size, ProbeConfig().epochs, ProbeConfig().milestones) == (
        0.1, 64, 80, [50, 70])
