"""A linear classifier on fixed features: the one linear protocol every task shares.

Defaults are CMD's linear evaluation: SGD lr 0.1, momentum 0.9, weight
decay 0, batch 64, 80 epochs, lr ×0.1 at epochs 50 and 70, weights N(0, 0.01²), bias 0; the
head of the final epoch is used (no model selection on the test set).

Standardisation (``standardize``, on by default; a deviation from CMD, which feeds the raw
2048-d GRU output): features are shifted and scaled by the *training* features' per-dimension
mean and std. One learning rate then works for every representation the benchmark compares, a
128-d GRU feature bounded by tanh as well as 9600 raw coordinates in metres, whose scales and
offsets differ by orders of magnitude. (MAE's linear probe does the same with a BatchNorm
without affine parameters before the head.) The statistics live in the head, so test features
get exactly the training transform. Dimensions that are constant on the training set (std
<= 1e-6, e.g. an absent second person) are only centred; near-constant noisy dimensions are
scaled up like any other, which is the price of scale invariance (``standardize=false``
restores CMD's raw features).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcm3.errors import ConfigError, Pcm3Error

# (N, D) array or tensor, or a function epoch -> (N, D) (fresh features every epoch)
Features = np.ndarray | Tensor | Callable[[int], np.ndarray | Tensor]


@dataclass
class ProbeConfig:
    """Optimisation of the linear head (task configs extend this, so the keys stay flat)."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 80
    milestones: list[int] = field(default_factory=lambda: [50, 70])
    gamma: float = 0.1
    standardize: bool = True

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")


class LinearHead(nn.Module):
    """``(N, D) -> (N, K)`` logits of ``fc((features - mean) / std)``."""

    def __init__(self, mean: Tensor, std: Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())
        self.fc = nn.Linear(mean.numel(), num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc((features - self.mean) / self.std)


def _as_tensor(features: np.ndarray | Tensor, device: torch.device | str) -> Tensor:
    if isinstance(features, Tensor):
        return features.detach().to(device, torch.float32)
    return torch.tensor(np.asarray(features), dtype=torch.float32, device=device)  # a copy


def feature_statistics(features: Tensor, standardize: bool = True) -> tuple[Tensor, Tensor]:
    """Per-dimension mean and std ``(D,)`` of ``features`` ``(N, D)``; constant dimensions get
    std 1. Without ``standardize``: mean 0, std 1 (the identity)."""
    d = features.shape[1]
    if not standardize:
        return torch.zeros(d, device=features.device), torch.ones(d, device=features.device)
    mean = features.mean(0)
    std = features.std(0, unbiased=False)
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


def train_linear_head(
    features: Features,
    labels: np.ndarray | Tensor,
    num_classes: int,
    cfg: ProbeConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    on_epoch_end: Callable[[int, LinearHead], None] | None = None,
) -> LinearHead:
    """Train a :class:`LinearHead` on ``features`` ``(N, D)`` and ``labels`` ``(N,)`` in 0..K-1.

    ``features`` may be a function ``epoch -> (N, D)`` (rows in the order of ``labels``) for
    protocols that recompute augmented features every epoch; the standardisation statistics
    then come from epoch 0. Mini-batches are shuffled with a generator seeded by ``seed``,
    which also draws the initial weights. Returns the head after the final epoch, in eval mode.
    ``on_epoch_end(epoch, head)`` (0-based epoch) may look at the head after each epoch.
    """
    cfg = cfg or ProbeConfig()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    if y.numel() == 0:
        raise Pcm3Error("no labelled training samples for the linear head")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise Pcm3Error(f"labels must be in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    epoch_features = features if callable(features) else None
    x = _as_tensor(epoch_features(0) if epoch_features else features, device)  # type: ignore[arg-type]
    if x.dim() != 2 or x.shape[0] != y.numel():
        raise Pcm3Error(f"features must be (N={y.numel()}, D), got {tuple(x.shape)}")
    mean, std = feature_statistics(x, cfg.standardize)
    head = LinearHead(mean, std, num_classes).to(device)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.fc.weight.copy_(torch.randn(head.fc.weight.shape, generator=generator) * 0.01)
        head.fc.bias.zero_()
    optimizer = torch.optim.SGD(head.fc.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    head.train()
    normalised = (x - head.mean) / head.std  # once per feature set, not per batch
    del x
    for epoch in range(cfg.epochs):
        if epoch_features is not None and epoch > 0:
            normalised = (_as_tensor(epoch_features(epoch), device) - head.mean) / head.std
        order = torch.randperm(len(y), generator=generator).to(device)
        for start in range(0, len(y), cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(head.fc(normalised[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, head)
            head.train()
    return head.eval()


@torch.no_grad()
def predict_scores(head: LinearHead, features: np.ndarray | Tensor, softmax: bool = True,
                   batch_size: int = 8192) -> Tensor:
    """``(N, K)`` class probabilities (``softmax``) or logits of ``features`` ``(N, D)``, on the CPU."""
    head.eval()
    device = head.mean.device
    x = features if isinstance(features, Tensor) else torch.from_numpy(np.array(features, np.float32))
    out = []
    for start in range(0, len(x), batch_size):
        logits = head(x[start : start + batch_size].to(device, torch.float32))
        out.append((logits.softmax(1) if softmax else logits).cpu())
    return torch.cat(out) if out else torch.zeros(0, head.fc.out_features)


def topk_accuracy(scores: Tensor | np.ndarray, labels: Tensor | np.ndarray, k: int = 1) -> float:
    """Percent of rows whose label is among the ``k`` highest ``scores`` ``(N, K)`` (k is capped
    at K, so top-5 of a 3-class problem is 100)."""
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if len(labels) == 0:
        raise Pcm3Error("top-k accuracy of an empty test set")
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return float((top == labels.view(-1, 1)).any(1).double().mean() * 100.0)
