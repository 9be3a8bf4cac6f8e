"""Atomic checkpoints: write to a temporary file, then rename; load with ``weights_only``.

A run folder keeps ``checkpoints/step_XXXXXXX.pt`` (the newest ``keep`` of them) and
``checkpoints/last.pt`` (a hard link to the newest, or a copy where links are not allowed).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from pcm3.errors import Pcm3Error

_NUMBERED = re.compile(r"step_(\d+)\.pt$")


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int = 3) -> Path:
    """Save ``state`` as ``step_<step>.pt`` and ``last.pt`` in ``folder``; prune old ones."""
    folder.mkdir(parents=True, exist_ok=True)
    numbered = folder / f"step_{step:07d}.pt"
    _atomic_save(state, numbered)
    last_tmp = folder / "last.pt.tmp"
    last_tmp.unlink(missing_ok=True)
    try:
        os.link(numbered, last_tmp)
    except OSError:
        shutil.copyfile(numbered, last_tmp)
    os.replace(last_tmp, folder / "last.pt")
    if keep > 0:
        for old in numbered_checkpoints(folder)[:-keep]:
            old.unlink(missing_ok=True)
    return numbered


def numbered_checkpoints(folder: Path) -> list[Path]:
    """``step_*.pt`` files in ``folder``, oldest first."""
    if not folder.exists():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NUMBERED.search(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    last = folder / "last.pt"
    if last.exists():
        return last
    numbered = numbered_checkpoints(folder)
    return numbered[-1] if numbered else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain containers only); clear error if corrupt."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise Pcm3Error(f"{path}: checkpoint not found") from exc
    except Exception as exc:
        others = [p.name for p in numbered_checkpoints(path.parent) if p != path]
        hint = f"; earlier checkpoints are untouched: {', '.join(others)}" if others else ""
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise Pcm3Error(f"{path}: cannot read checkpoint ({type(exc).__name__}: {reason}){hint}") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise Pcm3Error(f"{path}: not a pcm3 checkpoint (no 'model' state dict)")
    return state
