"""A restricted unpickler for label and annotation pickles from untrusted sources.

Admits plain containers, numbers, strings, bytes and NumPy arrays / scalars / dtypes; any
other global (``os.system``, arbitrary classes, ...) is refused with a :class:`DataError`
before it is ever called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from pcm3.errors import DataError

_NUMPY_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                  "numpy.core.numeric", "numpy._core.numeric")
_ALLOWED: dict[str, set[str]] = {
    "builtins": {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex",
                 "str", "bytes", "bytearray", "bool", "slice", "range"},
    "collections": {"OrderedDict", "defaultdict"},
    "_codecs": {"encode"},  # bytes pickled by Python 2 / protocol 2
    **{mod: {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"} for mod in _NUMPY_MODULES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, origin: str) -> None:
        super().__init__(file, encoding="latin1")
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith("DType"):  # numpy>=1.25 dtype classes
            return super().find_class(module, name)
        raise DataError(
            f"refusing to unpickle {module}.{name}: only plain containers, numbers, strings "
            "and numpy arrays are allowed in data pickles",
            path=self.origin,
        )


def safe_load_pickle(path: str | Path) -> Any:
    """Load a pickle file with the restricted unpickler; errors name the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, str(path)).load()
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError("file not found", path=path) from exc
    except Exception as exc:  # truncated or corrupt pickles raise many different types
        raise DataError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path) from exc


def safe_loads_pickle(data: bytes, origin: str = "<bytes>") -> Any:
    """Like :func:`safe_load_pickle` for bytes already in memory."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), origin).load()  # type: ignore[arg-type]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=origin) from exc
