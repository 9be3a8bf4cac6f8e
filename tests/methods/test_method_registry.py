"""The method registry and the per-method config block: typed options, unknown keys and other
methods' blocks refused naming what is allowed, the method's default backbone, round trips."""

from __future__ import annotations

import pytest

from pcm3.config import from_dict, load_config, to_dict
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.methods.registry import get_method, known_methods


def test_every_builtin_method_is_registered():
    assert {"pcm3", "pcm3pp", "skeletonclr", "mamp"} <= set(known_methods())
    with pytest.raises(ConfigError, match=r"unknown method 'nope'; methods: .*skeletonclr"):
        load_config(PretrainConfig, None, ["method=nope"])


def test_method_block_is_typed_and_round_trips():
    cfg = load_config(PretrainConfig, None, ["method=skeletonclr", "skeletonclr.queue_size=64",
                                             "skeletonclr.temperature=0.2"])
    assert cfg.method_options.queue_size == 64 and cfg.method_options.temperature == 0.2
    data = to_dict(cfg)
    assert list(data)[:2] == ["method", "skeletonclr"] and data["skeletonclr"]["queue_size"] == 64
    again = from_dict(PretrainConfig, data)
    assert again.method_options == cfg.method_options and again.model.backbone == "stgcn"


def test_unknown_options_and_other_blocks_are_refused():
    with pytest.raises(ConfigError, match="skeletonclr: method 'skeletonclr' has no option 'queue'; its "
                                          "options: queue_size, momentum"):
        load_config(PretrainConfig, None, ["method=skeletonclr", "skeletonclr.queue=1"])
    with pytest.raises(ConfigError, match="mamp: options of method 'mamp', but method is 'skeletonclr'"):
        load_config(PretrainConfig, None, ["method=skeletonclr", "mamp.mask_ratio=0.5"])
    with pytest.raises(ConfigError, match=r"skeletonclr\.temperature: expected a number"):
        load_config(PretrainConfig, None, ["method=skeletonclr", "skeletonclr.temperature=warm"])
    with pytest.raises(ConfigError, match=r"mamp\.mask_ratio must be in"):
        load_config(PretrainConfig, None, ["method=mamp", "mamp.mask_ratio=1.0"])


def test_default_backbone_is_the_methods_unless_stated():
    for name, backbone in (("skeletonclr", "stgcn"), ("mamp", "transformer"), ("pcm3", "bigru")):
        assert get_method(name).default_backbone == backbone
        assert load_config(PretrainConfig, None, [f"method={name}"]).model.backbone == backbone
    cfg = load_config(PretrainConfig, None, ["method=skeletonclr", "model.backbone=bigru"])
    assert cfg.model.backbone == "bigru"


def test_a_backbone_without_token_masking_is_refused_for_mamp():
    with pytest.raises(ConfigError, match=r"method .mamp. cannot use backbone 'stgcn' .*forward_tokens.*"
                                          "supports: transformer"):
        load_config(PretrainConfig, None, ["method=mamp", "model.backbone=stgcn"])
