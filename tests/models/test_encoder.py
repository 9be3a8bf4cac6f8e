"""The encoder spec, the prompted encoder, one pass for features and dense steps, step upsampling."""

from __future__ import annotations

import json

import pytest
import torch

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import KINECT_V1_20, NTU25
from pcm3.models import EncoderSpec, PromptedEncoder, build_encoder, upsample_steps
from pcm3.models.encoder import dense_steps, features_and_dense

from ..conftest import HANDS8


def test_spec_fills_every_option_and_round_trips_through_json():
    spec = EncoderSpec("bigru", {"hidden_size": 8}, 3, 2, HANDS8, stream="bone", view_frames=32)
    assert spec.options == {"hidden_size": 8, "num_layers": 3, "bidirectional": False, "pooling": "last"}
    data = json.loads(spec.to_json())
    assert data["layout"]["name"] == "hands8" and data["in_channels"] == 3 and data["stream"] == "bone"
    assert list(data["layout"]["parts"]) == ["left_arm", "right_arm"]  # part order kept
    assert EncoderSpec.from_dict(data, "x") == spec
    assert EncoderSpec.from_dict(data, "x").layout == HANDS8


def test_bad_specs_name_the_file_and_the_keys():
    data = EncoderSpec("bigru", {}, 3, 2, HANDS8).to_dict()
    with pytest.raises(Pcm3Error, match=r"enc.safetensors: encoder spec has missing keys \['stream'\]"):
        EncoderSpec.from_dict({k: v for k, v in data.items() if k != "stream"}, "enc.safetensors")
    with pytest.raises(Pcm3Error, match=r"unknown keys \['extra'\]"):
        EncoderSpec.from_dict({**data, "extra": 1}, "f")
    with pytest.raises(ConfigError, match="backbone 'bigru' has no option 'width'"):
        EncoderSpec("bigru", {"width": 3}, 3, 2, HANDS8)
    with pytest.raises(ConfigError, match="unknown backbone 'nope'"):
        EncoderSpec("nope", {}, 3, 2, HANDS8)
    with pytest.raises(ConfigError, match=r"^old.pt: unknown backbone 'nope'; known backbones: .*bigru"):
        EncoderSpec.from_dict({**data, "backbone": "nope"}, "old.pt")


def test_check_input_names_both_sides():
    spec = EncoderSpec("bigru", {}, 3, 2, NTU25)
    spec.check_input(NTU25, 3, 2, "enc", "data")
    with pytest.raises(Pcm3Error, match=r"^enc expects layout 'ntu25' \(25 joints\), C=3, M=2; data has "
                                        r"layout 'kinect_v1_20' \(20 joints\), C=3, M=2$"):
        spec.check_input(KINECT_V1_20, 3, 2, "enc", "data")
    with pytest.raises(Pcm3Error, match=r"C=3, M=2; data has layout 'ntu25' \(25 joints\), C=2, M=1$"):
        spec.check_input(NTU25, 2, 1, "enc", "data")


def test_prompted_encoder_adds_its_prompt_and_keeps_the_backbone_attributes():
    spec = EncoderSpec("bigru", {"hidden_size": 4, "num_layers": 1}, 3, 2, HANDS8)
    torch.manual_seed(0)
    prompt = torch.randn(1, 1, 48)  # an old (1, 1, F) prompt is reshaped to (1, *input_prompt_shape)
    encoder = build_encoder(spec, prompt).eval()
    assert encoder.input_prompt.shape == (1, 48) and encoder.spec == spec
    assert (encoder.feature_dim, encoder.time_stride, encoder.causal) == (8, 1, True)
    x = torch.randn(2, 3, 5, 8, 2)
    with torch.no_grad():
        expected = encoder.backbone.forward_features(x, input_prompt=prompt.reshape(1, 48))
        torch.testing.assert_close(encoder.forward_features(x), expected)
        torch.testing.assert_close(encoder(x), expected)
        assert encoder.forward_dense(x).shape == (2, 5, 8)
    assert PromptedEncoder(encoder.backbone).input_prompt is None
    with pytest.raises(Pcm3Error, match=r"input prompt of shape \(1, 47\) does not fit .* \(1, 48\)"):
        PromptedEncoder(encoder.backbone, torch.zeros(1, 47))


@pytest.mark.parametrize("name", ["bigru", "frame_mlp_test"])
def test_features_and_dense_equal_two_separate_calls(name):
    torch.manual_seed(0)
    options = {"hidden_size": 4, "num_layers": 1} if name == "bigru" else {"width": 6}
    backbone = build_encoder(EncoderSpec(name, options, 3, 2, HANDS8)).backbone.eval()
    assert hasattr(backbone, "pool") == (name == "bigru")  # one pass for the BiGRU, two otherwise
    x = torch.randn(6, 3, 8, 8, 2)
    prompt = torch.randn(6, *backbone.input_prompt_shape)
    with torch.no_grad():
        features, dense = features_and_dense(backbone, x, prompt, dense_from=-2)
        torch.testing.assert_close(features, backbone.forward_features(x, input_prompt=prompt))
        torch.testing.assert_close(dense, backbone.forward_dense(x[-2:], input_prompt=prompt[-2:]))
        one = prompt[:1]
        _, dense_one = features_and_dense(backbone, x, one, dense_from=4)
        torch.testing.assert_close(dense_one, backbone.forward_dense(x[4:], input_prompt=one))


def test_upsample_steps_repeats_each_step_over_its_frames():
    steps = torch.tensor([[[1.0], [2.0], [3.0]]])  # (1, 3, 1): steps of stride 2 over 5 frames
    assert upsample_steps(steps, 2, 5).flatten().tolist() == [1, 1, 2, 2, 3]
    assert upsample_steps(steps, 2, 6).flatten().tolist() == [1, 1, 2, 2, 3, 3]
    assert upsample_steps(steps, 1, 3) is steps
    assert [dense_steps(t, 4) for t in (1, 4, 5, 16, 17)] == [1, 1, 2, 4, 5]
