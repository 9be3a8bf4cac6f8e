from pathlib import Path

import pytest

from pcm3.config import apply_overrides, from_dict, load_config, to_dict
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError


def test_defaults_are_the_paper_settings():
    cfg = PretrainConfig()
    assert (cfg.batch_size, cfg.optim.lr, cfg.optim.weight_decay, cfg.epochs) == (128, 0.02, 1e-4, 451)
    assert cfg.optim.milestones == [351] and cfg.moco.queue_size == 16384
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.model.decoder_hidden_size) == (1024, 3, 512)
    assert cfg.loss.reconstruction == 40.0
    assert (cfg.precision, cfg.device, cfg.num_workers) == ("auto", "auto", 0)


def test_yaml_and_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("method: pcm3\nbatch_size: 64\nmodel:\n  hidden_size: 256\n")
    cfg = load_config(PretrainConfig, path, ["model.num_layers=2", "optim.lr=1e-3",
                                            "augment.crop_scale=[0.5, 1]", "max_steps=10",
                                            "precision=bf16"])
    assert cfg.batch_size == 64 and cfg.model.hidden_size == 256 and cfg.model.num_layers == 2
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.augment.crop_scale == (0.5, 1.0)
    assert cfg.max_steps == 10 and cfg.precision == "bf16"
    assert from_dict(PretrainConfig, to_dict(cfg)) == cfg  # round trip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hiden_size=3"], r"unknown config key model\.'hiden_size'.*hidden_size"),
        (["batch_sise=3"], "unknown config key 'batch_sise'"),
        (["precision=fp8"], r"'fp8' is not allowed; allowed values: \['auto', 'fp32', 'bf16', 'fp16'\]"),
        (["num_workers=-1"], r"num_workers must be 0 \(no prefetch\) or more"),
        (["batch_size=big"], "batch_size: expected an integer"),
        (["model.bidirectional=3"], "expected true or false"),
        (["epochs=0"], "epochs must be at least 1"),
        (["augment.crop_scale=[0.5]"], "expected 2 values"),
        (["batch_size"], "not of the form key=value"),
        (["batch_size.x=1"], "batch_size: expected an integer"),
    ],
)
def test_bad_keys_and_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(PretrainConfig, None, overrides)


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(PretrainConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(PretrainConfig, bad)


def test_overrides_do_not_mutate_input():
    data = {"model": {"hidden_size": 8}}
    out = apply_overrides(data, ["model.hidden_size=16"])
    assert data["model"]["hidden_size"] == 8 and out["model"]["hidden_size"] == 16


def test_overrides_keep_key_order():
    data = {"tasks": {"linear": {}, "knn": {}, "detection": {}}, "data": "x"}
    out = apply_overrides(data, ["tasks.fewshot.ways=3"])
    assert list(out) == ["tasks", "data"] and list(out["tasks"]) == ["linear", "knn", "detection", "fewshot"]
