from pathlib import Path

import pytest

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("pcm3_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_loads(path):
    cfg = load_config(PretrainConfig, path)
    assert cfg.method == "pcm3"


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if "ntu" in p.stem or "pku" in p.stem], ids=lambda p: p.stem
)
def test_paper_configs_have_the_paper_settings(path):
    cfg = load_config(PretrainConfig, path)
    assert (cfg.batch_size, cfg.optim.lr, cfg.optim.weight_decay, cfg.epochs) == (128, 0.02, 1e-4, 451)
    assert cfg.optim.milestones == [351] and cfg.moco.queue_size == 16384 and cfg.moco.momentum == 0.999
    assert cfg.model.backbone == "bigru" and cfg.model.decoder_hidden_size == 512
    assert (cfg.model.options.hidden_size, cfg.model.options.num_layers) == (1024, 3)


def test_quick_configs_exist():
    assert any("quick" in p.stem for p in CONFIGS)
