"""Checks every backbone applies to its options and its inputs, each failing with one clear
:class:`ConfigError` that names the backbone, the key and what is allowed."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import torch
from torch import Tensor

from pcm3.errors import ConfigError
from pcm3.layouts import Layout

OptionsT = TypeVar("OptionsT")


def options_from_kwargs(options_type: type[OptionsT], backbone: str, options: dict[str, Any]) -> OptionsT:
    """``options_type(**options)`` validated; unknown keys are refused listing the allowed ones."""
    allowed = [f.name for f in dataclasses.fields(options_type)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"backbone {backbone!r}: unknown options {unknown}; allowed: {allowed}")
    built = options_type(**options)
    built.validate()  # type: ignore[attr-defined]
    return built


def require_positive_int(backbone: str, key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"backbone {backbone!r}: {key} must be a positive integer, got {value!r}")


def require_fraction(backbone: str, key: str, value: Any) -> None:
    """``value`` must be a number in ``[0, 1)`` (a drop probability)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"backbone {backbone!r}: {key} must be a number in [0, 1), got {value!r}")


def require_bool(backbone: str, key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"backbone {backbone!r}: {key} must be true or false, got {value!r}")


def check_construction(backbone: str, layout: Any, num_persons: Any, in_channels: Any) -> None:
    """The shared constructor arguments: a :class:`Layout`, positive M and C."""
    if not isinstance(layout, Layout):
        raise ConfigError(f"backbone {backbone!r}: layout must be a pcm3.layouts.Layout, got "
                          f"{type(layout).__name__}")
    require_positive_int(backbone, "num_persons", num_persons)
    require_positive_int(backbone, "in_channels", in_channels)


def check_input(backbone: str, x: Tensor, in_channels: int, num_joints: int, num_persons: int) -> None:
    """``x`` must be ``(N, C, T, V, M)`` with the backbone's C, V, M and at least one frame."""
    expected = (in_channels, num_joints, num_persons)
    if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != expected:
        raise ConfigError(f"{backbone}: expected input (N, C={in_channels}, T, V={num_joints}, "
                          f"M={num_persons}), got shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[2] < 1:
        raise ConfigError(f"{backbone}: input has no samples or no frames, shape {tuple(x.shape)}")


def check_lengths(backbone: str, lengths: Tensor | None, n: int, t: int,
                  device: torch.device) -> Tensor | None:
    """``lengths`` as ``(N,)`` int64 on ``device``, or None when absent or when every clip is full.

    Refused unless an integer tensor of shape ``(N,)`` with values in ``1..T``.
    """
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor) or lengths.shape != (n,) or lengths.dtype.is_floating_point \
            or lengths.dtype == torch.bool or lengths.is_complex():
        shape = tuple(lengths.shape) if isinstance(lengths, Tensor) else type(lengths).__name__
        raise ConfigError(f"{backbone}: lengths must be an integer tensor of shape ({n},), got {shape}")
    bad = (lengths < 1) | (lengths > t)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ConfigError(f"{backbone}: lengths[{i}] = {int(lengths[i])} is outside 1..{t} (T = {t})")
    if bool((lengths == t).all()):
        return None
    return lengths.to(device=device, dtype=torch.long)


def check_input_prompt(backbone: str, prompt: Tensor | None, shape: tuple[int, ...], n: int) -> Tensor | None:
    """``prompt`` of shape ``(1, *shape)`` or ``(N, *shape)``, returned as is (or None)."""
    if prompt is None:
        return None
    if prompt.dim() != len(shape) + 1 or tuple(prompt.shape[1:]) != shape or prompt.shape[0] not in (1, n):
        raise ConfigError(f"{backbone}: input_prompt must have shape (1, {', '.join(map(str, shape))}) or "
                          f"(N={n}, {', '.join(map(str, shape))}), got {tuple(prompt.shape)}")
    return prompt


def strided_lengths(lengths: Tensor, stride: int) -> Tensor:
    """Valid steps after a stride: ``ceil(lengths / stride)``."""
    return torch.div(lengths + (stride - 1), stride, rounding_mode="floor")


def valid_steps_mask(lengths: Tensor, steps: int) -> Tensor:
    """Boolean ``(N, steps)``: step s of sample i is valid when ``s < lengths[i]``."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
