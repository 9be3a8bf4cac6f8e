"""The detection head file: written by the detection task (``save_head``), read back with the same
outputs, per-frame labels against a hand-made classifier, and the refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pcm3.cli import main
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.models.encoder import EncoderSpec
from pcm3.tasks.base import raw_encoder
from pcm3.tasks.detection import DetectionConfig, run_detection
from pcm3.tasks.detection_classifier import FrameClassifier
from pcm3.tasks.detection_features import FrameFeatureOptions, frame_features
from pcm3.tasks.detection_head import load_detection_head, save_detection_head

from ..conftest import HANDS8
from .test_detection import CLASSES, ctx_for, small_path, tiny_encoder  # noqa: F401  (fixture)

FAST = {"epochs": 3, "milestones": [2], "window_frames": 16, "window_stride": 4}


def hand_made_head(tmp_path, smoothing: int = 0):
    """D = 2, K = 2: output 1 when feature 0 is large, output 2 when feature 1 is, else background."""
    classifier = FrameClassifier(torch.zeros(2), torch.ones(2), 3)
    with torch.no_grad():
        classifier.linear.weight.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]))
        classifier.linear.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    spec = EncoderSpec("bigru", {"hidden_size": 1, "num_layers": 1}, 3, 2, HANDS8)
    return save_detection_head(tmp_path / "head.safetensors", classifier, ["wave", "clap"],
                               FrameFeatureOptions("window", 16, 4), smoothing, 0.4, spec, "enc.safetensors")


def test_frame_labels_of_a_hand_made_head(tmp_path):
    head = load_detection_head(hand_made_head(tmp_path))
    feats = np.array([[0, 0], [1, 0], [0, 1], [0.1, 0.1]], dtype=np.float32)
    labels, probs = head.frame_labels(feats)
    assert labels == ["background", "wave", "clap", "background"]
    logits = np.array([[1, 0, 0], [1, 4, 0], [1, 0, 4], [1, 0.4, 0.4]])
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert head.feature_options == FrameFeatureOptions("window", 16, 4)


def test_smoothing_is_the_task_mean_filter(tmp_path):
    feats = np.zeros((6, 2), np.float32)
    feats[2] = [0.6, 0]  # one weak wave frame among background: smoothed away
    assert load_detection_head(hand_made_head(tmp_path, smoothing=0)).frame_labels(feats)[0][2] == "wave"
    smoothed = load_detection_head(hand_made_head(tmp_path, smoothing=2)).frame_labels(feats)[0]
    assert smoothed == ["background"] * 6


def test_detection_saves_the_classifier_it_trained(small_path, tmp_path):  # noqa: F811
    enc = tiny_encoder()
    path = tmp_path / "heads" / "head.safetensors"
    cfg = DetectionConfig(**FAST, save_head=str(path))
    out = run_detection(ctx_for(enc, small_path), cfg)
    head = load_detection_head(path)
    assert head.class_names == CLASSES and head.output_names[0] == "background"
    assert head.feature_options == cfg.feature_options() and head.smoothing == cfg.smoothing
    head.check_encoder(enc.spec, "same", str(path))
    from pcm3.data.store import open_untrimmed

    store = open_untrimmed(small_path)
    feats = frame_features(enc.encoder, store, enc.stream, cfg.feature_options(), torch.device("cpu"))[0]
    with torch.no_grad():
        expected = torch.softmax(out.classifier(feats), dim=1).numpy()
    np.testing.assert_allclose(head.probabilities(feats.numpy()), expected, atol=1e-6)


def test_other_encoders_and_files_are_refused(small_path, tmp_path):  # noqa: F811
    head = load_detection_head(hand_made_head(tmp_path))
    other = dataclasses.replace(head.encoder_spec, stream="motion")
    with pytest.raises(Pcm3Error, match="is another encoder"):
        head.check_encoder(other, "other.safetensors", "head.safetensors")
    head.encoder_spec = None
    with pytest.raises(Pcm3Error, match="raw coordinates"):
        head.check_encoder(other, "other.safetensors", "head.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(Pcm3Error, match="not a pcm3 detection head"):
        load_detection_head(tmp_path / "other.safetensors")
    with pytest.raises(Pcm3Error, match="not found"):
        load_detection_head(tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="save_head needs batchnorm=frozen"):
        DetectionConfig(save_head="h.safetensors", batchnorm="train").validate()


def test_raw_encoder_head_is_saved_without_a_spec(small_path, tmp_path):  # noqa: F811
    path = tmp_path / "raw_head.safetensors"
    raw = raw_encoder(HANDS8, 3, 2, 16)
    run_detection(ctx_for(raw, small_path), DetectionConfig(**FAST, save_head=str(path)))
    head = load_detection_head(path)
    assert head.encoder_spec is None and head.encoder_source == "raw"


def test_save_head_is_a_detection_option(tmp_path, capsys):
    assert main(["eval", "linear", "--encoder", "raw", "--data", str(tmp_path), "--save-head",
                 str(tmp_path / "h.safetensors")]) == 2
    assert "--save-head is an option of the detection task" in capsys.readouterr().err
