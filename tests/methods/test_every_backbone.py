"""PCM3 and PCM3++ train on every registered backbone (its ``tiny()`` options), every loss term
on, the masked-prediction branch included (a strided backbone's steps are upsampled to every
frame); the checkpoint and its export then give the method's feature encoder back."""

from __future__ import annotations

import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method
from pcm3.models.registry import known_backbones
from pcm3.tasks.encoders import export_encoder, load_encoder

from ..conftest import tiny_model

METHODS = [("pcm3", []), ("pcm3pp", []), ("pcm3pp", ["pcm3pp.clip.path=mask"]),
           ("pcm3pp", ["pcm3pp.clip.source=key", "pcm3pp.clip.path=in_place"])]


def short_clips(method: str) -> list[str]:
    """PCM3++'s clips of 5..9 frames (the tiny views have 16); PCM3 has no clip branch."""
    return ["pcm3pp.clip.min_frames=5", "pcm3pp.clip.max_frames=9"] if method == "pcm3pp" else []


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: faster on one thread


@pytest.mark.parametrize("backbone", known_backbones())
@pytest.mark.parametrize(("method", "extra"), METHODS, ids=["pcm3", "pcm3pp", "pcm3pp-mask", "pcm3pp-paper"])
def test_one_training_step_then_checkpoint_and_export(backbone, method, extra, tiny_store_path, tmp_path):
    cfg = load_config(PretrainConfig, None, [*tiny_model(backbone), f"method={method}", "max_steps=1",
                                             *short_clips(method), *extra])
    store = open_store(tiny_store_path).split("xsub/train")
    torch.manual_seed(0)
    model = build_method(cfg, store.layout, 3, 2)
    losses: dict[str, float] = {}
    trainer = Trainer(cfg, model, store, tmp_path / "run", torch.device("cpu"),
                      on_step=lambda step, values: losses.update(values))
    trainer.fit()
    expected = {"contrast", "mix", "masked", "reconstructed", "kl", "reconstruction", "loss"}
    if method == "pcm3pp":
        expected |= {"clip", "clip_kl"}
    assert set(losses) == expected and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, param in model.encoder.named_parameters():  # the optimiser step saw every encoder weight
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    shape = (1, *model.encoder.input_prompt_shape)
    assert all(p.shape == shape and p.grad is not None for p in model.input_prompts.prompts.values())

    x = torch.randn(3, 3, 16, 8, 2)
    lengths = torch.tensor([16, 12, 7])
    encoder = model.feature_encoder().eval()
    exported = export_encoder(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "enc.safetensors")
    with torch.no_grad():
        reference = encoder.forward_features(x, lengths)
        for path in (tmp_path / "run" / "checkpoints" / "last.pt", exported):
            loaded = load_encoder(path)
            assert loaded.spec == model.encoder_spec and loaded.spec.backbone == backbone
            assert torch.equal(loaded.encoder.forward_features(x, lengths), reference), path


@pytest.mark.parametrize("backbone", known_backbones())
@pytest.mark.parametrize("method", ["pcm3", "pcm3pp"])
def test_the_official_forward_runs_on_the_backbone(backbone, method, tiny_store_path):
    """``official: true`` (one encoder call per view, per-batch prompt offsets, no input prompts,
    batch-shared mask and mix): every loss term finite, every encoder weight gets a gradient."""
    cfg = load_config(PretrainConfig, None, [*tiny_model(backbone), f"method={method}", "official=true",
                                             *short_clips(method)])
    store = open_store(tiny_store_path).split("xsub/train")
    torch.manual_seed(0)
    model = build_method(cfg, store.layout, 3, 2)
    x, lengths = torch.from_numpy(store.x[:8]), torch.from_numpy(store.lengths[:8])
    losses = model(x, lengths, torch.Generator().manual_seed(0))
    assert model.input_prompts is None and all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    for name, param in model.encoder.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
