"""Reading released checkpoints of other code bases safely, and the mapping helper their loaders share.

A file is read with ``torch.load(weights_only=True)``: tensors and plain containers only, plus
``argparse.Namespace`` (a bag of attributes that MAE-style trainers such as MAMP save as ``args``
next to the weights; unpickling it runs no code). Anything else (a class of the saving code, a
function) is refused with a :class:`Pcm3Error` naming the file: such a file needs code execution.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pcm3.errors import ConfigError, Pcm3Error

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
Convert = Callable[[Tensor], Tensor]


def read_checkpoint_file(path: str | Path) -> Any:
    """The object stored in ``path``, read without running code from the file."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise Pcm3Error(f"{path}: encoder file not found") from None
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), "")
        raise Pcm3Error(f"{path}: refused: loading this file would run code from it (it pickles "
                        f"objects other than tensors and plain containers{'; ' + detail if detail else ''}). "
                        "Re-save its state dict alone: torch.save(ckpt['state_dict'], 'weights.pt')"
                        ) from None
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise Pcm3Error(f"{path}: cannot read checkpoint ({type(exc).__name__}: {reason})") from None


def tensor_dict(obj: Any, where: str) -> dict[str, Tensor]:
    """``obj`` as a state dict (str -> Tensor) with DataParallel's ``module.`` prefix removed."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected a state dict (a mapping of tensors), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ConfigError(f"{where}: state dict entries that are not tensors: {bad[:5]}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def scoped(state: Mapping[str, Tensor], scope: str) -> dict[str, Tensor]:
    """The entries under ``scope`` (e.g. ``encoder_q.``) with the scope removed."""
    return {k[len(scope):]: v for k, v in state.items() if k.startswith(scope)}


def load_converted(module: nn.Module, tensors: Mapping[str, Tensor],
                   mapping: Mapping[str, tuple[str, Convert | None]], where: str, scope: str = "",
                   optional: Collection[str] = ()) -> list[str]:
    """Load ``module`` (strictly: every one of its keys) from ``tensors`` through ``mapping``
    (our key -> (official key, conversion or None)). Missing official keys and shape mismatches are
    refused all at once, listed; ``optional`` of our keys (BatchNorm step counters) keep their value
    when absent. Returns the official keys used (without ``scope``)."""
    ours = module.state_dict()
    if set(mapping) != set(ours):
        raise ConfigError(f"internal: mapping does not cover {sorted(set(ours) ^ set(mapping))}")
    new_state, used, missing, mismatched = {}, [], [], []
    for key, (official, convert) in mapping.items():
        if official not in tensors:
            if key in optional:
                new_state[key] = ours[key]
            else:
                missing.append(f"{scope}{official} {tuple(ours[key].shape)}")
            continue
        value = tensors[official]
        value = convert(value) if convert is not None and value.numel() == ours[key].numel() else value
        if value.shape != ours[key].shape:
            mismatched.append(f"{scope}{official} {tuple(tensors[official].shape)} (for {key} "
                              f"{tuple(ours[key].shape)})")
            continue
        new_state[key] = value.to(ours[key].dtype)
        used.append(official)
    if missing or mismatched:
        parts = ([f"missing keys: {', '.join(missing)}"] if missing else []) + (
            [f"keys of the wrong shape: {', '.join(mismatched)}"] if mismatched else [])
        raise ConfigError(f"{where}: official checkpoint does not fit the encoder; {'; '.join(parts)}")
    module.load_state_dict(new_state, strict=True)
    return used


def refuse_unexpected(leftover: Collection[str], where: str, scope: str) -> None:
    """Refuse encoder keys that no parameter of ours takes (they would be silently dropped)."""
    if leftover:
        names = ", ".join(repr(scope + k) for k in sorted(leftover)[:10])
        more = f" (+{len(leftover) - 10} more)" if len(leftover) > 10 else ""
        raise ConfigError(f"{where}: official checkpoint has encoder keys our encoder has no place for: "
                          f"{names}{more}")
