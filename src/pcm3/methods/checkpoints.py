"""What a pre-training checkpoint holds of a method's encoder: its spec, and the feature encoder
(query backbone + clean-view input prompt) rebuilt from it. Checkpoints written before the spec
existed are read through :mod:`pcm3.models.legacy`.
"""

from __future__ import annotations

from typing import Any

import torch

from pcm3.errors import Pcm3Error
from pcm3.methods.base import ENCODER_PREFIX, EVAL_PROMPT_KEY
from pcm3.models.encoder import EncoderSpec, PromptedEncoder
from pcm3.models.encoder_files import encoder_with_weights
from pcm3.models.legacy import fit_tensor_shapes, legacy_spec, migrate_config, reshape_prompt

SPEC_KEY = "encoder_spec"  # the checkpoint entry holding EncoderSpec.to_dict()


def is_legacy(state: dict[str, Any]) -> bool:
    """True for a checkpoint written before checkpoints held the encoder spec."""
    return SPEC_KEY not in state


def checkpoint_spec(state: dict[str, Any], where: str) -> EncoderSpec:
    """The encoder spec of a loaded checkpoint ``state`` (``where``: its path, for errors)."""
    if not is_legacy(state):
        return EncoderSpec.from_dict(state[SPEC_KEY], where)
    norm = state["model"].get(f"{ENCODER_PREFIX}input_norm.weight")
    if norm is None:
        raise Pcm3Error(f"{where}: old pcm3 checkpoint without encoder input BatchNorm weights")
    return legacy_spec(state.get("config") or {}, state.get("layout"), norm.shape[0], where)


def checkpoint_config(state: dict[str, Any]) -> dict[str, Any]:
    """The pre-training config mapping of a checkpoint, old flat model keys migrated."""
    return migrate_config(state.get("config") or {})


def feature_encoder_from_checkpoint(state: dict[str, Any], where: str) -> PromptedEncoder:
    """The method's feature encoder (what ``feature_encoder()`` returned), in eval mode."""
    spec = checkpoint_spec(state, where)
    model = state["model"]
    weights = {k[len(ENCODER_PREFIX):]: v for k, v in model.items() if k.startswith(ENCODER_PREFIX)}
    if not weights:
        raise Pcm3Error(f"{where}: no encoder weights found (no '{ENCODER_PREFIX}*' entries)")
    prompt = model.get(EVAL_PROMPT_KEY)
    if is_legacy(state):
        prompt = reshape_prompt(prompt, spec)
    return encoder_with_weights(spec, weights, prompt, where)


def migrate_legacy_state(state: dict[str, Any], method: torch.nn.Module,
                         optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """A legacy checkpoint's model and optimizer state reshaped to ``method``'s parameters
    (its ``(1, 1, F)`` input prompts are ``(1, F)`` now); newer checkpoints are returned as is."""
    if not is_legacy(state):
        return state
    out = dict(state, model=fit_tensor_shapes(state["model"], method.state_dict()))
    if optimizer is not None and "optimizer" in state:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        moments = {i: fit_tensor_shapes(s, dict.fromkeys([k for k in s if k != "step"], params[i]))
                   if i < len(params) else s for i, s in state["optimizer"].get("state", {}).items()}
        out["optimizer"] = dict(state["optimizer"], state=moments)
    return out
