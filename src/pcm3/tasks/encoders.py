"""Encoders for downstream tasks: from a pcm3 checkpoint, an exported safetensors file, an
official PCM3 checkpoint, or a random initialisation of the same architecture.

Every loader returns a :class:`LoadedEncoder`: the encoder (``forward_features`` /
``forward_dense``, in eval mode) plus what a task needs to feed it correctly (layout, stream,
view length) and to record where it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pcm3.config import from_dict, to_dict
from pcm3.engine.config import PretrainConfig
from pcm3.errors import Pcm3Error
from pcm3.layouts import Layout, layout_from_dict
from pcm3.methods.base import PromptedEncoder
from pcm3.models.registry import create_backbone


@dataclass
class LoadedEncoder:
    """An encoder and its provenance. ``source`` names it in result tables."""

    encoder: PromptedEncoder
    layout: Layout
    stream: str
    view_frames: int
    source: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim


def build_encoder(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> PromptedEncoder:
    """A freshly initialised encoder of the architecture ``cfg.model`` describes."""
    m = cfg.model
    backbone = create_backbone(
        m.backbone, num_joints=layout.num_joints, num_persons=num_persons, in_channels=in_channels,
        hidden_size=m.hidden_size, num_layers=m.num_layers, bidirectional=m.bidirectional,
        pooling=m.pooling,
    )
    return PromptedEncoder(backbone)


def _from_pcm3_checkpoint(path: Path) -> LoadedEncoder:
    from pcm3.engine.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    cfg = from_dict(PretrainConfig, state["config"])
    if "layout" not in state:
        raise Pcm3Error(f"{path}: checkpoint has no layout (written by an older pcm3?)")
    layout = layout_from_dict(state["layout"], source=str(path))
    model = state["model"]
    weights = {k[len("encoder."):]: v for k, v in model.items() if k.startswith("encoder.")}
    prompt = model.get("input_prompts.prompts.base")
    return _assemble(cfg, layout, weights, prompt, f"{path}", str(path))


def _from_safetensors(path: Path) -> LoadedEncoder:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if "pcm3_config" not in meta or meta.get("layout") in (None, "null"):
        raise Pcm3Error(f"{path}: not a pcm3 encoder export (no config / layout metadata)")
    cfg = from_dict(PretrainConfig, json.loads(meta["pcm3_config"]))
    layout = layout_from_dict(json.loads(meta["layout"]), source=str(path))
    prompt = tensors.pop("input_prompt", None)
    return _assemble(cfg, layout, tensors, prompt, str(path), str(path))


def _assemble(cfg: PretrainConfig, layout: Layout, weights: dict[str, torch.Tensor],
              prompt: torch.Tensor | None, source: str, where: str) -> LoadedEncoder:
    norm = weights.get("input_norm.weight")
    if norm is None:
        raise Pcm3Error(f"{where}: no encoder input BatchNorm weights found")
    features = norm.shape[0]
    num_persons, in_channels = _persons_channels(features, layout.num_joints, where)
    encoder = build_encoder(cfg, layout, in_channels, num_persons)
    missing, unexpected = encoder.backbone.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise Pcm3Error(f"{where}: encoder weights do not match the architecture "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    use_prompt = prompt is not None and cfg.stream == "joint" and cfg.model.input_prompts
    encoder = PromptedEncoder(encoder.backbone, prompt if use_prompt else None).eval()
    return LoadedEncoder(encoder, layout, cfg.stream, cfg.augment.view_frames, source, to_dict(cfg))


def _persons_channels(features: int, joints: int, where: str) -> tuple[int, int]:
    for channels in (3, 2):
        if features % (joints * channels) == 0 and features // (joints * channels) in (1, 2, 3, 4):
            return features // (joints * channels), channels
    raise Pcm3Error(f"{where}: {features} input features do not fit a {joints}-joint layout")


def random_encoder(cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int,
                   seed: int = 0) -> LoadedEncoder:
    """The reference row: the same architecture, randomly initialised (fixed seed), no prompt.

    The global RNG state is restored afterwards, so building it does not change later draws."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build_encoder(cfg, layout, in_channels, num_persons).eval()
    return LoadedEncoder(encoder, layout, cfg.stream, cfg.augment.view_frames, "random-init", to_dict(cfg))


def load_encoder(path: str | Path) -> LoadedEncoder:
    """A pcm3 checkpoint (``.pt``) or an exported encoder (``.safetensors``)."""
    path = Path(path)
    if not path.exists():
        raise Pcm3Error(f"{path}: encoder file not found")
    if path.suffix == ".safetensors":
        return _from_safetensors(path)
    return _from_pcm3_checkpoint(path)
