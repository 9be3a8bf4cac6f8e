"""Result files: every number is written with the config, seed, code version and data
fingerprint that produced it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from pcm3 import __version__


def code_version() -> str:
    """The package version, plus the git commit (and ``-dirty``) when run from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=here, text=True,
                                capture_output=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{commit}" if commit else __version__


def result_record(task: str, metrics: dict[str, Any], *, config: dict[str, Any], seed: int,
                  encoder: str, data_fingerprint: str, seconds: float) -> dict[str, Any]:
    """One task's result with its provenance."""
    return {"task": task, "metrics": metrics, "encoder": encoder, "seed": seed, "config": config,
            "data_fingerprint": data_fingerprint, "code_version": code_version(),
            "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_result(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON at ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(path)
    return path
