"""Backbone registry: build by name, clear errors for unknown names and arguments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcm3.errors import ConfigError
from pcm3.models import BACKBONES, BiGRUEncoder, create_backbone, register_backbone


def test_bigru_is_registered_and_built_with_kwargs():
    assert BACKBONES["bigru"] is BiGRUEncoder
    model = create_backbone("bigru", num_joints=8, num_persons=2, hidden_size=6, num_layers=1)
    assert isinstance(model, BiGRUEncoder) and model.feature_dim == 12
    x = torch.randn(2, 3, 4, 8, 2)
    assert model.forward_features(x).shape == (2, 12)
    assert model.forward_dense(x).shape == (2, 4, 12)


def test_unknown_name_and_argument():
    with pytest.raises(ConfigError, match=r"unknown backbone 'nope'; known backbones: .*bigru"):
        create_backbone("nope", num_joints=8, num_persons=2)
    with pytest.raises(ConfigError, match=r"backbone 'bigru': .*hidden.*accepted arguments: .*"
                                          r"hidden_size"):
        create_backbone("bigru", num_joints=8, num_persons=2, hidden=4)


def test_register_custom_backbone():
    @register_backbone("_test_linear")
    class TinyBackbone(nn.Module):
        def __init__(self, num_joints, num_persons, in_channels=3, width=4):
            super().__init__()
            self.feature_dim = width
            self.proj = nn.Linear(num_joints * num_persons * in_channels, width)

    try:
        model = create_backbone("_test_linear", num_joints=5, num_persons=1, in_channels=2,
                                width=7)
        assert isinstance(model, TinyBackbone) and model.proj.in_features == 10
        register_backbone("_test_linear")(TinyBackbone)  # same factory again: allowed
        with pytest.raises(ConfigError, match="already registered"):
            register_backbone("_test_linear")(BiGRUEncoder)
    finally:
        BACKBONES.pop("_test_linear", None)
