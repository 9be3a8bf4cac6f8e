"""Semi-supervised recognition: fine-tune on small labelled subsets of the training split
(CMD's semi-supervised protocol; ``docs/benchmark.md``).

For each ratio and each of ``seeds`` runs (seed ``ctx.seed + i``), a class-stratified random
subset of the labelled training clips is drawn (:func:`stratified_subset`: proportional to the
class sizes, at least one clip of every class, so on tiny data a ratio may label more than its
share) and the whole network is fine-tuned on it with the fine-tuning protocol
(:func:`finetune_encoder`); the test split is evaluated with the final weights. CMD draws a
non-stratified, unseeded subset and averages by hand; we stratify, seed and report mean ± std.

Metric keys per ratio (1 % -> ``1pct``, 0.5 % -> ``0p5pct``): ``top1_1pct``, ``top1_1pct_std``,
``top5_1pct``, ``top5_1pct_std`` and ``labelled_1pct`` (clips in each subset). The std is the
sample std over seeds (ddof 1; 0 for a single seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, register_task
from pcm3.tasks.features import open_trimmed, split_pair
from pcm3.tasks.finetune import FinetuneConfig, finetune_encoder
from pcm3.tasks.subsets import stratified_subset


@dataclass
class SemiConfig(FinetuneConfig):
    """The fine-tuning settings plus the labelled ratios and the number of seeds."""

    ratios: list[float] = field(default_factory=lambda: [0.01, 0.1])
    seeds: int = 5

    def validate(self) -> None:
        super().validate()
        if self.seeds < 1 or not self.ratios or not all(0.0 < r <= 1.0 for r in self.ratios):
            raise ConfigError(f"semi: seeds must be >= 1 and every ratio in (0, 1]; got seeds={self.seeds}, "
                              f"ratios={self.ratios}")


def ratio_key(ratio: float) -> str:
    """0.01 -> ``"1pct"``, 0.1 -> ``"10pct"``, 0.005 -> ``"0p5pct"``."""
    return f"{round(ratio * 100, 6):g}".replace(".", "p") + "pct"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@register_task("semi", SemiConfig, "fine-tune on class-stratified 1 % / 10 % labelled subsets, mean ± std")
def run(ctx: TaskContext, cfg: SemiConfig) -> dict[str, float]:
    store = open_trimmed(ctx.store_path, "semi")
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    metrics: dict[str, float] = {}
    for ratio in cfg.ratios:
        key = ratio_key(ratio)
        runs: dict[str, list[float]] = {"top1": [], "top5": []}
        sizes = []
        for i in range(cfg.seeds):
            seed = ctx.seed + i
            rows = stratified_subset(np.asarray(train.labels), ratio, seed)
            sizes.append(len(rows))
            result = finetune_encoder(ctx.encoder, train, test, cfg, seed, ctx.device, train_indices=rows)
            for name in runs:
                runs[name].append(result[name])
        for name, values in runs.items():
            metrics[f"{name}_{key}"], metrics[f"{name}_{key}_std"] = _mean_std(values)
        metrics[f"labelled_{key}"] = float(np.mean(sizes))
    return metrics
