"""The hardware probe: /proc/cpuinfo and macOS sysctl parsing, native bf16, the capability line."""

import platform
from pathlib import Path

import pytest

from pcm3.engine.hardware import HardwareProbe, parse_macos_features, parse_proc_cpuinfo, probe_hardware

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512_bf16
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes bf16 i8mm
CPU implementer\t: 0x41
"""


def test_parse_proc_cpuinfo_reads_the_first_processor():
    model, flags = parse_proc_cpuinfo(X86_CPUINFO)
    assert model == "AMD EPYC 7B13"
    assert {"avx2", "avx512f", "avx512_bf16"} <= flags and "fpu" in flags
    model, flags = parse_proc_cpuinfo(ARM_CPUINFO)
    assert model == "unknown CPU" and {"asimd", "bf16"} <= flags


def test_parse_macos_features_uses_the_linux_names():
    flags = parse_macos_features("FPU SSE AVX1.0 AVX2 AVX512F AVX512BW")
    assert {"avx2", "avx512f", "avx512bw", "avx10"} <= flags
    assert "avx512_bf16" not in flags


@pytest.mark.parametrize("flags, native", [
    ({"avx2"}, False),
    ({"avx2", "avx512f"}, False),  # AVX-512 without its BF16 extension
    ({"avx2", "avx512f", "avx512_bf16"}, True),
    ({"avx2", "amx_tile", "amx_bf16"}, True),
    ({"bf16", "asimd"}, False),  # ARM bf16: not used by the policy
])
def test_native_bf16_needs_avx512_bf16_or_amx_bf16(flags, native):
    assert HardwareProbe(cpu_flags=frozenset(flags)).cpu_native_bf16 is native


def test_capability_line_names_model_flags_torch_kernels_and_bf16():
    probe = HardwareProbe(cpu_model="AMD EPYC", cpu_flags=frozenset({"avx2", "sse"}),
                          torch_cpu_capability="AVX2")
    line = probe.capability_line()
    assert line.startswith("AMD EPYC (avx2; no avx512f, avx512_bf16, amx_bf16)")
    assert "torch kernels AVX2" in line and "native bf16: no" in line
    cuda = HardwareProbe(cpu_flags=frozenset({"avx512_bf16"}), cuda_available=True, cuda_bf16=False,
                         cuda_devices=("Tesla T4",)).capability_line()
    assert "native bf16: yes" in cuda and "CUDA Tesla T4 (bf16 no)" in cuda
    assert HardwareProbe(cpu_flags=frozenset({"avx512_bf16"})).to_dict()["cpu_native_bf16"] is True


@pytest.mark.skipif(platform.system() != "Linux", reason="reads /proc/cpuinfo")
def test_probe_of_this_machine_matches_proc_cpuinfo():
    model, flags = parse_proc_cpuinfo(Path("/proc/cpuinfo").read_text())
    probe = probe_hardware()
    assert probe.cpu_model == model and probe.cpu_flags == flags
    assert probe.torch_cpu_capability  # e.g. AVX2, AVX512, DEFAULT
