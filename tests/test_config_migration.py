"""PCM3's settings sit in its method's block (``pcm3: {loss, moco}``, ``pcm3pp: {loss, moco, clip}``);
the older top-level ``loss`` / ``moco`` / ``clip`` are still read (files, overrides, checkpoints'
configs, a bench's ``pretrain.overrides``) and refused with any other method."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pcm3.config import from_dict, load_config, to_dict
from pcm3.engine.config import PretrainConfig
from pcm3.engine.config_migration import merged, move_method_settings
from pcm3.errors import ConfigError
from pcm3.methods import build_method
from pcm3.methods.checkpoints import checkpoint_config
from pcm3.methods.pcm3_options import ClipConfig, LossConfig, MoCoConfig, PCM3PlusPlusOptions
from pcm3.models.legacy import migrate_config

from .conftest import HANDS8, TINY_MODEL

LEGACY_CHECKPOINT = Path(__file__).resolve().parent / "fixtures" / "legacy_bigru" / "checkpoint.pt"


def test_merged_lays_the_top_over_the_base_without_changing_either():
    base, top = {"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"c": 5}}
    assert merged(base, top) == {"a": {"b": 1, "c": 5}, "d": 3}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3} and top == {"a": {"c": 5}}


def test_new_spelling_is_the_written_form(tmp_path: Path):
    cfg = load_config(PretrainConfig, None, ["method=pcm3pp", "pcm3pp.loss.masked=0",
                                             "pcm3pp.moco.queue_size=64", "pcm3pp.clip.path=mask"])
    o = cfg.method_options
    assert isinstance(o, PCM3PlusPlusOptions)
    assert (o.loss.masked, o.moco.queue_size, o.clip.path) == (0.0, 64, "mask")
    written = to_dict(cfg)
    assert set(written["pcm3pp"]) == {"loss", "moco", "clip"}
    assert not {"loss", "moco", "clip"} & set(written)
    assert from_dict(PretrainConfig, written) == cfg


@pytest.mark.parametrize("method", ["pcm3", "pcm3pp"])
def test_old_file_spelling_gives_the_same_config(method, tmp_path: Path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    clip = "clip: {min_frames: 4}\n" if method == "pcm3pp" else ""
    old.write_text(f"method: {method}\nloss: {{masked: 0, temperature: 0.2}}\n"
                   f"moco: {{queue_size: 64}}\n{clip}")
    new_clip = ", clip: {min_frames: 4}" if method == "pcm3pp" else ""
    new.write_text(f"method: {method}\n{method}: {{loss: {{masked: 0, temperature: 0.2}}, "
                   f"moco: {{queue_size: 64}}{new_clip}}}\n")
    assert load_config(PretrainConfig, old) == load_config(PretrainConfig, new)
    assert load_config(PretrainConfig, old).method_options.loss == LossConfig(masked=0.0, temperature=0.2)


def test_the_later_setting_wins_whichever_spelling():
    quick = Path(__file__).resolve().parents[1] / "configs" / "pcm3_quick.yaml"  # pcm3.loss.masked: 0
    assert load_config(PretrainConfig, quick, ["loss.masked=1"]).method_options.loss.masked == 1.0
    both = ["loss.masked=1", "pcm3.loss.masked=0.5"]
    assert load_config(PretrainConfig, quick, both).method_options.loss.masked == 0.5
    assert load_config(PretrainConfig, quick, both[::-1]).method_options.loss.masked == 1.0
    # one mapping with both spellings (no order): the top-level one wins
    data = {"pcm3": {"loss": {"masked": 0.0, "mix": 0.0}}, "loss": {"masked": 1.0}}
    assert from_dict(PretrainConfig, data).method_options.loss == LossConfig(masked=1.0, mix=0.0)


def test_pcm3pp_reads_a_pcm3_block_as_its_base():
    quick = Path(__file__).resolve().parents[1] / "configs" / "pcm3_quick.yaml"
    cfg = load_config(PretrainConfig, quick, ["method=pcm3pp", "clip.source=key", "loss.masked=1",
                                              "pcm3pp.moco.momentum=0.9"])
    o = cfg.method_options
    assert o.moco == MoCoConfig(256, 0.9, "constant") and o.loss.temperature == 0.2
    assert (o.loss.masked, o.loss.reconstruction, o.clip.source) == (1.0, 0.0, "key")
    with pytest.raises(ConfigError, match="pcm3pp: options of method 'pcm3pp', but method is 'pcm3'"):
        load_config(PretrainConfig, None, ["method=pcm3pp", "pcm3pp.clip.path=mask", "method=pcm3"])


def test_clip_means_nothing_to_pcm3_and_is_dropped():
    cfg = load_config(PretrainConfig, None, ["clip.min_frames=5", "moco.queue_size=16"])
    assert cfg.method == "pcm3" and cfg.method_options.moco.queue_size == 16
    assert not hasattr(cfg.method_options, "clip")
    # given before the method changes to pcm3pp, it is still PCM3++'s
    cfg = load_config(PretrainConfig, None, ["clip.min_frames=5", "method=pcm3pp"])
    assert cfg.method_options.clip == ClipConfig(min_frames=5)


@pytest.mark.parametrize("method", ["skeletonclr", "cmd", "mamp"])
@pytest.mark.parametrize("key", ["loss.masked=0", "moco.queue_size=8", "clip.path=mask"])
def test_old_keys_with_another_method_are_refused(method, key):
    block = key.split(".")[0]
    with pytest.raises(ConfigError, match=rf"^{block}: a setting of methods pcm3 / pcm3pp .* method is "
                                          rf"'{method}', which does not read it; {method}'s own settings"):
        load_config(PretrainConfig, None, [f"method={method}", key])
    with pytest.raises(ConfigError, match=f"pcm3: options of method 'pcm3', but method is '{method}'"):
        load_config(PretrainConfig, None, [f"method={method}", "pcm3.moco.queue_size=8"])


@pytest.mark.parametrize(("overrides", "message"), [
    (["pcm3.moco.queue_size=0"], "moco.queue_size must be at least 1, got 0"),
    (["moco.momentum=1"], r"moco.momentum must be in \[0, 1\), got 1.0"),
    (["method=pcm3pp", "pcm3pp.clip.min_frames=9", "pcm3pp.clip.max_frames=8"],
     "clip: need 1 <= min_frames <= max_frames <= augment.view_frames, got 9, 8"),
    (["method=pcm3pp", "pcm3pp.clip.max_frames=20", "augment.view_frames=16"],
     "pcm3pp.clip: need 1 <= min_frames <= max_frames <= augment.view_frames, got 8, 20, 16"),
    (["pcm3.loss.masks=0"], r"unknown config key pcm3.loss.'masks'"),
    (["pcm3.clip.path=mask"], "pcm3: method 'pcm3' has no option 'clip'; its options: loss, moco"),
])
def test_validation_moved_with_the_settings(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(PretrainConfig, None, overrides)


def test_momentum_and_queue_come_from_the_method_block():
    cfg = load_config(PretrainConfig, None, [
        *TINY_MODEL, "method=pcm3pp", "pcm3pp.moco.queue_size=16", "pcm3pp.moco.momentum=0.5",
        "pcm3pp.moco.momentum_schedule=cosine", "pcm3pp.clip.own_queue=true", "pcm3pp.clip.min_frames=4",
        "pcm3pp.clip.max_frames=8"])
    method = build_method(cfg, HANDS8, 3, 2)
    assert (method.base_momentum, method.momentum_kind) == (0.5, "cosine")
    assert len(method.queue.snapshot()) == 16 and len(method.clip_queue.snapshot()) == 16


def test_an_old_checkpoints_config_reads_into_the_block():
    state = torch.load(LEGACY_CHECKPOINT, weights_only=True)
    assert {"loss", "moco", "clip"} <= set(state["config"])  # written with the older spelling
    config = checkpoint_config(state)
    assert config["pcm3"]["moco"]["queue_size"] == 8 and "moco" not in config
    cfg = from_dict(PretrainConfig, config)
    assert cfg.method_options.moco.queue_size == 8 and cfg.model.options.hidden_size == 6
    # another method's old file keeps them (unread) when migrated, as a resumed run folder's config
    other = {"method": "skeletonclr", "loss": {"kl": 1.0}}
    assert migrate_config(other) == other
    assert move_method_settings({"loss": {"kl": 0.0}}, final=False) == {"pcm3": {"loss": {"kl": 0.0}}}


def test_a_benchs_pretrain_overrides_may_use_the_old_spelling():
    from pcm3.tasks.bench_pretraining import pretrain_config

    quick = Path(__file__).resolve().parents[1] / "configs" / "pcm3_quick.yaml"
    bench = SimpleNamespace(data="synthetic", device="auto", pretrain=SimpleNamespace(
        config=str(quick), overrides={"method": "pcm3pp", "loss": {"masked": 1}, "clip": {"source": "key"}}))
    o = pretrain_config(bench).method_options
    assert (o.loss.masked, o.clip.source, o.moco.queue_size) == (1.0, "key", 256)
