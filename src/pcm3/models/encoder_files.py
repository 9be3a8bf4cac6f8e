"""Encoders as safetensors files: the backbone's weights, the input prompt (``input_prompt``,
when the encoder has one) and, in the metadata, the encoder spec (``encoder_spec``, JSON) plus
free-form provenance (the pre-training config, data fingerprint, step).

Files written before the spec existed (metadata ``pcm3_config`` + ``layout`` only) still load
(:mod:`pcm3.models.legacy`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pcm3.errors import Pcm3Error
from pcm3.models.encoder import EncoderSpec, PromptedEncoder, build_encoder
from pcm3.models.legacy import legacy_spec, reshape_prompt

PROMPT_TENSOR = "input_prompt"
SPEC_METADATA = "encoder_spec"


def save_encoder(encoder: PromptedEncoder, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``encoder`` (which must carry its spec) to ``path``; ``metadata`` values are
    stored as JSON strings next to the spec."""
    if encoder.spec is None:
        raise Pcm3Error(f"{path}: the encoder has no spec; build it with pcm3.models.encoder.build_encoder")
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in encoder.backbone.state_dict().items()}
    if encoder.input_prompt is not None:
        tensors[PROMPT_TENSOR] = encoder.input_prompt.detach().contiguous()
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta[SPEC_METADATA] = encoder.spec.to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_encoder(path: str | Path) -> tuple[PromptedEncoder, dict[str, str]]:
    """The encoder stored in ``path`` (in eval mode) and the file's metadata."""
    from safetensors import safe_open

    where = str(path)
    try:
        with safe_open(where, framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise Pcm3Error(f"{where}: cannot read safetensors file ({type(exc).__name__}: {exc})") from exc
    prompt = tensors.pop(PROMPT_TENSOR, None)
    if SPEC_METADATA in meta:
        spec = EncoderSpec.from_dict(json.loads(meta[SPEC_METADATA]), where)
    elif "pcm3_config" in meta and meta.get("layout") not in (None, "null"):
        norm = tensors.get("input_norm.weight")
        if norm is None:
            raise Pcm3Error(f"{where}: old pcm3 export without its input BatchNorm weights")
        spec = legacy_spec(json.loads(meta["pcm3_config"]), json.loads(meta["layout"]), norm.shape[0], where)
        prompt = reshape_prompt(prompt, spec)
    else:
        raise Pcm3Error(f"{where}: not a pcm3 encoder export (no encoder spec in its metadata)")
    return encoder_with_weights(spec, tensors, prompt, where), meta


def encoder_with_weights(spec: EncoderSpec, weights: dict[str, torch.Tensor], prompt: torch.Tensor | None,
                         where: str) -> PromptedEncoder:
    """:func:`build_encoder` of ``spec`` holding ``weights`` (the backbone's whole state dict)
    and ``prompt``, in eval mode; weights that do not fit the spec are an error naming ``where``."""
    encoder = build_encoder(spec, prompt)
    try:
        missing, unexpected = encoder.backbone.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise Pcm3Error(f"{where}: encoder weights do not fit its spec ({spec.backbone}, "
                        f"{spec.describe()}): {str(exc).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise Pcm3Error(f"{where}: encoder weights do not match backbone {spec.backbone!r} "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return encoder.eval()
