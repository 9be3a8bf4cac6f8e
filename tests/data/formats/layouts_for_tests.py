"""A tiny 8-joint custom layout for the reader tests, and how to pass it on the command line."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY8 = {
    "name": "tiny8",
    "joints": ["hip", "spine", "neck", "head", "l_arm", "l_hand", "r_arm", "r_hand"],
    "parents": ["hip", "hip", "spine", "neck", "neck", "l_arm", "neck", "r_arm"],
    "parts": {"trunk": ["hip", "spine", "neck", "head"], "arms": [4, 5, 6, 7]},
}


def layout_option(tmp_path: Path, name: str) -> tuple[str, int]:
    """``(--layout value, number of joints)`` for ``"tiny8"`` (written as YAML) or a built-in."""
    if name == "tiny8":
        path = tmp_path / "tiny8.yaml"
        path.write_text(yaml.safe_dump(TINY8))
        return str(path), 8
    return name, 25
