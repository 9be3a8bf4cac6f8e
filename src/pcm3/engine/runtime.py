"""Where and how a run computes: device, precision and threads, each with its reason.

``device: auto`` prefers CUDA, then Apple MPS, then the CPU. An op MPS does not implement
stops a run unless ``PYTORCH_ENABLE_MPS_FALLBACK=1`` is set (PyTorch then runs that op on the
CPU); pre-training tries one step on MPS first and falls back to the CPU with a message when
``auto`` chose MPS (:func:`check_device_step`). Everything is decided before any work, printed
at the start of a run and written to its folder (``run_info.json``).
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pcm3 import __version__
from pcm3.engine import hardware
from pcm3.engine.hardware import HardwareProbe
from pcm3.engine.precision import resolve_precision
from pcm3.engine.threads import configure_threads
from pcm3.errors import ConfigError, Pcm3Error

DEVICES = "auto, cpu, cuda, cuda:N, mps"
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str, probe: HardwareProbe) -> tuple[torch.device, str]:
    """``(device, reason)`` for a config's ``device`` value; refuses unknown names and devices
    this machine does not have (before any work)."""
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ConfigError(f"device: {name!r} is not allowed; allowed values: {DEVICES}")
    if name == "auto":
        if probe.cuda_available:
            return torch.device("cuda"), "auto: CUDA is available"
        if probe.mps_available:
            return torch.device("mps"), "auto: Apple MPS is available (no CUDA)"
        return torch.device("cpu"), "auto: no CUDA or MPS"
    device = torch.device(name)
    if device.type == "cuda":
        if not probe.cuda_available:
            raise ConfigError(f"device={name}: CUDA is not available on this machine (torch "
                              f"{torch.__version__}); use device=auto or device=cpu")
        if device.index is not None and device.index >= len(probe.cuda_devices):
            raise ConfigError(f"device={name}: this machine has {len(probe.cuda_devices)} CUDA devices "
                              f"(cuda:0 .. cuda:{len(probe.cuda_devices) - 1})")
    if device.type == "mps" and not probe.mps_available:
        raise ConfigError(f"device={name}: Apple MPS is not available on this machine; use device=auto "
                          "or device=cpu")
    return device, "requested"


@dataclass
class Runtime:
    """The resolved device, precision and threads of a run, each with the reason it was chosen."""

    device: torch.device
    device_reason: str
    precision: str
    precision_reason: str
    threads: int
    threads_reason: str
    probe: HardwareProbe
    requested: dict[str, str]

    def describe(self) -> str:
        return (f"device {self.device} ({self.device_reason}); precision {self.precision} "
                f"({self.precision_reason}); {self.threads} threads ({self.threads_reason})")

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "device": str(self.device), "device_reason": self.device_reason,
                "precision": self.precision, "precision_reason": self.precision_reason,
                "threads": self.threads, "threads_reason": self.threads_reason,
                "cpu": self.probe.capability_line(), "hardware": self.probe.to_dict(),
                "torch": torch.__version__, "python": platform.python_version(), "pcm3": __version__}


def resolve_runtime(device: str = "auto", precision: str = "auto", probe: HardwareProbe | None = None,
                    auto_device: torch.device | None = None) -> Runtime:
    """Decide device, precision and threads (setting torch's thread count once per process).

    ``auto_device``: what ``device: auto`` means when the caller already knows (a torchrun
    process uses the device of its rank).
    """
    probe = probe or hardware.probe_hardware()
    if device == "auto" and auto_device is not None:
        chosen, device_reason = auto_device, "auto: the device of this distributed process"
    else:
        chosen, device_reason = resolve_device(device, probe)
    resolved, precision_reason = resolve_precision(precision, chosen, probe)
    threads, threads_reason = configure_threads()
    return Runtime(chosen, device_reason, resolved, precision_reason, threads, threads_reason, probe,
                   {"device": device, "precision": precision})


def check_device_step(runtime: Runtime, step: Callable[[torch.device], Any],
                      log: Callable[[str], None] = print) -> Runtime:
    """Run ``step(device)`` once on an MPS device before the real work.

    When an op is missing on MPS: ``auto`` falls back to the CPU (precision re-resolved) with a
    message; an explicit ``device=mps`` is a clear error. Other devices are returned unchanged.
    """
    if runtime.device.type != "mps":
        return runtime
    try:
        step(runtime.device)
        return runtime
    except (NotImplementedError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        hint = "set PYTORCH_ENABLE_MPS_FALLBACK=1 to run the missing ops on the CPU"
        if runtime.requested["device"] != "auto":
            raise Pcm3Error(f"device=mps: an op of this run is not supported on MPS ({reason}); {hint}, "
                            "or use device=cpu") from exc
        log(f"note: MPS cannot run this model ({reason}); using the CPU instead ({hint})")
    cpu = torch.device("cpu")
    precision, precision_reason = resolve_precision(runtime.requested["precision"], cpu, runtime.probe)
    return Runtime(cpu, "auto: MPS lacks an op of this model", precision, precision_reason, runtime.threads,
                   runtime.threads_reason, runtime.probe, runtime.requested)


def model_step_check(method: torch.nn.Module, store: Any, precision: str) -> Callable[[torch.device], None]:
    """A :func:`check_device_step` step: forward + backward of a copy of ``method`` on the first
    clips of ``store`` (the copy leaves ``method``'s BatchNorm statistics and queue untouched)."""
    import numpy as np

    from pcm3.data.batches import ClipBatches
    from pcm3.engine.precision import autocast

    def step(device: torch.device) -> None:
        rows = np.arange(min(4, len(store)))
        batch = ClipBatches(store, len(rows), shuffle=False, drop_last=False).read(rows).to(device)
        trial = copy.deepcopy(method).to(device).train()
        with autocast(device, precision):
            losses = trial(batch.x, batch.lengths, torch.Generator(device=device).manual_seed(0))
        losses["loss"].backward()

    return step


def write_run_info(run_dir: Path, runtime: Runtime, **extra: Any) -> Path:
    """Write ``run_dir/run_info.json``: the resolved runtime of the latest start of the run (the
    run's ``config.yaml`` keeps what the user asked for, e.g. ``precision: auto``)."""
    info = {"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "pid": os.getpid(), **runtime.to_dict(), **extra}
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run_info.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)
    return path
