import json
from pathlib import Path

import numpy as np
import pytest

from pcm3.data import Converted, Sample, Sequence, open_store, open_untrimmed, write_store
from pcm3.data.store import LazyRows, SkeletonStore, UntrimmedStore, WriteOptions, write_trimmed
from pcm3.errors import DataError
from pcm3.layouts import NTU25, layout_from_dict

TINY = layout_from_dict({
    "name": "tiny4", "joints": ["a", "b", "c", "d"], "parents": [0, 0, 1, 1],
    "parts": {"top": [0, 1], "bottom": [2, 3]},
})


def _converted(n: int = 7, layout=TINY, seed: int = 0) -> Converted:
    rng = np.random.default_rng(seed)
    v = layout.num_joints
    samples = [
        Sample(f"s{i}", rng.normal(size=(3, 3 + i, v, 2)).astype(np.float32), label=i % 3)
        for i in range(n)
    ]
    samples[-1].label = -1
    seqs = [
        Sequence("rec0", rng.normal(size=(3, 40, v, 2)).astype(np.float32),
                 np.array([[0, 2, 10], [2, 15, 40]])),
        Sequence("rec1", rng.normal(size=(3, 25, v, 2)).astype(np.float32),
                 np.array([[1, 0, 5]])),
    ]
    return Converted(
        layout=layout, class_names=["a", "b", "c"], samples=samples,
        splits={"xsub/train": ["s0", "s2", "s4", "s6"], "xsub/val": ["s1", "s3", "s5"]},
        sequences=seqs, sequence_splits={"train": ["rec0"], "val": ["rec1"]},
        source={"format": "test"},
    )


def test_round_trip(tmp_path: Path):
    conv = _converted()
    store = write_store(tmp_path / "s", conv)
    assert isinstance(store, SkeletonStore)
    store = open_store(tmp_path / "s")
    n, t = len(conv.samples), max(s.x.shape[1] for s in conv.samples)
    assert store.x.shape == (n, 3, t, 4, 2) and store.x.dtype == np.float32
    assert isinstance(store.x, np.memmap)
    assert store.lengths.tolist() == [s.x.shape[1] for s in conv.samples]
    assert store.labels.tolist() == [0, 1, 2, 0, 1, 2, -1]
    assert store.ids.tolist() == [s.id for s in conv.samples]
    assert store.layout == TINY and store.class_names == ["a", "b", "c"]
    for i, s in enumerate(conv.samples):
        np.testing.assert_array_equal(store.sample(i), s.x)
        assert not store.x[i, :, s.x.shape[1]:].any()  # zero padded
    assert store.split_names == ["xsub/train", "xsub/val"]


def test_split_view_is_lazy_and_consistent(tmp_path: Path):
    conv = _converted()
    store = write_store(tmp_path / "s", conv)
    val = store.split("xsub/val")
    assert isinstance(val.x, LazyRows)
    assert val.x.shape == (3, *store.x.shape[1:]) and len(val) == 3
    assert val.ids.tolist() == ["s1", "s3", "s5"]
    np.testing.assert_array_equal(val.x[1], store.x[3])
    np.testing.assert_array_equal(val.x[[2, 0]], store.x[[5, 1]])
    np.testing.assert_array_equal(np.asarray(val.x), store.x[[1, 3, 5]])
    np.testing.assert_array_equal(val.x[0:2, :, :2], store.x[[1, 3], :, :2])
    np.testing.assert_array_equal(val.sample(2), conv.samples[5].x)
    with pytest.raises(DataError, match="no split 'xview/val'"):
        store.split("xview/val")


def test_untrimmed_round_trip(tmp_path: Path):
    conv = _converted()
    write_store(tmp_path / "s", conv)
    un = open_untrimmed(tmp_path / "s")
    assert isinstance(un, UntrimmedStore)
    assert len(un) == 2 and un.lengths.tolist() == [40, 25] and un.num_intervals == 3
    np.testing.assert_array_equal(un.sequence(1), conv.sequences[1].x)
    np.testing.assert_array_equal(un.intervals(0), [[0, 2, 10], [2, 15, 40]])
    val = un.split("val")
    assert val.ids.tolist() == ["rec1"]
    np.testing.assert_array_equal(val.intervals(0), [[1, 0, 5]])
    assert val.num_intervals == 1


def test_fingerprint_is_content_based(tmp_path: Path):
    a = write_store(tmp_path / "a", _converted(seed=0))
    b = write_store(tmp_path / "b", _converted(seed=0))
    c = write_store(tmp_path / "c", _converted(seed=1))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert open_untrimmed(tmp_path / "a").fingerprint == open_untrimmed(tmp_path / "b").fingerprint


def test_max_frames_truncates(tmp_path: Path):
    store = write_trimmed(tmp_path / "s", _converted(), WriteOptions(max_frames=5))
    assert store.x.shape[2] == 5 and store.lengths.max() == 5
    assert store.meta["truncated_samples"] == 4


def test_transform_is_applied_and_recorded(tmp_path: Path):
    def double(x, lengths):
        return x * 2, lengths

    conv = _converted()
    store = write_trimmed(tmp_path / "s", conv, transform=double, preprocessing={"steps": ["double"]})
    np.testing.assert_allclose(store.sample(0), conv.samples[0].x * 2)
    assert store.meta["preprocessing"] == {"steps": ["double"]}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.samples.append(Sample("s0", c.samples[0].x, 0)), "duplicate sample id 's0'"),
        (lambda c: setattr(c.samples[1], "x", np.zeros((3, 4, 5, 2), np.float32)), "does not match"),
        (lambda c: setattr(c.samples[2], "label", 7), "outside 0..2"),
        (lambda c: setattr(c.sequences[0], "intervals", np.array([[0, 30, 45]])), "not inside 0..40"),
        (lambda c: setattr(c, "samples", []) or setattr(c, "sequences", []), "neither"),
        (lambda c: setattr(c, "layout", NTU25), "layout 'ntu25' has 25"),
    ],
)
def test_bad_records_are_refused(tmp_path: Path, mutate, message):
    conv = _converted()
    mutate(conv)
    with pytest.raises(DataError, match=message):
        write_store(tmp_path / "s", conv)


def test_failed_write_keeps_previous_store(tmp_path: Path):
    good = write_store(tmp_path / "s", _converted())
    bad = _converted()
    bad.samples[0].x[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        write_store(tmp_path / "s", bad)
    assert open_store(tmp_path / "s").fingerprint == good.fingerprint


def test_open_errors(tmp_path: Path):
    with pytest.raises(DataError, match="no such store"):
        open_store(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a pcm3 store"):
        open_store(tmp_path / "empty")
    store_dir = tmp_path / "s"
    write_store(store_dir, _converted())
    (store_dir / "splits.json").write_text("{not json")
    with pytest.raises(DataError, match=r"splits\.json: invalid JSON"):
        open_store(store_dir)


def test_trimmed_only_store_has_no_untrimmed(tmp_path: Path):
    conv = _converted()
    conv.sequences = []
    write_store(tmp_path / "s", conv)
    with pytest.raises(DataError, match="no untrimmed sequences"):
        open_untrimmed(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["layout_name"] == "tiny4" and meta["kind"] == "trimmed"
