"""Backbone registry: every encoder is built by name with one call, like timm's ``create_model``.

A backbone takes ``x (N, C, T, V, M)`` and optional ``lengths (N,)`` (valid frames) and offers

- ``forward_features(x, lengths=None) -> (N, D)``: one feature per sequence;
- ``forward_dense(x, lengths=None) -> (N, T, D)``: one feature per frame;
- ``feature_dim``: ``D``.

Register one with ``@register_backbone("name")`` on a class (or factory) whose constructor takes
``num_joints``, ``num_persons`` and ``in_channels`` as keyword arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from pcm3.errors import ConfigError

BackboneFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=BackboneFactory)

BACKBONES: dict[str, BackboneFactory] = {}
BACKBONE_OPTIONS: dict[str, type] = {}  # name -> the dataclass of that backbone's options


def register_backbone(name: str, options: type | None = None) -> Callable[[F], F]:
    """Decorator: make ``factory`` available as ``create_backbone(name, ...)``; ``options`` is the
    dataclass of its options (defaults, ``validate()``, ``tiny()``)."""

    def decorate(factory: F) -> F:
        if name in BACKBONES and BACKBONES[name] is not factory:
            raise ConfigError(f"backbone name {name!r} is already registered")
        BACKBONES[name] = factory
        if options is not None:
            BACKBONE_OPTIONS[name] = options
        return factory

    return decorate


def create_backbone(
    name: str, *, num_joints: int, num_persons: int, in_channels: int = 3, **kwargs: Any
) -> nn.Module:
    """Build the backbone registered as ``name`` for inputs ``(N, in_channels, T, V, M)``.

    Extra keyword arguments go to the backbone (e.g. ``hidden_size`` for ``bigru``); an
    unknown name or argument raises :class:`ConfigError` listing what is accepted.
    """
    if name not in BACKBONES:
        known = ", ".join(sorted(BACKBONES)) or "none"
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {known}")
    factory = BACKBONES[name]
    arguments = dict(num_joints=num_joints, num_persons=num_persons, in_channels=in_channels)
    arguments.update(kwargs)
    signature = inspect.signature(factory)
    try:
        signature.bind(**arguments)
    except TypeError as error:
        accepted = ", ".join(p for p in signature.parameters if p != "self")
        raise ConfigError(
            f"backbone {name!r}: {error}; accepted arguments: {accepted}"
        ) from None
    return factory(**arguments)
