"""``pcm3 doctor``: what a bug report needs about this machine, and how fast it trains.

Versions (pcm3, torch, Python, OS), the device ``auto`` picks, the CPU and its vector
extensions (AVX2 / AVX-512 / AMX; native bf16 or not), CUDA and MPS, the threads, the precision
``auto`` picks, and a short micro-benchmark: samples/s of one quick-config training step in
each precision the device offers.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from pcm3 import __version__
from pcm3.engine.hardware import HardwareProbe


def doctor_report(seconds: float = 5.0, config: Path | None = None, overrides: list[str] | None = None,
                  device: str = "auto", probe: HardwareProbe | None = None) -> dict[str, Any]:
    """The report as a JSON-friendly dict. ``seconds``: the micro-benchmark's whole budget, shared
    by the precisions (0: no benchmark); ``config``: the pre-training config whose step is timed
    (default ``configs/pcm3_quick.yaml``), with ``overrides``."""
    from pcm3.engine.runtime import resolve_runtime
    from pcm3.engine.threads import available_cores

    runtime = resolve_runtime(device, "auto", probe)
    cores = available_cores()
    report: dict[str, Any] = {
        "pcm3": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "os": platform.platform(),
        "device": {"chosen": str(runtime.device), "reason": runtime.device_reason,
                   "cuda": runtime.probe.cuda_available, "cuda_devices": list(runtime.probe.cuda_devices),
                   "cuda_bf16": runtime.probe.cuda_bf16, "mps": runtime.probe.mps_available},
        "cpu": {"model": runtime.probe.cpu_model, "flags": runtime.probe.simd(),
                "torch_capability": runtime.probe.torch_cpu_capability,
                "native_bf16": runtime.probe.cpu_native_bf16, "summary": runtime.probe.capability_line()},
        "threads": {"torch": torch.get_num_threads(), "reason": runtime.threads_reason,
                    "usable_cores": cores.cores, "machine_cores": cores.machine, "affinity": cores.affinity,
                    "cgroup_quota": cores.quota},
        "auto": {"device": str(runtime.device), "precision": runtime.precision,
                 "reason": runtime.precision_reason},
        "benchmark": benchmark(runtime, seconds, config, overrides or []),
    }
    return report


def benchmark(runtime: Any, seconds: float, config: Path | None, overrides: list[str]) -> dict[str, Any]:
    """``{"config", "batch_size", "results": [...]}`` or ``{"skipped": reason}``."""
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig
    from pcm3.engine.step_benchmark import benchmark_precisions, find_quick_config, time_training_step

    if seconds <= 0:
        return {"skipped": "--seconds 0"}
    path = config or find_quick_config()
    if path is None:
        return {"skipped": "configs/pcm3_quick.yaml not found (run from the pcm3 checkout or pass --config)"}
    cfg = load_config(PretrainConfig, path, overrides)
    precisions = benchmark_precisions(runtime.device, runtime.probe)
    results = []
    for precision in precisions:
        try:
            timing = time_training_step(cfg, runtime.device, precision, seconds / len(precisions))
            row: dict[str, Any] = timing.to_dict()
        except (RuntimeError, NotImplementedError) as exc:  # e.g. an op missing in fp16 on MPS
            row = {"precision": precision, "error": (str(exc).strip().splitlines() or [""])[0][:200]}
        row["auto"] = precision == runtime.precision
        results.append(row)
    return {"config": str(path), "overrides": overrides, "batch_size": cfg.batch_size,
            "device": str(runtime.device), "results": results}


def format_report(report: dict[str, Any]) -> str:
    """The report as aligned ``key: value`` lines."""
    cpu, dev, threads, auto = report["cpu"], report["device"], report["threads"], report["auto"]
    flags = ", ".join(cpu["flags"]) or "none of avx2, avx512f, avx512_bf16, amx"
    lines = [
        f"pcm3      {report['pcm3']} (torch {report['torch']}, Python {report['python']})",
        f"os        {report['os']}",
        f"cpu       {cpu['model']}: {flags}; torch kernels {cpu['torch_capability']}; "
        f"native bf16 {'yes' if cpu['native_bf16'] else 'no'}",
        f"cuda      {', '.join(dev['cuda_devices']) + (' (bf16)' if dev['cuda_bf16'] else ' (no bf16)')}"
        if dev["cuda"] else "cuda      not available",
        f"mps       {'available' if dev['mps'] else 'not available'}",
        f"device    {dev['chosen']} ({dev['reason']})",
        f"threads   {threads['torch']} ({threads['reason']})",
        f"auto      precision {auto['precision']} ({auto['reason']})",
    ]
    bench = report["benchmark"]
    if "skipped" in bench:
        lines.append(f"benchmark skipped: {bench['skipped']}")
        return "\n".join(lines)
    lines.append(f"benchmark one training step of {bench['config']} (batch {bench['batch_size']}, random "
                 f"clips) on {bench['device']}:")
    for row in bench["results"]:
        mark = "  <- auto" if row["auto"] else ""
        if "error" in row:
            lines.append(f"  {row['precision']:<5} failed: {row['error']}{mark}")
            continue
        steps = "the warm-up step only" if row["warmup_only"] else f"{row['steps']} steps after a warm-up"
        lines.append(f"  {row['precision']:<5} {row['samples_per_s']:8.1f} samples/s ({steps}, "
                     f"{row['seconds']:.1f} s){mark}")
    return "\n".join(lines)
