"""One reader per on-disk format, each ``read(src, options) -> Converted``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from pcm3.data.formats.base import ReadOptions
from pcm3.data.records import Converted
from pcm3.errors import Pcm3Error

# format name -> module defining ``read(src: Path, options: ReadOptions) -> Converted``
FORMATS: dict[str, str] = {
    "ntu-raw": "pcm3.data.formats.ntu_raw",
    "pku-mmd": "pcm3.data.formats.pku_mmd",
    "nw-ucla": "pcm3.data.formats.nw_ucla",
    "stgcn-npy": "pcm3.data.formats.stgcn_npy",
    "ctrgcn-npz": "pcm3.data.formats.ctrgcn_npz",
    "pyskl": "pcm3.data.formats.pyskl",
    "arrays": "pcm3.data.formats.arrays",
    "video": "pcm3.data.formats.video",
}


def get_reader(name: str) -> Callable[[Path, ReadOptions], Converted]:
    """The ``read`` function of format ``name``."""
    if name not in FORMATS:
        raise Pcm3Error(f"unknown format {name!r}; formats: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name]).read


def read(src: str | Path, format: str, options: ReadOptions | None = None) -> Converted:
    """Read ``src`` in format ``format`` into canonical records."""
    return get_reader(format)(Path(src), options or ReadOptions())


__all__ = ["FORMATS", "ReadOptions", "get_reader", "read"]
