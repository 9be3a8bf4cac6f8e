"""Mixed precision: the policy that picks it from the hardware, one autocast context and an
optional gradient scaler (fp16 only).

``precision: auto`` (the default everywhere) picks bf16 autocast only where bf16 is native:
CUDA devices that support it and CPUs with AVX512-BF16 or AMX. CUDA without bf16 gets fp16
with a gradient scaler; every other device (an AVX2-only CPU, Apple MPS, ...) fp32. Emulated
bf16 on an AVX2 CPU measured 11-41x slower than fp32 for the same step.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from pcm3.engine import hardware
from pcm3.engine.hardware import HardwareProbe
from pcm3.errors import ConfigError, Pcm3Warning

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class SlowPrecisionWarning(Pcm3Warning):
    """A precision the hardware only emulates: the run works, several times slower than fp32."""


def resolve_precision(requested: str, device: torch.device, probe: HardwareProbe) -> tuple[str, str]:
    """``(precision, reason)``: what ``requested`` (``auto``, ``fp32``, ``bf16``, ``fp16``) means
    on ``device`` of the machine ``probe`` describes.

    Refuses (``ConfigError``) an unknown value and fp16 on a CPU; warns
    (:class:`SlowPrecisionWarning`) for bf16 forced where the hardware has no native bf16.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"precision: {requested!r} is not allowed; allowed values: {list(PRECISIONS)}")
    kind = device.type
    if requested == "auto":
        return _auto(kind, probe)
    if requested == "fp16" and kind == "cpu":
        raise ConfigError("precision=fp16 needs a CUDA or MPS device (autocast on the CPU has no fp16 "
                          "gradient scaling); on the CPU use auto, fp32 or bf16")
    if requested == "bf16" and kind in ("cpu", "cuda"):
        native = probe.cpu_native_bf16 if kind == "cpu" else probe.cuda_bf16
        if not native:
            what = (f"this CPU ({probe.cpu_model}) has no AVX512-BF16 or AMX" if kind == "cpu"
                    else "this CUDA device has no native bf16 (compute capability < 8.0)")
            warnings.warn(f"precision=bf16: {what}, so bf16 is emulated and the run will be several "
                          "times slower than fp32 (use precision=auto)", SlowPrecisionWarning,
                          stacklevel=1)  # attributed here: shown once per process, however often resolved
            return "bf16", f"requested; emulated on this {kind} (slow)"
    return requested, "requested"


def precision_on(requested: str, device: torch.device) -> tuple[str, str]:
    """:func:`resolve_precision` on this machine (its :func:`~pcm3.engine.hardware.probe_hardware`)."""
    return resolve_precision(requested, device, hardware.probe_hardware())


def _auto(kind: str, probe: HardwareProbe) -> tuple[str, str]:
    if kind == "cuda":
        if probe.cuda_bf16:
            return "bf16", "auto: the CUDA device supports bf16"
        return "fp16", "auto: the CUDA device has no bf16; fp16 with a gradient scaler"
    if kind == "cpu":
        if probe.cpu_native_bf16:
            native = [f for f in ("avx512_bf16", "amx_bf16") if f in probe.cpu_flags]
            return "bf16", f"auto: the CPU computes bf16 natively ({', '.join(native)})"
        return "fp32", ("auto: the CPU has no AVX512-BF16 or AMX, bf16 would be emulated "
                        "(several times slower)")
    return "fp32", f"auto: fp32 on {kind}"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for bf16 / fp16 on ``device``; a no-op for fp32 (resolve ``auto`` first)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in DTYPES:
        raise ConfigError(f"autocast: precision {precision!r} is not resolved; expected fp32, bf16 or fp16 "
                          "(resolve 'auto' with resolve_precision)")
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A scaler that is active only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
