import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.precision import autocast, grad_scaler
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method

from ..conftest import TINY_MODEL


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_train_fp32_weights(tiny_store_path, tmp_path, precision):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "max_steps=2", f"precision={precision}"])
    store = open_store(tiny_store_path).split("xsub/train")
    torch.manual_seed(0)
    method = build_method(cfg, store.layout, 3, 2)
    before = [p.detach().clone() for p in method.encoder.parameters()]
    trainer = Trainer(cfg, method, store, tmp_path, torch.device("cpu"))
    summary = trainer.fit()
    assert summary["step"] == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in summary["final_losses"].values())
    params = list(method.encoder.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    updated = any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))
    if precision == "bf16":
        assert updated
    else:  # fp16: the scaler skips steps whose gradients overflow and lowers its scale
        assert updated or trainer.scaler.get_scale() < 2.0**16


def test_bf16_autocast_computes_heads_in_bf16_and_losses_in_fp32():
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    from ..conftest import HANDS8

    method = build_method(cfg, HANDS8, 3, 2)
    x = torch.randn(4, 3, 16, 8, 2)
    with autocast(torch.device("cpu"), "bf16"):
        embedding = method.projector(method.encoder.forward_features(x))
        losses = method(torch.randn(8, 3, 20, 8, 2), torch.full((8,), 20), torch.Generator().manual_seed(0))
    assert embedding.dtype == torch.bfloat16
    assert losses["contrast"].dtype == torch.float32 and losses["reconstruction"].dtype == torch.float32


def test_scaler_only_for_fp16():
    cpu = torch.device("cpu")
    assert grad_scaler(cpu, "fp16").is_enabled()
    assert not grad_scaler(cpu, "bf16").is_enabled() and not grad_scaler(cpu, "fp32").is_enabled()
