"""Reading files written before the encoder spec existed (pcm3 0.1.0.dev0, BiGRU only).

Those checkpoints and exports have a config whose ``model`` block holds the BiGRU options flat
(``model.hidden_size``, ``num_layers``, ``bidirectional``, ``pooling``), the layout, and no
record of the input channels and persons: the one place they appear is the width of the
encoder's input BatchNorm, ``V*C*M``. Only here is that width read, to rebuild the spec of such
a file; everything newer carries its spec.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from pcm3.engine.config_migration import move_method_settings
from pcm3.errors import Pcm3Error
from pcm3.layouts import layout_from_dict
from pcm3.models.encoder import EncoderSpec

LEGACY_BIGRU_KEYS = ("hidden_size", "num_layers", "bidirectional", "pooling")


def migrate_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a pre-training config mapping with old flat BiGRU keys moved into
    ``model.bigru`` and PCM3's old top-level ``loss`` / ``moco`` / ``clip`` into the method's
    block (``engine/config_migration.py``; other methods' files keep them, unread)."""
    config = move_method_settings(config, final=False)
    model = config.get("model")
    if not isinstance(model, dict) or not any(k in model for k in LEGACY_BIGRU_KEYS):
        return config
    out = copy.deepcopy(config)
    model = out["model"]
    block = model.setdefault(model.get("backbone", "bigru"), {})
    for key in LEGACY_BIGRU_KEYS:
        if key in model:
            block[key] = model.pop(key)
    return out


def legacy_spec(config: dict[str, Any], layout: Any, input_norm_width: int, where: str) -> EncoderSpec:
    """The spec of a legacy BiGRU file: options, stream and view length from its (migrated)
    ``config``, the layout, and (C, M) from the input BatchNorm width ``V*C*M``, trying C = 3
    then 2 with M in 1..4 (what the code that wrote the file did)."""
    if layout is None:
        raise Pcm3Error(f"{where}: written by an old pcm3 without a layout; it cannot be loaded")
    layout = layout_from_dict(layout, source=where)
    config = migrate_config(config)
    model = config.get("model", {})
    name = model.get("backbone", "bigru")
    if name != "bigru":
        raise Pcm3Error(f"{where}: no encoder spec and backbone {name!r}; only BiGRU files predate the spec")
    joints = layout.num_joints
    for channels in (3, 2):
        persons, rest = divmod(input_norm_width, joints * channels)
        if rest == 0 and 1 <= persons <= 4:
            break
    else:
        raise Pcm3Error(f"{where}: input BatchNorm width {input_norm_width} does not fit the "
                        f"{joints}-joint layout {layout.name!r} with 2 or 3 channels")
    augment = config.get("augment", {})
    return EncoderSpec("bigru", dict(model.get("bigru", {})), channels, persons, layout,
                       stream=str(config.get("stream", "joint")),
                       view_frames=int(augment.get("view_frames", 64)))


def reshape_prompt(prompt: torch.Tensor | None, spec: EncoderSpec) -> torch.Tensor | None:
    """A legacy ``(1, 1, F)`` input prompt as ``(1, F)``, the BiGRU's ``(1, *input_prompt_shape)``."""
    if prompt is None:
        return None
    return prompt.reshape(1, -1) if spec.backbone == "bigru" and prompt.dim() == 3 else prompt


def fit_tensor_shapes(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``state`` with each tensor reshaped to the shape of the same key in ``reference`` where only
    the shape differs (legacy ``(1, 1, F)`` input prompts of a method: now ``(1, F)``)."""
    out = dict(state)
    for key, value in state.items():
        target = reference.get(key)
        if (isinstance(value, torch.Tensor) and target is not None and value.shape != target.shape
                and value.numel() == target.numel()):
            out[key] = value.reshape(target.shape)
    return out
