"""Backbone registry: every encoder is built by name with one call, like timm's ``create_model``.

A backbone is one file: a class decorated with ``@register_backbone("name", options=NameOptions)``
and its options dataclass (every option with its paper-size default, ``validate()`` and a
``tiny()`` classmethod for tests). The class follows :class:`pcm3.models.encoder.Backbone`
(``docs/backbones.md``); its constructor is ``Backbone(layout, num_persons, in_channels,
**options)``.

Every module of ``pcm3.models`` is imported on the first lookup of a backbone, so a new
backbone file there is found without any other change; a backbone defined elsewhere is
registered when its module is imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from pcm3.errors import ConfigError
from pcm3.layouts import Layout

B = TypeVar("B", bound=type)


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its class and its options dataclass."""

    name: str
    cls: type[nn.Module]
    options: type


BACKBONES: dict[str, BackboneEntry] = {}


def _check_options_class(name: str, options: Any) -> None:
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise ConfigError(f"backbone {name!r}: options must be a dataclass, got {options!r}")
    for method in ("validate", "tiny"):
        if not callable(getattr(options, method, None)):
            raise ConfigError(f"backbone {name!r}: options class {options.__name__} has no {method}()")


def register_backbone(name: str, *, options: type) -> Callable[[B], B]:
    """Class decorator: make the backbone available as ``create_backbone(name, ...)``."""
    _check_options_class(name, options)

    def decorate(cls: B) -> B:
        old = BACKBONES.get(name)
        # the same class again (a module imported twice) may re-register; another class may not
        if old is not None and (old.cls.__qualname__, old.cls.__module__) != (cls.__qualname__,
                                                                             cls.__module__):
            raise ConfigError(f"backbone name {name!r} is already registered by {old.cls.__qualname__}")
        BACKBONES[name] = BackboneEntry(name, cls, options)
        return cls

    return decorate


_LOADED: list[bool] = []


def load_builtin_backbones() -> None:
    """Import every module of ``pcm3.models`` once (each backbone file registers itself)."""
    if _LOADED:
        return
    import pcm3.models

    for module in pkgutil.iter_modules(pcm3.models.__path__):
        importlib.import_module(f"pcm3.models.{module.name}")
    _LOADED.append(True)


def known_backbones() -> list[str]:
    """Names of every registered backbone (built-in ones included), sorted."""
    load_builtin_backbones()
    return sorted(BACKBONES)


def get_backbone(name: str) -> BackboneEntry:
    """The registry entry of ``name``; an unknown name raises :class:`ConfigError` listing the known ones."""
    if name not in BACKBONES:
        load_builtin_backbones()
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def backbone_options(name: str, values: Any = None, where: str | None = None) -> Any:
    """The typed, validated options of backbone ``name`` from a mapping (None: the defaults).

    Unknown keys and wrong types raise :class:`ConfigError` naming ``where`` (e.g. the config
    key ``model.bigru``), the key and the allowed options of that backbone.
    """
    from pcm3.config import from_dict

    entry = get_backbone(name)
    if isinstance(values, entry.options):
        values.validate()
        return values
    where = where or f"backbone {name!r}"
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{where}: the options of backbone {name!r} must be a mapping, got {values!r}")
    allowed = [f.name for f in dataclasses.fields(entry.options)]
    unknown = [key for key in (values or {}) if key not in allowed]
    if unknown:
        raise ConfigError(f"{where}: backbone {name!r} has no option {unknown[0]!r}; "
                          f"its options: {', '.join(allowed)}")
    return from_dict(entry.options, values or {}, prefix=where)


def options_dict(options: Any) -> dict[str, Any]:
    """A backbone options dataclass as a plain (JSON-able) mapping of every option."""
    from pcm3.config import to_dict

    return to_dict(options)


def create_backbone(name: str, *, layout: Layout, num_persons: int, in_channels: int,
                    **options: Any) -> nn.Module:
    """Build backbone ``name`` for inputs ``(N, in_channels, T, layout.num_joints, num_persons)``.

    ``options`` are fields of the backbone's options dataclass (missing ones take their
    defaults); an unknown name or option raises :class:`ConfigError` listing what is accepted.
    """
    entry = get_backbone(name)
    typed = backbone_options(name, options)
    for key, value in (("num_persons", num_persons), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"backbone {name!r}: {key} must be a positive integer, got {value!r}")
    if not isinstance(layout, Layout):
        raise ConfigError(f"backbone {name!r}: layout must be a pcm3.layouts.Layout, "
                          f"got {type(layout).__name__}")
    return entry.cls(layout, num_persons, in_channels, **options_dict(typed))
