import numpy as np
import pytest
import torch

from pcm3.config import from_dict
from pcm3.data import open_store
from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.features import split_pair
from pcm3.tasks.finetune import FinetuneConfig, finetune_encoder
from pcm3.tasks.semi import SemiConfig, ratio_key
from pcm3.tasks.subsets import stratified_subset

from ..conftest import HANDS8, tiny_store_path  # noqa: F401

CPU = torch.device("cpu")
SETTINGS = {"epochs": 2, "milestones": [1], "batch_size": 4, "lr": 0.05, "ratios": [0.1, 0.5], "seeds": 3}


def test_ratio_keys():
    assert [ratio_key(r) for r in (0.01, 0.1, 0.05, 0.2, 0.005, 1.0)] == [
        "1pct", "10pct", "5pct", "20pct", "0p5pct", "100pct"]


def test_mean_and_std_over_seeds_match_separate_runs(tiny_store_path):  # noqa: F811
    spec = get_task("semi")
    cfg = from_dict(spec.config, SETTINGS)
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    metrics = spec.run(TaskContext(raw, tiny_store_path, CPU, seed=7), cfg)
    assert set(metrics) == {f"{m}_{r}{s}" for m in ("top1", "top5") for r in ("10pct", "50pct")
                            for s in ("", "_std")} | {"labelled_10pct", "labelled_50pct"}
    # training classes have 6, 5, 5 clips: 10 % gives one clip each, 50 % gives 3 + 3 + 2
    assert metrics["labelled_10pct"] == 3 and metrics["labelled_50pct"] == 8
    train, test = split_pair(open_store(tiny_store_path), None, None)
    ft = from_dict(FinetuneConfig, {k: v for k, v in SETTINGS.items() if k not in ("ratios", "seeds")})
    top1 = [finetune_encoder(raw, train, test, ft, 7 + i, CPU,
                             train_indices=stratified_subset(train.labels, 0.1, 7 + i))["top1"]
            for i in range(3)]
    assert metrics["top1_10pct"] == pytest.approx(np.mean(top1))
    assert metrics["top1_10pct_std"] == pytest.approx(np.std(top1, ddof=1))
    assert metrics["top1_10pct_std"] > 0  # each seed labels different clips


def test_one_seed_has_zero_std(tiny_store_path):  # noqa: F811
    spec = get_task("semi")
    cfg = from_dict(spec.config, {**SETTINGS, "seeds": 1, "ratios": [1.0]})
    metrics = spec.run(TaskContext(raw_encoder(HANDS8, 3, 2, frames=16), tiny_store_path, CPU), cfg)
    assert metrics["top1_100pct_std"] == 0.0 and metrics["labelled_100pct"] == 16


def test_bad_settings():
    for bad in ({"ratios": [0.0]}, {"ratios": [1.5]}, {"ratios": []}, {"seeds": 0}):
        with pytest.raises(ConfigError, match="semi: seeds must be >= 1"):
            from_dict(SemiConfig, bad)
    with pytest.raises(ConfigError, match="milestones increasing"):
        from_dict(SemiConfig, {"milestones": [3, 1]})
