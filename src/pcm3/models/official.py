"""Load official PCM3 / CMD checkpoints (``JHang2020/PCM3``, ``maoyunyao/CMD``) into our modules.

Official names (``moco/GRU.py``, ``moco/builder_mask_recons.py``), all optionally behind
``module.`` (DataParallel):

- pre-training ``MoCo``: ``encoder_q.input_norm.*`` (BatchNorm1d(F)),
  ``encoder_q.encoder.gru.{weight,bias}_{ih,hh}_l{k}[_reverse]`` (``nn.GRU(F, H, L,
  bidirectional=True)``), ``encoder_q.fc.0.*`` / ``encoder_q.fc.2.*`` (projector), plus
  ``encoder_k.*``, ``linear.*``, ``recons_decoder.*``, prompts and the queue (ignored here);
- a downstream ``BIGRU``: the same without ``encoder_q.``, ``fc.*`` being the classifier.

When ``encoder_q.`` keys exist only they are considered; otherwise every key is. The GRU is
found as the one module holding ``*_reverse`` parameters, the input BatchNorm as the one
holding ``running_mean`` (preferring ``input_norm.``). Each loader returns a report
``{"loaded": {our_key: official_key}, "ignored": [official keys not used]}`` and raises
:class:`ConfigError` naming the key on a missing key or a shape mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from torch import Tensor, nn

from pcm3.errors import ConfigError
from pcm3.models.bigru import BiGRUEncoder
from pcm3.models.heads import Projector

_GRU_KEY = re.compile(r"^(?P<prefix>.*?)(?P<name>(?:weight|bias)_(?:ih|hh))_l(?P<layer>\d+)"
                      r"(?P<reverse>_reverse)?$")
_GRU_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_BN_NAMES = ("weight", "bias", "running_mean", "running_var")
_BN_OPTIONAL = ("num_batches_tracked",)  # unused with a fixed momentum; some exports drop it
_SCOPE = "encoder_q."


def official_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The state dict inside an official checkpoint (``{"state_dict": ...}``) or ``checkpoint``."""
    inner = checkpoint.get("state_dict", checkpoint)
    if not isinstance(inner, Mapping):
        raise ConfigError("official checkpoint: 'state_dict' is not a mapping of tensors")
    bad = [k for k, v in inner.items() if not isinstance(v, Tensor)]
    if bad:
        raise ConfigError(f"official checkpoint: entries that are not tensors: {bad[:5]}")
    return dict(inner)


def _scope(state_dict: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """Map scoped names (``module.`` and ``encoder_q.`` removed) to original keys."""
    stripped = {key.removeprefix("module."): key for key in official_state_dict(state_dict)}
    if any(k.startswith(_SCOPE) for k in stripped):
        scoped = {k[len(_SCOPE):]: orig for k, orig in stripped.items() if k.startswith(_SCOPE)}
        return scoped, _SCOPE
    return stripped, ""


def _pick(candidates: set[str], preferred: str, what: str, scope: str) -> str:
    if len(candidates) == 1:
        return next(iter(candidates))
    if preferred in candidates:
        return preferred
    if not candidates:
        where = repr(scope) if scope else "the top level"
        raise ConfigError(f"official checkpoint: no {what} found under {where}")
    names = ", ".join(repr(scope + c) for c in sorted(candidates))
    raise ConfigError(f"official checkpoint: several candidates for the {what}: {names}")


def _load_mapped(
    module: nn.Module,
    state_dict: Mapping[str, Any],
    mapping: dict[str, str],
    names: dict[str, str],
    scope: str,
    optional: Collection[str] = (),
) -> dict[str, Any]:
    """Load ``module`` from ``state_dict`` through ``mapping`` (our key -> scoped official key)."""
    tensors = official_state_dict(state_dict)
    ours = module.state_dict()
    if set(mapping) != set(ours):
        raise ConfigError(f"internal: mapping does not cover {sorted(set(ours) ^ set(mapping))}")
    new_state, loaded = {}, {}
    for key, official in mapping.items():
        if official not in names:
            if key in optional:
                new_state[key] = ours[key]
                continue
            raise ConfigError(
                f"official checkpoint: missing key {scope + official!r} "
                f"(needed for {key!r}, expected shape {tuple(ours[key].shape)})"
            )
        value = tensors[names[official]]
        if value.shape != ours[key].shape:
            raise ConfigError(
                f"official checkpoint: key {names[official]!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(ours[key].shape)} (for {key!r})"
            )
        new_state[key], loaded[key] = value, names[official]
    module.load_state_dict(new_state, strict=True)
    used = set(loaded.values())
    return {"loaded": loaded, "ignored": sorted(k for k in tensors if k not in used)}


def load_official_encoder(state_dict: Mapping[str, Any], encoder: BiGRUEncoder) -> dict[str, Any]:
    """Copy an official ``BIGRU`` (input BN + bidirectional GRU) into ``encoder``.

    ``*_l{k}`` -> layer k GRU A and ``*_l{k}_reverse`` -> layer k GRU B of the causal variant
    (the official function); into a ``bidirectional=True`` encoder the names map one to one.
    """
    if not isinstance(encoder, BiGRUEncoder):
        got = type(encoder).__name__
        raise ConfigError(f"official weights load into a BiGRUEncoder, got {got}")
    names, scope = _scope(state_dict)
    grus: dict[str, set[int]] = {}
    bidirectional = set()
    for key in names:
        match = _GRU_KEY.match(key)
        if match:
            grus.setdefault(match["prefix"], set()).add(int(match["layer"]))
            if match["reverse"]:
                bidirectional.add(match["prefix"])
    gru = _pick(bidirectional, "encoder.gru.", "bidirectional GRU (keys '*_l0_reverse')", scope)
    if max(grus[gru]) + 1 != encoder.num_layers:
        raise ConfigError(
            f"official checkpoint: GRU {scope + gru!r} has {max(grus[gru]) + 1} layers, "
            f"the encoder has {encoder.num_layers}"
        )
    norms = {k[: -len("running_mean")] for k in names if k.endswith("running_mean")}
    norm = _pick(norms, "input_norm.", "input BatchNorm (keys '*running_mean')", scope)

    mapping = {f"input_norm.{b}": norm + b for b in _BN_NAMES + _BN_OPTIONAL}
    for k in range(encoder.num_layers):
        for name in _GRU_NAMES:
            official, reverse = f"{gru}{name}_l{k}", f"{gru}{name}_l{k}_reverse"
            if encoder.bidirectional:
                mapping[f"gru.{name}_l{k}"] = official
                mapping[f"gru.{name}_l{k}_reverse"] = reverse
            else:
                mapping[f"layers.{k}.gru_a.{name}_l0"] = official
                mapping[f"layers.{k}.gru_b.{name}_l0"] = reverse
    optional = {f"input_norm.{b}" for b in _BN_OPTIONAL}
    return _load_mapped(encoder, state_dict, mapping, names, scope, optional)


def load_official_projector(state_dict: Mapping[str, Any], projector: Projector) -> dict[str, Any]:
    """Copy the official pre-training projector ``fc.0`` / ``fc.2`` into ``projector``."""
    if not isinstance(projector, Projector):
        got = type(projector).__name__
        raise ConfigError(f"official projector loads into a Projector, got {got}")
    names, scope = _scope(state_dict)
    mapping = {f"{ours}.{p}": f"fc.{theirs}.{p}"
               for ours, theirs in (("fc1", 0), ("fc2", 2)) for p in ("weight", "bias")}
    return _load_mapped(projector, state_dict, mapping, names, scope)
