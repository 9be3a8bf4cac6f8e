"""The shipped SkeletonCLR, MAMP and CMD configs: the official settings at paper scale, and the
CPU-sized quick configs train as written (here a step on the tiny store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcm3.cli import main
from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig

ROOT = Path(__file__).resolve().parents[1] / "configs"
PAPER = [f"{m}_{d}_{s}" for m in ("skeletonclr", "mamp", "cmd")
         for d, s in (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"))]


@pytest.mark.parametrize("name", PAPER)
def test_paper_configs_have_the_official_settings(name):
    cfg = load_config(PretrainConfig, ROOT / f"{name}.yaml")
    o, split = cfg.method_options, name.rsplit("_", 1)[1]
    assert cfg.split == f"{split}/train" and cfg.stream == "joint"
    assert cfg.batch_size == (64 if cfg.method == "cmd" else 128)
    if cfg.method == "skeletonclr":
        assert cfg.model.backbone == "stgcn" and cfg.model.options.base_channels == 16
        assert (o.queue_size, o.momentum, o.temperature, o.shear_magnitude, o.padding_ratio) == (
            32768, 0.999, 0.07, 0.5, 6)
        assert (cfg.epochs, cfg.optim.name, cfg.optim.lr, cfg.optim.milestones) == (300, "sgd", 0.1, [250])
        assert cfg.augment.view_frames == 50
    elif cfg.method == "cmd":
        assert cfg.model.backbone == "bigru" and cfg.model.options.hidden_size == 1024
        assert (o.queue_size, o.momentum, o.temperature, o.topk) == (16384, 0.999, 0.07, 8192)
        assert (o.teacher_temperature, o.student_temperature, o.cmd_weight) == (0.05, 0.1, 1.0)
        assert (cfg.batch_size, cfg.epochs, cfg.optim.lr, cfg.optim.milestones) == (64, 451, 0.01, [351])
    else:
        assert cfg.model.backbone == "transformer" and cfg.model.options.depth == 8
        assert (o.mask_ratio, o.decoder_depth, o.motion_aware_tau) == (
            (0.9, 5, 0.75) if "ntu120" in name else (0.9, 3, 0.8))
        assert (cfg.epochs, cfg.optim.name, cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_epochs) == (
            400, "adamw", 1e-3, 5e-4, 20)
        assert cfg.optim.betas == (0.9, 0.95) and not cfg.optim.decay_all and cfg.augment.view_frames == 120


@pytest.mark.parametrize("method", ["skeletonclr", "mamp", "cmd"])
def test_quick_config_trains_as_written(method, tiny_store_path, tmp_path):
    path = ROOT / f"{method}_quick.yaml"
    assert load_config(PretrainConfig, path).data == "synthetic"
    code = main(["pretrain", "--config", str(path), "--out", str(tmp_path / "run"), f"data={tiny_store_path}",
                 "batch_size=8", "max_steps=1", "eval_split=null"])
    assert code == 0 and (tmp_path / "run" / "checkpoints" / "last.pt").exists()
