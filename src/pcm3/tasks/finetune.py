"""Fine-tuning: the whole encoder plus a linear head trained on labelled clips.

Protocol (CMD's semi-supervised script, the only public fine-tuning code of the PCM3 line):
a copy of the encoder (the caller's is never touched) in train mode + ``Linear(D, K)``
(init N(0, 0.01²), bias 0); training view = the downstream feeder's random temporal crop,
scale U(0.5, 1), at least ``crop_min_frames`` frames, resized to the encoder's view length,
then the encoder's stream; SGD lr 0.01, momentum 0.9, wd 0, batch 64, 80 epochs, ×0.1 at 50
and 70. Evaluation: the centre-crop view (0.95) of the test split, with the FINAL weights
(no test-set model selection). The ``raw`` encoder has no parameters: only the head trains.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from pcm3.augment.temporal import temporal_crop_resize
from pcm3.data.batches import ClipBatches
from pcm3.data.store import SkeletonStore
from pcm3.engine.precision import autocast, grad_scaler, precision_on
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.modalities import to_stream
from pcm3.tasks.base import TaskContext, check_compatible, register_task
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.features import evaluation_labels, extract_features, labelled_rows, open_trimmed, split_pair
from pcm3.tasks.probe import topk_accuracy
from pcm3.tasks.subsets import subset_store


@dataclass
class FinetuneConfig:
    """Defaults: CMD's semi-supervised fine-tuning script."""

    train_split: str | None = None
    test_split: str | None = None
    epochs: int = 80
    milestones: list[int] = field(default_factory=lambda: [50, 70])
    lr_decay: float = 0.1
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_min_frames: int | None = None  # None: the encoder's view length (CMD: 64 of 64)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 only where it is native
    eval_batch_size: int = 256

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"finetune: epochs, batch_size and eval_batch_size must be >= 1, got "
                              f"{self.epochs}, {self.batch_size}, {self.eval_batch_size}")
        if self.lr <= 0 or list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"finetune: lr must be > 0 and milestones increasing, got lr={self.lr}, "
                              f"milestones={self.milestones}")


class FinetuneClassifier(nn.Module):
    """``encoder.forward_features`` then a linear head: ``(N, C, T, V, M) -> (N, K)`` logits."""

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int, generator: torch.Generator):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, num_classes)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=generator) * 0.01)
            self.head.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder.forward_features(x))


def _train_view(x: Tensor, lengths: Tensor, loaded: LoadedEncoder, store: SkeletonStore,
                cfg: FinetuneConfig, generator: torch.Generator) -> Tensor:
    min_frames = cfg.crop_min_frames or loaded.view_frames
    view = temporal_crop_resize(x, lengths, generator, out_len=loaded.view_frames,
                                scale=cfg.crop_scale, min_len=min_frames)
    return to_stream(view, loaded.stream, store.layout)


def _training_clips(store: SkeletonStore, rows: np.ndarray | None) -> SkeletonStore:
    """``store`` restricted to its labelled rows (and to ``rows`` when given)."""
    keep = labelled_rows(store)
    if rows is not None:
        keep = np.intersect1d(keep, np.asarray(rows, dtype=np.int64))
        if len(keep) == 0:
            raise Pcm3Error(f"store {store.path}: none of the chosen training rows of split "
                            f"{store.split_name!r} is labelled")
    return store if len(keep) == len(store) else subset_store(store, keep)


def train_classifier(loaded: LoadedEncoder, train_store: SkeletonStore, cfg: FinetuneConfig, seed: int,
                     device: torch.device, train_indices: np.ndarray | None = None) -> FinetuneClassifier:
    """A copy of ``loaded.encoder`` + head, trained on the labelled rows of ``train_store``
    (only rows ``train_indices`` when given); returned in eval mode. Deterministic given ``seed``."""
    check_compatible(loaded, train_store)
    precision, _ = precision_on(cfg.precision, device)
    train = _training_clips(train_store, train_indices)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # anything inside the model that draws from the global RNG
        model = FinetuneClassifier(copy.deepcopy(loaded.encoder), loaded.feature_dim,
                                   train_store.num_classes, generator).to(device)
        model.encoder.requires_grad_(True)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.milestones, cfg.lr_decay)
        scaler = grad_scaler(device, precision)
        batches = ClipBatches(train, cfg.batch_size, seed=seed, shuffle=True, drop_last=False)
        labels = torch.as_tensor(np.asarray(train.labels), dtype=torch.long)
        model.train()
        for epoch in range(cfg.epochs):
            for batch in batches.epoch(epoch):
                target = labels[batch.index].to(device)
                batch = batch.to(device)
                view = _train_view(batch.x, batch.lengths, loaded, train, cfg, generator)
                with autocast(device, precision):
                    logits = model(view)
                loss = nn.functional.cross_entropy(logits.float(), target)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            schedule.step()
    return model.eval()


@torch.no_grad()
def evaluate_classifier(model: FinetuneClassifier, loaded: LoadedEncoder, test_store: SkeletonStore,
                        device: torch.device, batch_size: int = 256) -> dict[str, float]:
    """``top1`` / ``top5`` (percent) of ``model`` on the centre-crop view of ``test_store``
    (every test clip must be labelled)."""
    check_compatible(loaded, test_store)
    truth = evaluation_labels(test_store)
    features = extract_features(model.encoder, test_store, device, frames=loaded.view_frames,
                                stream=loaded.stream, batch_size=batch_size)
    logits = model.head(torch.from_numpy(features).to(device)).float().cpu()
    return {"top1": topk_accuracy(logits, truth, 1), "top5": topk_accuracy(logits, truth, 5)}


def finetune_encoder(loaded: LoadedEncoder, train_store: SkeletonStore, test_store: SkeletonStore,
                     cfg: FinetuneConfig, seed: int, device: torch.device,
                     train_indices: np.ndarray | None = None) -> dict[str, float]:
    """Fine-tune a copy of ``loaded.encoder`` on ``train_store`` (rows ``train_indices`` when
    given) and return ``top1`` / ``top5`` on ``test_store`` with the final weights."""
    check_compatible(loaded, test_store)  # before any training
    evaluation_labels(test_store)
    model = train_classifier(loaded, train_store, cfg, seed, device, train_indices)
    return evaluate_classifier(model, loaded, test_store, device, cfg.eval_batch_size)


@register_task("finetune", FinetuneConfig, "whole encoder + linear head fine-tuned on the training split")
def run(ctx: TaskContext, cfg: FinetuneConfig) -> dict[str, float]:
    store = open_trimmed(ctx.store_path, "finetune")
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    return finetune_encoder(ctx.encoder, train, test, cfg, ctx.seed, ctx.device)
