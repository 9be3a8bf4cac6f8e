"""What this machine can run fast: CPU model and vector extensions, CUDA (with or without bf16),
Apple MPS.

:func:`probe_hardware` reads it once per process (Linux ``/proc/cpuinfo``, macOS ``sysctl``,
``torch.backends.cpu.get_cpu_capability()``, ``torch.cuda``, ``torch.backends.mps``). The
:class:`HardwareProbe` it returns is plain data, so tests build fake ones for every kind of
machine.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# x86 flags that matter for speed, as Linux names them in /proc/cpuinfo
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
# flags that mean the CPU computes bf16 natively (autocast to bf16 is then fast)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class HardwareProbe:
    """The facts the precision and device policies use.

    ``cpu_flags``: lower-case feature names (``/proc/cpuinfo`` ``flags``, or the macOS
    ``sysctl`` feature lists mapped to the same names); ``torch_cpu_capability``: the kernel
    set PyTorch dispatches to (``DEFAULT``, ``AVX2``, ``AVX512``, ...).
    """

    system: str = "Linux"
    machine: str = "x86_64"
    cpu_model: str = "unknown CPU"
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    torch_cpu_capability: str = "DEFAULT"
    cuda_available: bool = False
    cuda_bf16: bool = False
    cuda_devices: tuple[str, ...] = ()
    mps_available: bool = False

    @property
    def cpu_native_bf16(self) -> bool:
        """True when the CPU has AVX512-BF16 or AMX-BF16 (bf16 autocast is fast there)."""
        return any(f in self.cpu_flags for f in NATIVE_BF16_FLAGS)

    def simd(self) -> list[str]:
        """The speed-relevant x86 flags this CPU has, in :data:`SIMD_FLAGS` order."""
        return [f for f in SIMD_FLAGS if f in self.cpu_flags]

    def capability_line(self) -> str:
        """One line for logs and benchmark tables, e.g. ``AMD EPYC (avx2; no avx512f, avx512_bf16,
        amx_bf16), torch kernels AVX2, native bf16: no``."""
        have = self.simd()
        missing = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f not in have]
        parts = ", ".join(have) or "none of " + ", ".join(SIMD_FLAGS)
        if have and missing:
            parts += "; no " + ", ".join(missing)
        line = (f"{self.cpu_model} ({parts}), torch kernels {self.torch_cpu_capability}, "
                f"native bf16: {'yes' if self.cpu_native_bf16 else 'no'}")
        if self.cuda_available:
            names = ", ".join(self.cuda_devices) or "CUDA"
            line += f"; CUDA {names} (bf16 {'yes' if self.cuda_bf16 else 'no'})"
        if self.mps_available:
            line += "; Apple MPS"
        return line

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cpu_flags"] = self.simd()  # the speed-relevant ones only (the full list is long)
        out["cpu_native_bf16"] = self.cpu_native_bf16
        return out


def parse_proc_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """``(model, flags)`` of the first processor in a Linux ``/proc/cpuinfo`` text.

    x86 lists ``model name`` and ``flags``; ARM lists ``Features`` (and sometimes no model).
    """
    model, flags = "", ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value
    return model or "unknown CPU", frozenset(flags.lower().split())


# macOS sysctl names -> the Linux flag names above
_MACOS_FLAGS = {"avx2": "avx2", "avx512f": "avx512f", "avx512bf16": "avx512_bf16",
                "amxbf16": "amx_bf16", "amxtile": "amx_tile"}


def parse_macos_features(text: str) -> frozenset[str]:
    """Flags from ``sysctl -n machdep.cpu.features machdep.cpu.leaf7_features`` (Intel Macs),
    lower-cased and renamed to the Linux names where they differ."""
    words = {w.lower().replace("_", "").replace(".", "") for w in text.split()}
    return frozenset(_MACOS_FLAGS.get(w, w) for w in words)


def _sysctl(*names: str) -> str:
    try:
        done = subprocess.run(["sysctl", "-n", *names], capture_output=True, text=True, timeout=5,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def read_cpu() -> tuple[str, frozenset[str]]:
    """``(model, flags)`` of this machine's CPU (empty flags where the OS does not say)."""
    system = platform.system()
    if system == "Linux":
        try:
            return parse_proc_cpuinfo(Path("/proc/cpuinfo").read_text())
        except OSError:
            pass
    elif system == "Darwin":
        model = _sysctl("machdep.cpu.brand_string").strip()
        flags = parse_macos_features(_sysctl("machdep.cpu.features", "machdep.cpu.leaf7_features"))
        return model or platform.processor() or "unknown CPU", flags
    return platform.processor() or "unknown CPU", frozenset()


def _cuda_native_bf16() -> bool:
    """bf16 in hardware (compute capability 8.0+ or ROCm), not emulated."""
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch < 2.3 has no including_emulation (and counts no emulation)
        return bool(torch.cuda.is_bf16_supported())


@functools.lru_cache(maxsize=1)
def probe_hardware() -> HardwareProbe:
    """The :class:`HardwareProbe` of this machine (read once per process)."""
    import torch

    model, flags = read_cpu()
    cuda = torch.cuda.is_available()
    devices = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else ()
    mps = getattr(torch.backends, "mps", None)
    return HardwareProbe(
        system=platform.system(),
        machine=platform.machine(),
        cpu_model=model,
        cpu_flags=flags,
        torch_cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
        cuda_available=cuda,
        cuda_bf16=bool(cuda and _cuda_native_bf16()),
        cuda_devices=devices,
        mps_available=bool(mps is not None and mps.is_available()),
    )
