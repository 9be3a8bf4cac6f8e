"""Samples per second of one pre-training step, on random clips, in a given precision.

The step is the trainer's (views + forward + backward + optimiser update, under the precision's
autocast and gradient scaler); the clips are random walks in the built-in dataset's layout
(``ntu25``, 3 channels, 2 persons, 60-200 valid frames), so no dataset is needed. ``pcm3
doctor`` runs it with the settings of ``configs/pcm3_quick.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pcm3.engine.config import PretrainConfig
from pcm3.engine.hardware import HardwareProbe
from pcm3.engine.precision import autocast, grad_scaler

QUICK_CONFIG = Path("configs") / "pcm3_quick.yaml"


def find_quick_config() -> Path | None:
    """``configs/pcm3_quick.yaml`` in the working directory or in the pcm3 checkout that holds
    this package (None when pcm3 is installed without its checkout)."""
    checkout = Path(__file__).resolve().parents[3]
    for path in (Path.cwd() / QUICK_CONFIG, checkout / QUICK_CONFIG):
        if path.is_file():
            return path
    return None


def random_clips(batch: int, seed: int = 0, frames: tuple[int, int] = (60, 200)) -> tuple[torch.Tensor,
                                                                                        torch.Tensor]:
    """``x (batch, 3, T, 25, 2)`` random-walk clips, zero after each length ``U[frames]``, and
    ``lengths (batch,)``; ``T`` = the longest length."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(frames[0], frames[1] + 1, size=batch)
    t = int(lengths.max())
    x = np.cumsum(rng.normal(scale=0.02, size=(batch, 3, t, 25, 2)), axis=2).astype(np.float32)
    x *= (np.arange(t)[None, :] < lengths[:, None])[:, None, :, None, None]
    return torch.from_numpy(x), torch.from_numpy(lengths.astype(np.int64))


def benchmark_precisions(device: torch.device, probe: HardwareProbe) -> list[str]:
    """The precisions worth timing on ``device``: fp32, bf16 (on a CPU also where it is only
    emulated: that is what the number shows), fp16 on CUDA and MPS."""
    if device.type == "cuda":
        return ["fp32", "bf16", "fp16"] if probe.cuda_bf16 else ["fp32", "fp16"]
    if device.type == "mps":
        return ["fp32", "fp16"]
    return ["fp32", "bf16"]


@dataclass
class StepTiming:
    """``samples_per_s`` over ``steps`` timed steps (``warmup_only``: the budget allowed only the
    first, warm-up step, which is then what was timed)."""

    precision: str
    samples_per_s: float
    steps: int
    seconds: float
    warmup_only: bool

    def to_dict(self) -> dict[str, object]:
        return {"precision": self.precision, "samples_per_s": round(self.samples_per_s, 1),
                "steps": self.steps, "seconds": round(self.seconds, 2), "warmup_only": self.warmup_only}


def time_training_step(cfg: PretrainConfig, device: torch.device, precision: str, seconds: float,
                       seed: int = 0) -> StepTiming:
    """Train a fresh ``cfg`` model on one random batch of ``cfg.batch_size`` clips for about
    ``seconds`` (after one warm-up step) in ``precision`` (``fp32``, ``bf16`` or ``fp16``)."""
    from pcm3.engine.optim import build_optimizer
    from pcm3.engine.trainer import step_generator
    from pcm3.layouts import NTU25
    from pcm3.methods import build_method

    torch.manual_seed(seed)
    method = build_method(cfg, NTU25, 3, 2).to(device).train()
    optimizer = build_optimizer(method.parameters(), cfg.optim)
    scaler = grad_scaler(device, precision)
    x, lengths = (t.to(device) for t in random_clips(cfg.batch_size, seed))

    def step(i: int) -> float:
        tick = time.perf_counter()
        with autocast(device, precision):
            losses = method(x, lengths, step_generator(seed, i, 0, device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - tick

    warmup = step(0)
    if warmup >= seconds:
        return StepTiming(precision, cfg.batch_size / warmup, 1, warmup, True)
    times: list[float] = []
    while sum(times) + warmup < seconds or not times:
        times.append(step(len(times) + 1))
    total = sum(times)
    return StepTiming(precision, cfg.batch_size * len(times) / total, len(times), total, False)
