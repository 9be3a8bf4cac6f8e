"""The benchmark scripts (``benchmarks/*.py``) as modules for the tests: they are not a package
and import their siblings by name, so the folder goes on ``sys.path`` once and every test gets
the same module object a sibling import would."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as the module ``name``."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)
