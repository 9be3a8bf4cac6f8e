"""Backbone registry: build by name with typed options, clear errors for unknown names and options."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from pcm3.errors import ConfigError
from pcm3.layouts import KINECT_V1_20
from pcm3.models import (
    BACKBONES,
    BiGRUEncoder,
    BiGRUOptions,
    create_backbone,
    known_backbones,
    register_backbone,
)
from pcm3.models.registry import backbone_options

from ..conftest import HANDS8


def test_bigru_is_registered_with_its_options_and_built_with_kwargs():
    assert BACKBONES["bigru"].cls is BiGRUEncoder and BACKBONES["bigru"].options is BiGRUOptions
    assert "bigru" in known_backbones() and "frame_mlp_test" in known_backbones()
    model = create_backbone("bigru", layout=HANDS8, num_persons=2, in_channels=3, hidden_size=6, num_layers=1)
    assert isinstance(model, BiGRUEncoder) and model.feature_dim == 12
    assert (model.time_stride, model.causal, model.input_prompt_shape) == (1, True, (8 * 3 * 2,))
    x = torch.randn(2, 3, 4, 8, 2)
    assert model.forward_features(x).shape == (2, 12)
    assert model.forward_dense(x).shape == (2, 4, 12)
    assert create_backbone("bigru", layout=KINECT_V1_20, num_persons=1, in_channels=2,
                           bidirectional=True).causal is False


def test_options_are_typed_defaulted_and_validated():
    options = backbone_options("bigru", {"hidden_size": 8})
    assert options == BiGRUOptions(hidden_size=8) and options.num_layers == 3
    assert backbone_options("bigru") == BiGRUOptions()
    with pytest.raises(ConfigError, match=r"bigru\.hidden_size: expected an integer"):
        backbone_options("bigru", {"hidden_size": "wide"}, where="bigru")
    with pytest.raises(ConfigError, match="pooling must be one of"):
        backbone_options("bigru", {"pooling": "max"})


def test_unknown_name_and_option():
    with pytest.raises(ConfigError, match=r"unknown backbone 'nope'; known backbones: .*bigru"):
        create_backbone("nope", layout=HANDS8, num_persons=2, in_channels=3)
    with pytest.raises(ConfigError, match=r"backbone 'bigru' has no option 'hidden'; its options: "
                                          r"hidden_size, num_layers, bidirectional, pooling"):
        create_backbone("bigru", layout=HANDS8, num_persons=2, in_channels=3, hidden=4)
    with pytest.raises(ConfigError, match=r"backbone 'bigru' has no option 'width'"):  # another backbone's
        create_backbone("bigru", layout=HANDS8, num_persons=2, in_channels=3, width=4)
    with pytest.raises(ConfigError, match="num_persons must be a positive integer"):
        create_backbone("bigru", layout=HANDS8, num_persons=0, in_channels=3)


def test_register_custom_backbone():
    @dataclass
    class TinyOptions:
        width: int = 4

        def validate(self) -> None:
            if self.width < 1:
                raise ConfigError("width must be positive")

        @classmethod
        def tiny(cls) -> TinyOptions:
            return cls(2)

    @register_backbone("_test_linear", options=TinyOptions)
    class TinyBackbone(nn.Module):
        def __init__(self, layout, num_persons, in_channels, width=4):
            super().__init__()
            self.feature_dim = width
            self.proj = nn.Linear(layout.num_joints * num_persons * in_channels, width)

    try:
        model = create_backbone("_test_linear", layout=HANDS8, num_persons=1, in_channels=2, width=7)
        assert isinstance(model, TinyBackbone) and model.proj.in_features == 16
        with pytest.raises(ConfigError, match="width must be positive"):
            create_backbone("_test_linear", layout=HANDS8, num_persons=1, in_channels=2, width=0)
        register_backbone("_test_linear", options=TinyOptions)(TinyBackbone)  # same class again: allowed
        with pytest.raises(ConfigError, match="already registered"):
            register_backbone("_test_linear", options=TinyOptions)(BiGRUEncoder)
        with pytest.raises(ConfigError, match="options must be a dataclass"):
            register_backbone("_test_other", options=dict)
    finally:
        BACKBONES.pop("_test_linear", None)
