"""The per-frame classifier of the detection task: ``Linear(D, K + 1)`` on fixed-scaled frame
features (output 0 = background), trained by SGD on cached features (protocol:
:mod:`pcm3.tasks.detection`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from pcm3.tasks.detection import DetectionConfig


class FrameClassifier(nn.Module):
    """``(N, D) -> (N, K + 1)`` logits: fixed standardisation, then one linear layer."""

    def __init__(self, mean: Tensor, std: Tensor, num_outputs: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(mean.numel(), num_outputs)
        self.num_outputs = num_outputs

    def forward(self, features: Tensor) -> Tensor:
        return self.linear((features - self.mean) / self.std)


def train_frame_classifier(features: Tensor, targets: Tensor, num_outputs: int, cfg: DetectionConfig,
                           seed: int) -> FrameClassifier:
    """SGD on ``(N, D)`` frame features (scaled IN PLACE, see ``cfg.standardize``) and ``(N,)``
    targets; seeded init N(0, 0.01²) and shuffling; the final-epoch classifier (which applies the
    same scaling to its inputs), on the features' device, in eval mode."""
    n, device = features.shape[0], features.device
    mean, std = torch.zeros(features.shape[1], device=device), torch.ones(features.shape[1], device=device)
    if cfg.standardize != "none":
        mean, std = features.mean(0), features.std(0, unbiased=False)
        if cfg.standardize == "global":
            std = std.square().mean().sqrt().clamp(min=1e-12).expand_as(std).clone()
        std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant inputs stay as they are
        features.sub_(mean).div_(std)
    generator = torch.Generator().manual_seed(seed)
    classifier = FrameClassifier(mean, std, num_outputs)
    with torch.no_grad():
        weight_init = torch.randn(classifier.linear.weight.shape, generator=generator) * 0.01
        classifier.linear.weight.copy_(weight_init)
        classifier.linear.bias.zero_()
    classifier.to(device)
    weight = None
    if cfg.class_balanced:
        counts = torch.bincount(targets, minlength=num_outputs).float()
        weight = torch.where(counts > 0, n / ((counts > 0).sum() * counts.clamp(min=1)), 0.0)
    optimizer = torch.optim.SGD(classifier.linear.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.milestones, cfg.lr_decay)
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for lo in range(0, n, cfg.batch_size):
            batch = order[lo : lo + cfg.batch_size]
            logits = classifier.linear(features[batch])
            loss = nn.functional.cross_entropy(logits, targets[batch], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
    return classifier.eval()
