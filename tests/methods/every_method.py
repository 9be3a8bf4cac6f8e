"""Tiny run configs for every registered method (its default backbone's and its own ``tiny()``
options), shared by the contract tests."""

from __future__ import annotations

import json
from typing import Any

from pcm3.config import to_dict
from pcm3.methods.registry import get_method

from ..conftest import tiny_model


def dotted(mapping: dict[str, Any], prefix: str) -> list[str]:
    """``{"a": {"b": 1}}`` -> ``["<prefix>.a.b=1"]`` (values as JSON, which YAML reads)."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            out += dotted(value, f"{prefix}.{key}")
        else:
            out.append(f"{prefix}.{key}={json.dumps(value)}")
    return out


def tiny_method(method: str) -> list[str]:
    """Overrides of a tiny pre-training run of ``method`` on the tiny store (the tiny heads, the
    method's ``tiny()`` options, none of another method's)."""
    entry = get_method(method)
    heads = [o for o in tiny_model(entry.default_backbone) if not o.startswith("pcm3.")]
    return [*heads, f"method={method}", *dotted(to_dict(entry.options.tiny()), method)]
