"""The precision policy (fake probes for every kind of machine), autocast and the scaler."""

import warnings

import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.precision import SlowPrecisionWarning, autocast, grad_scaler, resolve_precision
from pcm3.engine.trainer import Trainer
from pcm3.errors import ConfigError
from pcm3.methods import build_method

from ..conftest import TINY_MODEL
from .hardware_fakes import (
    AMX,
    APPLE_MPS,
    AVX2_ONLY,
    AVX512_BF16,
    AVX512_NO_BF16,
    CUDA_BF16,
    CUDA_NO_BF16,
    use_probe,
)

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


@pytest.mark.parametrize("probe, device, expected", [
    (AVX2_ONLY, CPU, "fp32"),
    (AVX512_NO_BF16, CPU, "fp32"),
    (AVX512_BF16, CPU, "bf16"),
    (AMX, CPU, "bf16"),
    (CUDA_BF16, CUDA, "bf16"),
    (CUDA_NO_BF16, CUDA, "fp16"),
    (APPLE_MPS, MPS, "fp32"),
    (AVX512_BF16, torch.device("xpu"), "fp32"),  # other devices: fp32
])
def test_auto_picks_bf16_only_where_it_is_native(probe, device, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns
        precision, reason = resolve_precision("auto", device, probe)
    assert precision == expected and reason.startswith("auto:")


def test_auto_reasons_say_why():
    assert "no AVX512-BF16 or AMX" in resolve_precision("auto", CPU, AVX2_ONLY)[1]
    assert "amx_bf16" in resolve_precision("auto", CPU, AMX)[1]
    assert "gradient scaler" in resolve_precision("auto", CUDA, CUDA_NO_BF16)[1]


@pytest.mark.parametrize("probe, device", [(AVX2_ONLY, CPU), (AVX512_NO_BF16, CPU), (CUDA_NO_BF16, CUDA)])
def test_forced_bf16_without_native_support_runs_but_warns(probe, device):
    with pytest.warns(SlowPrecisionWarning, match="emulated .* several times slower than fp32"):
        precision, reason = resolve_precision("bf16", device, probe)
    assert precision == "bf16" and "emulated" in reason


@pytest.mark.parametrize("probe, device", [(AVX512_BF16, CPU), (AMX, CPU), (CUDA_BF16, CUDA)])
def test_forced_bf16_with_native_support_is_silent(probe, device):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16", device, probe) == ("bf16", "requested")


def test_explicit_values_and_bad_ones():
    assert resolve_precision("fp32", CPU, AVX512_BF16) == ("fp32", "requested")
    assert resolve_precision("fp16", CUDA, CUDA_BF16) == ("fp16", "requested")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA or MPS device"):
        resolve_precision("fp16", CPU, AMX)
    allowed = r"'fp8' is not allowed; allowed values: \['auto', 'fp32', 'bf16', 'fp16'\]"
    with pytest.raises(ConfigError, match=allowed):
        resolve_precision("fp8", CPU, AVX2_ONLY)
    with pytest.raises(ConfigError, match="resolve 'auto'"):
        autocast(CPU, "auto")


def test_trainer_resolves_auto_and_refuses_fp16_on_cpu(tiny_store_path, tmp_path, monkeypatch):
    store = open_store(tiny_store_path).split("xsub/train")
    for probe, expected in ((AVX2_ONLY, "fp32"), (AVX512_BF16, "bf16")):
        use_probe(monkeypatch, probe)
        cfg = load_config(PretrainConfig, None, TINY_MODEL)
        trainer = Trainer(cfg, build_method(cfg, store.layout, 3, 2), store, tmp_path, CPU)
        assert cfg.precision == "auto" and trainer.precision == expected
        assert not trainer.scaler.is_enabled()
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "precision=fp16"])
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        Trainer(cfg, build_method(cfg, store.layout, 3, 2), store, tmp_path, CPU)


@pytest.mark.filterwarnings("ignore::pcm3.engine.precision.SlowPrecisionWarning")
def test_bf16_steps_train_fp32_weights(tiny_store_path, tmp_path):
    precision = "bf16"
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
    assert any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))


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
