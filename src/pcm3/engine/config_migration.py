"""The older spelling of PCM3's settings, still read: top-level ``loss``, ``moco``, ``clip``.

Before they moved into the method's block, a run config held them at the top level
(``loss: {masked: 0}``, overrides ``loss.masked=0``, ``clip.path=mask``). With method ``pcm3`` or
``pcm3pp`` they are moved into that block (``pcm3.loss``, ``pcm3pp.clip``, ...), key by key, the
moved values winning over the block's. ``clip`` with method ``pcm3`` (which has no clip branch; old
checkpoints' configs hold it) is dropped. With another method they mean nothing: refused.

PCM3++ is PCM3 plus the clip branch, so with method ``pcm3pp`` a ``pcm3`` block is read as the base
of the ``pcm3pp`` block (the ``pcm3pp`` keys win): ``--config configs/pcm3_quick.yaml method=pcm3pp``
runs PCM3++ with the quick config's PCM3 settings.
"""

from __future__ import annotations

import copy
from typing import Any

from pcm3.errors import ConfigError

OLD_KEYS = ("loss", "moco", "clip")  # the top-level blocks of the older spelling
METHOD_KEYS = {"pcm3": ("loss", "moco"), "pcm3pp": ("loss", "moco", "clip")}  # where they live now


def merged(base: Any, top: Any) -> Any:
    """``top`` laid over ``base``, mapping by mapping (a copy; ``top`` wins on every leaf)."""
    if not (isinstance(base, dict) and isinstance(top, dict)):
        return copy.deepcopy(top)
    out = copy.deepcopy(base)
    for key, value in top.items():
        out[key] = merged(out.get(key), value)
    return out


def move_method_settings(data: dict[str, Any], final: bool = True) -> dict[str, Any]:
    """A copy of the run config mapping ``data`` with the older spelling moved (module docstring).

    ``final=False`` only moves what the current ``method`` has (a later override may still change
    the method); ``final=True`` also drops ``clip`` for ``pcm3`` and refuses the keys for any other
    method with a :class:`ConfigError`.
    """
    method = data.get("method", "pcm3")
    keys = METHOD_KEYS.get(method, ()) if isinstance(method, str) else ()
    out = dict(data)
    if method == "pcm3pp" and isinstance(out.get("pcm3"), dict):
        out["pcm3pp"] = merged(out.pop("pcm3"), out.get("pcm3pp") or {})
    for key in keys:
        block = out.get(method)
        if key in out and (block is None or isinstance(block, dict)):
            out[method] = merged(block or {}, {key: out.pop(key)})
    if not final:
        return out
    if method == "pcm3":
        out.pop("clip", None)
    old = [key for key in OLD_KEYS if key in out]
    if old and isinstance(method, str):
        raise ConfigError(f"{old[0]}: a setting of methods pcm3 / pcm3pp (their {old[0]} block), but method "
                          f"is {method!r}, which does not read it; {method}'s own settings sit in its "
                          f"{method} block")
    return out


__all__ = ["METHOD_KEYS", "OLD_KEYS", "merged", "move_method_settings"]
