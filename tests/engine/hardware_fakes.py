"""Fake hardware probes: one per kind of machine the precision and device policies tell apart."""

from __future__ import annotations

import pytest

from pcm3.engine import hardware
from pcm3.engine.hardware import HardwareProbe

AVX2_ONLY = HardwareProbe(cpu_model="AVX2-only CPU", cpu_flags=frozenset({"avx", "avx2"}),
                          torch_cpu_capability="AVX2")
AVX512_NO_BF16 = HardwareProbe(cpu_model="AVX-512 CPU", cpu_flags=frozenset({"avx2", "avx512f"}),
                               torch_cpu_capability="AVX512")
AVX512_BF16 = HardwareProbe(cpu_model="AVX512-BF16 CPU",
                            cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}),
                            torch_cpu_capability="AVX512")
AMX = HardwareProbe(cpu_model="AMX CPU", cpu_flags=frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"}),
                    torch_cpu_capability="AVX512")
CUDA_BF16 = HardwareProbe(cpu_model="AVX2-only CPU", cpu_flags=frozenset({"avx2"}), cuda_available=True,
                          cuda_bf16=True, cuda_devices=("A100",))
CUDA_NO_BF16 = HardwareProbe(cpu_model="AVX2-only CPU", cpu_flags=frozenset({"avx2"}), cuda_available=True,
                             cuda_bf16=False, cuda_devices=("Tesla T4",))
APPLE_MPS = HardwareProbe(system="Darwin", machine="arm64", cpu_model="Apple M2",
                          cpu_flags=frozenset({"bf16"}), mps_available=True)


def use_probe(monkeypatch: pytest.MonkeyPatch, probe: HardwareProbe) -> None:
    """Make every caller of :func:`pcm3.engine.hardware.probe_hardware` see ``probe``."""
    monkeypatch.setattr(hardware, "probe_hardware", lambda: probe)
