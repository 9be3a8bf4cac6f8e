"""A checkpoint and an export written by pcm3 0.1.0.dev0 (before the encoder spec; flat
``model.hidden_size`` config; ``(1, 1, F)`` input prompts) still load, give the features they
gave then, export with a spec, and start or resume training (``tests/fixtures/legacy_bigru``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method
from pcm3.models.encoder_files import read_encoder
from pcm3.tasks.encoders import export_encoder, load_encoder

from ..conftest import HANDS8, TINY_MODEL

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_bigru"
# the architecture of the fixture checkpoint, in today's config keys (its README)
LEGACY_MODEL = ["model.bigru.hidden_size=6", "model.bigru.num_layers=1", "model.bigru.pooling=mean",
                "model.projector_hidden=8", "model.embed_dim=4", "model.neck_hidden=4",
                "model.decoder_hidden_size=4", "model.decoder_layers=1", "model.prompt_length=2",
                "pcm3.moco.queue_size=8"]


@pytest.fixture(scope="module")
def expected():
    return load_file(str(LEGACY / "expected_features.safetensors"))


@pytest.mark.parametrize("name", ["checkpoint.pt", "encoder.safetensors"])
def test_old_files_load_and_give_the_same_features(name, expected):
    loaded = load_encoder(LEGACY / name)
    spec = loaded.spec
    assert (spec.backbone, spec.in_channels, spec.num_persons, spec.stream, spec.view_frames) == (
        "bigru", 3, 2, "joint", 16)
    assert spec.options == {"hidden_size": 6, "num_layers": 1, "bidirectional": False, "pooling": "mean"}
    assert loaded.layout == HANDS8 and loaded.feature_dim == 12
    assert loaded.encoder.input_prompt.shape == (1, 48)
    assert loaded.config["model"]["bigru"]["hidden_size"] == 6  # the flat keys, migrated
    with torch.no_grad():
        features = loaded.encoder.forward_features(expected["x"], expected["lengths"])
        dense = loaded.encoder.forward_dense(expected["x"], expected["lengths"])
    torch.testing.assert_close(features, expected["features"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(dense, expected["dense"], atol=1e-6, rtol=1e-6)


def test_old_checkpoint_exports_with_a_spec(tmp_path, expected):
    path = export_encoder(LEGACY / "checkpoint.pt", tmp_path / "new.safetensors")
    encoder, meta = read_encoder(path)
    assert "encoder_spec" in meta and meta["step"] == "2"
    with torch.no_grad():
        features = encoder.forward_features(expected["x"], expected["lengths"])
    torch.testing.assert_close(features, expected["features"], atol=1e-6, rtol=1e-6)


def _trainer(store_path: Path, run: Path, *overrides: str) -> Trainer:
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, *LEGACY_MODEL, *overrides])
    store = open_store(store_path).split("xsub/train")
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    return Trainer(cfg, build_method(cfg, store.layout, 3, 2), store, run, torch.device("cpu"))


def test_old_checkpoint_initialises_and_resumes_training(tiny_store_path, tmp_path, expected):
    fresh = _trainer(tiny_store_path, tmp_path / "init", "max_steps=1")
    fresh.initialize_from(LEGACY / "checkpoint.pt")
    encoder = fresh.method.feature_encoder().eval()
    with torch.no_grad():
        features = encoder.forward_features(expected["x"], expected["lengths"])
    torch.testing.assert_close(features, expected["features"], atol=1e-6, rtol=1e-6)

    run = tmp_path / "resume"
    (run / "checkpoints").mkdir(parents=True)  # an old run folder
    shutil.copy(LEGACY / "checkpoint.pt", run / "checkpoints" / "last.pt")
    resumed = _trainer(tiny_store_path, run, "max_steps=3")
    assert resumed.resume() and resumed.step == 2
    summary = resumed.fit()  # one more step: the optimiser's momentum of the reshaped prompts fits
    assert summary["step"] == 3
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["encoder_spec"]["num_persons"] == 2
