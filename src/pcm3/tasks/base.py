"""What every downstream task shares: its context, its registry entry, the raw-coordinate
reference encoder.

A task is ``run(ctx, cfg) -> metrics`` with a typed config dataclass (defaults from the
literature, overridable with ``key=value``). ``TASKS[name]`` holds both; ``pcm3 eval`` and
``pcm3 bench`` only go through this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pcm3.errors import Pcm3Error
from pcm3.tasks.encoders import LoadedEncoder


@dataclass
class TaskContext:
    """Everything a task needs besides its config.

    ``store_path``: the store holding the task's data (trimmed, or with ``untrimmed/``);
    ``out_dir``: where the task may write pictures or caches (None: write nothing);
    ``seed``: the seed of every random choice the task makes.
    """

    encoder: LoadedEncoder
    store_path: Path
    device: torch.device
    seed: int = 0
    out_dir: Path | None = None


@dataclass
class TaskSpec:
    config: type
    run: Callable[[TaskContext, Any], dict[str, Any]]
    description: str


TASKS: dict[str, TaskSpec] = {}

# task name -> the module of ``pcm3.tasks`` that registers it (imported on first use)
TASK_MODULES = {
    "linear": "linear", "knn": "knn", "occlusion": "occlusion", "detection": "detection",
    "finetune": "finetune", "semi": "semi", "fewshot": "fewshot", "transfer": "transfer",
    "ensemble": "ensemble",
}


def register_task(name: str, config: type, description: str) -> Callable:
    """Decorator: ``@register_task("linear", LinearConfig, "...")`` on ``run(ctx, cfg)``."""

    def decorate(run: Callable[[TaskContext, Any], dict[str, Any]]) -> Callable:
        TASKS[name] = TaskSpec(config, run, description)
        return run

    return decorate


def get_task(name: str) -> TaskSpec:
    """The registered task ``name`` (its module is imported on first use)."""
    if name not in TASKS and name in TASK_MODULES:
        import importlib

        importlib.import_module(f"pcm3.tasks.{TASK_MODULES[name]}")
    if name not in TASKS:
        raise Pcm3Error(f"unknown task {name!r}; tasks: {', '.join(sorted(TASK_MODULES))}")
    return TASKS[name]


class RawCoordinates(nn.Module):
    """The "raw" reference representation: the evaluation view's coordinates, flattened.

    ``forward_features``: ``(N, C, T, V, M) -> (N, C*T*V*M)``; ``forward_dense``: per frame
    ``(N, T, C*V*M)`` (causal, time stride 1). No parameters: what a linear model on coordinates
    can do alone.
    """

    causal, time_stride = True, 1

    def __init__(self, in_channels: int, frames: int, num_joints: int, num_persons: int) -> None:
        super().__init__()
        self.feature_dim = in_channels * frames * num_joints * num_persons
        self.frame_dim = in_channels * num_joints * num_persons

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return x.flatten(1)

    def forward_dense(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return x.permute(0, 2, 3, 1, 4).flatten(2)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forward_features(x, lengths)


def raw_encoder(layout: Any, in_channels: int, num_persons: int, frames: int = 64,
                stream: str = "joint") -> LoadedEncoder:
    """The ``raw`` reference row as a :class:`LoadedEncoder`."""
    module = RawCoordinates(in_channels, frames, layout.num_joints, num_persons)
    return LoadedEncoder(module, layout, stream, frames, "raw", {})  # type: ignore[arg-type]


def store_input_shape(store: Any) -> tuple[int, int]:
    """``(C, M)``: channels and persons of a trimmed store (``x``: ``(N, C, T, V, M)``) or an
    untrimmed one (``frames``: ``(total frames, C, V, M)``)."""
    if hasattr(store, "x"):
        return int(store.x.shape[1]), int(store.x.shape[4])
    return int(store.frames.shape[1]), int(store.frames.shape[3])


def check_compatible(encoder: LoadedEncoder, store: Any) -> None:
    """Refuse a store whose layout or input shape (channels, persons) the encoder was not built
    for, naming both sides (the encoder's spec says what it takes)."""
    channels, persons = store_input_shape(store)
    if encoder.spec is not None:
        encoder.spec.check_input(store.layout, channels, persons, f"the encoder {encoder.source}",
                                 f"the store {store.path}")
        return
    if encoder.layout.to_dict() != store.layout.to_dict():
        raise Pcm3Error(f"the encoder {encoder.source} expects layout {encoder.layout.name!r} "
                        f"({encoder.layout.num_joints} joints); the store {store.path} has "
                        f"{store.layout.name!r} ({store.layout.num_joints} joints)")
    module, joints = encoder.encoder, store.layout.num_joints
    if isinstance(module, RawCoordinates) and module.frame_dim != channels * joints * persons:
        raise Pcm3Error(f"the raw encoder expects {module.frame_dim} values per frame; the store "
                        f"{store.path} has {channels} channels x {store.layout.num_joints} joints x "
                        f"{persons} persons")
