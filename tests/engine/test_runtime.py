"""Device choice (fake probes), the MPS fallback, the run's runtime record."""

import json

import pytest
import torch

from pcm3.engine.runtime import check_device_step, resolve_device, resolve_runtime, write_run_info
from pcm3.errors import ConfigError, Pcm3Error

from .hardware_fakes import APPLE_MPS, AVX2_ONLY, AVX512_BF16, CUDA_BF16, CUDA_NO_BF16


@pytest.mark.parametrize("probe, expected", [(CUDA_BF16, "cuda"), (APPLE_MPS, "mps"), (AVX2_ONLY, "cpu")])
def test_auto_prefers_cuda_then_mps_then_cpu(probe, expected):
    device, reason = resolve_device("auto", probe)
    assert device.type == expected and reason.startswith("auto:")


def test_explicit_devices_must_exist():
    assert resolve_device("cpu", CUDA_BF16) == (torch.device("cpu"), "requested")
    assert resolve_device("cuda:0", CUDA_BF16)[0] == torch.device("cuda:0")
    with pytest.raises(ConfigError, match="device=cuda: CUDA is not available on this machine"):
        resolve_device("cuda", AVX2_ONLY)
    with pytest.raises(ConfigError, match=r"has 1 CUDA devices \(cuda:0 .. cuda:0\)"):
        resolve_device("cuda:1", CUDA_BF16)
    with pytest.raises(ConfigError, match="Apple MPS is not available"):
        resolve_device("mps", AVX2_ONLY)


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:x", "", "tpu"])
def test_unknown_device_is_refused_with_the_allowed_values(name):
    with pytest.raises(ConfigError, match=r"is not allowed; allowed values: auto, cpu, cuda, cuda:N, mps"):
        resolve_device(name, AVX2_ONLY)


@pytest.mark.parametrize("probe, device, precision", [
    (AVX2_ONLY, "cpu", "fp32"), (AVX512_BF16, "cpu", "bf16"), (CUDA_BF16, "cuda", "bf16"),
    (CUDA_NO_BF16, "cuda", "fp16"), (APPLE_MPS, "mps", "fp32"),
])
def test_runtime_resolves_device_then_precision(probe, device, precision):
    runtime = resolve_runtime("auto", "auto", probe)
    assert (runtime.device.type, runtime.precision) == (device, precision)
    assert runtime.threads == torch.get_num_threads() >= 1
    line = runtime.describe()
    assert f"device {device}" in line and f"precision {precision}" in line and "threads" in line


def test_fp16_on_cpu_and_cuda_without_cuda_fail_before_any_work():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA or MPS device"):
        resolve_runtime("cpu", "fp16", AVX512_BF16)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_runtime("cuda", "auto", AVX2_ONLY)


def test_distributed_process_keeps_its_device_for_auto():
    runtime = resolve_runtime("auto", "auto", CUDA_BF16, auto_device=torch.device("cuda:1"))
    assert runtime.device == torch.device("cuda:1") and runtime.precision == "bf16"


def _missing_op(device):
    raise NotImplementedError("The operator 'aten::_fake_op' is not currently implemented for the MPS "
                              "device.")


def test_mps_without_an_op_falls_back_to_cpu_when_auto_chose_it():
    messages = []
    runtime = check_device_step(resolve_runtime("auto", "auto", APPLE_MPS), _missing_op, log=messages.append)
    assert runtime.device == torch.device("cpu") and runtime.precision == "fp32"
    assert "aten::_fake_op" in messages[0] and "PYTORCH_ENABLE_MPS_FALLBACK=1" in messages[0]


def test_explicit_mps_without_an_op_is_a_clear_error():
    with pytest.raises(Pcm3Error, match=r"device=mps: an op of this run is not supported on MPS.*"
                                        r"PYTORCH_ENABLE_MPS_FALLBACK=1"):
        check_device_step(resolve_runtime("mps", "auto", APPLE_MPS), _missing_op)


def test_the_device_check_runs_only_on_mps():
    calls = []
    runtime = resolve_runtime("auto", "auto", AVX2_ONLY)
    assert check_device_step(runtime, calls.append) is runtime and calls == []
    mps = resolve_runtime("auto", "auto", APPLE_MPS)
    assert check_device_step(mps, calls.append) is mps and calls == [torch.device("mps")]


def test_run_info_records_what_was_asked_and_what_was_chosen(tmp_path):
    runtime = resolve_runtime("auto", "auto", AVX2_ONLY)
    info = json.loads(write_run_info(tmp_path / "run", runtime, world_size=1).read_text())
    assert info["requested"] == {"device": "auto", "precision": "auto"}
    assert (info["device"], info["precision"], info["world_size"]) == ("cpu", "fp32", 1)
    assert "no AVX512-BF16" in info["precision_reason"] and info["threads"] >= 1
    assert info["cpu"].startswith("AVX2-only CPU (avx2;") and info["hardware"]["cpu_native_bf16"] is False
