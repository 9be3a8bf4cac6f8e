import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pcm3.data.safe_pickle import safe_load_pickle, safe_loads_pickle
from pcm3.errors import DataError


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_data_round_trips(protocol):
    data = {"names": ["a", "b"], "labels": [1.0, 2.0], "x": np.arange(6, dtype=np.float32).reshape(2, 3),
            "scalar": np.int64(3), "nested": ({"k": (1, 2)}, b"raw")}
    out = safe_loads_pickle(pickle.dumps(data, protocol=protocol))
    np.testing.assert_array_equal(out["x"], data["x"])
    assert out["names"] == data["names"] and out["scalar"] == 3 and out["nested"] == data["nested"]


def test_code_execution_is_refused(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "labels.pkl"
    path.write_bytes(pickle.dumps(["ok", _Exploit(marker)]))
    with pytest.raises(DataError, match=r"labels.pkl: refusing to unpickle .*system"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_arbitrary_classes_are_refused():
    with pytest.raises(DataError, match="refusing to unpickle"):
        safe_loads_pickle(pickle.dumps(Path("x")))


def test_truncated_and_missing(tmp_path: Path):
    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(DataError, match=r"t\.pkl: not a readable pickle"):
        safe_load_pickle(path)
    with pytest.raises(DataError, match="file not found"):
        safe_load_pickle(tmp_path / "missing.pkl")
