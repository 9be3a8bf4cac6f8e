"""Method registry: every pre-training method is one class registered by name with its options.

A method is one file: a :class:`pcm3.methods.base.Method` subclass decorated with
``@register_method("name", options=NameOptions, default_backbone=..., requires=(...))``. Its
options dataclass holds the method's own settings (every one with its paper default, a
``tiny()`` classmethod for the tests, an optional ``validate()``); a config states them in a
top-level block named after the method (``method: skeletonclr`` + ``skeletonclr: {...}``).
``requires`` names the backbone members the method calls beyond the encoder contract
(``forward_tokens`` for token masking); a backbone without them is refused.

This module imports no method: ``pcm3.methods`` imports every built-in method file, and
:func:`load_builtin_methods` does that on the first lookup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pcm3.errors import ConfigError
from pcm3.models.registry import get_backbone, known_backbones

M = TypeVar("M", bound=type)


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: its class, options dataclass, default backbone and the backbone
    members it needs."""

    name: str
    cls: type
    options: type
    default_backbone: str
    requires: tuple[str, ...] = ()

    def supported_backbones(self) -> list[str]:
        """The registered backbones that have every member in ``requires``."""
        return [b for b in known_backbones() if all(hasattr(get_backbone(b).cls, a) for a in self.requires)]

    def check_backbone(self, backbone: str, where: str = "model.backbone") -> None:
        """Refuse a backbone without a member the method needs, listing the supported ones."""
        missing = [a for a in self.requires if not hasattr(get_backbone(backbone).cls, a)]
        if missing:
            raise ConfigError(f"{where}: method {self.name!r} cannot use backbone {backbone!r} (it has no "
                              f"{', '.join(missing)}); backbones {self.name!r} supports: "
                              f"{', '.join(self.supported_backbones())}")


METHODS: dict[str, MethodEntry] = {}


def register_method(name: str, *, options: type, default_backbone: str = "bigru",
                    requires: tuple[str, ...] = ()) -> Callable[[M], M]:
    """Class decorator: make the method available as ``method: name`` in a config."""
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise ConfigError(f"method {name!r}: options must be a dataclass, got {options!r}")
    if not callable(getattr(options, "tiny", None)):
        raise ConfigError(f"method {name!r}: options class {options.__name__} has no tiny()")

    def decorate(cls: M) -> M:
        old = METHODS.get(name)
        if old is not None and (old.cls.__qualname__, old.cls.__module__) != (cls.__qualname__,
                                                                             cls.__module__):
            raise ConfigError(f"method name {name!r} is already registered by {old.cls.__qualname__}")
        METHODS[name] = MethodEntry(name, cls, options, default_backbone, tuple(requires))
        return cls

    return decorate


def load_builtin_methods() -> None:
    """Import ``pcm3.methods`` (it imports every built-in method file)."""
    import pcm3.methods  # noqa: F401


def known_methods() -> list[str]:
    """Names of every registered method, sorted."""
    load_builtin_methods()
    return sorted(METHODS)


def get_method(name: str, where: str = "method") -> MethodEntry:
    """The entry of ``name``; an unknown name raises :class:`ConfigError` listing the known ones."""
    if name not in METHODS:
        load_builtin_methods()
    if name not in METHODS:
        raise ConfigError(f"{where}: unknown method {name!r}; methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def method_options(name: str, values: Any = None, where: str | None = None) -> Any:
    """The typed, validated options of method ``name`` from a mapping (None: the defaults).

    Unknown keys and wrong types raise :class:`ConfigError` naming ``where`` (the config block,
    e.g. ``skeletonclr``), the key and the method's allowed options.
    """
    from pcm3.config import from_dict

    entry = get_method(name)
    where = where or name
    if isinstance(values, entry.options):
        out = values
    else:
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"{where}: the options of method {name!r} must be a mapping, got {values!r}")
        allowed = [f.name for f in dataclasses.fields(entry.options)]
        unknown = [key for key in (values or {}) if key not in allowed]
        if unknown:
            raise ConfigError(f"{where}: method {name!r} has no option {unknown[0]!r}; its options: "
                              f"{', '.join(allowed) or '(none)'}")
        out = from_dict(entry.options, values or {}, prefix=where)
    check = getattr(out, "validate", None)
    if callable(check):
        check()
    return out


__all__ = ["METHODS", "MethodEntry", "get_method", "known_methods", "method_options", "register_method"]
