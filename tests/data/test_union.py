"""A union of stores (hybrid pre-training data): rows, labels and provenance against hand-built
references, its use by the clip reader and ``pcm3 pretrain``, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pcm3.cli import main
from pcm3.config import from_dict
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.data.batches import ClipBatches
from pcm3.data.union import StoreUnion, UnionRows, pretraining_views
from pcm3.engine.checkpoint import load_checkpoint
from pcm3.engine.config import PretrainConfig
from pcm3.engine.pretrain import pick_splits
from pcm3.errors import ConfigError
from pcm3.layouts import layout_from_dict

from ..conftest import HANDS8, TINY_MODEL, make_tiny_converted


def small_store(path: Path, n: int, frames: int, channels: int = 3, persons: int = 2, layout=HANDS8,
                classes: tuple[str, ...] = ("p", "q"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    samples = [Sample(f"c{i}", rng.normal(size=(channels, frames - i % 3, 8, persons)).astype(np.float32),
                      -1 if i % 4 == 0 and i < n // 2 else i % len(classes)) for i in range(n)]
    ids = [s.id for s in samples]
    write_store(path, Converted(layout=layout, class_names=list(classes), samples=samples,
                                splits={"xsub/train": ids[: n // 2], "xsub/val": ids[n // 2 :], "all": ids}))
    return path


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("union")
    return (small_store(root / "a", 6, 10, classes=("p", "q")),
            small_store(root / "b", 8, 14, classes=("r", "s", "t"), seed=1))


def test_rows_are_the_parts_rows_zero_padded():
    a = np.arange(2 * 3 * 4 * 1 * 1, dtype=np.float32).reshape(2, 3, 4, 1, 1)
    b = -np.arange(3 * 3 * 6 * 1 * 1, dtype=np.float32).reshape(3, 3, 6, 1, 1) - 1
    rows = UnionRows([a, b])
    reference = np.zeros((5, 3, 6, 1, 1), np.float32)
    reference[:2, :, :4], reference[2:] = a, b
    assert rows.shape == (5, 3, 6, 1, 1) and len(rows) == 5 and rows.ndim == 5
    np.testing.assert_array_equal(np.asarray(rows), reference)
    for key in (3, -1, slice(1, 4), np.array([4, 0, 2, 1]), np.array([], dtype=np.int64)):
        np.testing.assert_array_equal(rows[key], reference[key])
    np.testing.assert_array_equal(rows[np.array([3, 0]), :, :2], reference[[3, 0], :, :2])


def test_store_union_concatenates_and_offsets_the_classes(two_stores):
    a, b = (open_store(p) for p in two_stores)
    union = StoreUnion([a.split("xsub/train"), b.split("xsub/train")])
    parts = [a.split("xsub/train"), b.split("xsub/train")]
    assert len(union) == 3 + 4 and union.x.shape == (7, 3, 14, 8, 2)
    np.testing.assert_array_equal(union.lengths, np.r_[parts[0].lengths, parts[1].lengths])
    assert union.ids.tolist() == ["c0", "c1", "c2", "c0", "c1", "c2", "c3"]
    # a's labels as they are, b's shifted by a's 2 classes; -1 stays unlabelled
    assert union.labels.tolist() == [-1, 1, 0, -1, 2 + 1, 2 + 2, 2 + 0]
    assert union.class_names == ["p", "q", "r", "s", "t"] and union.num_classes == 5
    assert union.fingerprint == f"{a.fingerprint}+{b.fingerprint}"
    assert union.sources() == [{"path": str(a.path), "fingerprint": a.fingerprint, "split": "xsub/train",
                                "samples": 3},
                               {"path": str(b.path), "fingerprint": b.fingerprint, "split": "xsub/train",
                                "samples": 4}]
    np.testing.assert_array_equal(union.sample(4), b.split("xsub/train").sample(1))
    whole = StoreUnion([a, b])
    assert "xsub/train" in whole.split_names and whole.split(["xsub/train", "xsub/val"]).ids.tolist() == [
        "c0", "c1", "c2", "c4", "c5", "c6", "c7"]
    with pytest.raises(ConfigError, match=r"1 split names .* for a union of 2 stores"):
        whole.split(["xsub/train"])


def test_clip_batches_read_the_union(two_stores):
    a, b = (open_store(p) for p in two_stores)
    union = StoreUnion([a, b])
    batch = ClipBatches(union, 5, shuffle=False, drop_last=False).read(np.array([7, 0, 12]))
    for row, (store, i) in enumerate([(b, 1), (a, 0), (b, 6)]):
        t = int(store.lengths[i])
        assert int(batch.lengths[row]) == t
        torch.testing.assert_close(batch.x[row, :, :t], torch.from_numpy(store.sample(i).copy()))
        assert batch.x[row, :, t:].abs().sum() == 0


def test_refusals_name_both_stores(two_stores, tmp_path):
    a = open_store(two_stores[0])
    other = layout_from_dict({**HANDS8.to_dict(), "name": "hands8_mirrored"})
    for path, kwargs, message in [
        (tmp_path / "layout", {"layout": other},
         r"different layouts: 'hands8' \(8 joints\) and 'hands8_mirrored'"),
        (tmp_path / "flat", {"channels": 2}, "differ in channels C: 3 and 2"),
        (tmp_path / "alone", {"persons": 1}, "differ in persons M: 2 and 1"),
    ]:
        b = open_store(small_store(path, 4, 10, **kwargs))
        with pytest.raises(ConfigError, match=message) as err:
            StoreUnion([a, b])
        assert str(a.path) in str(err.value) and str(b.path) in str(err.value)
    with pytest.raises(ConfigError, match=r"share 3 samples of the same store \(e.g. 'c0'\)"):
        StoreUnion([a.split("xsub/train"), a.split("all")])
    assert len(StoreUnion([a.split("xsub/train"), a.split("xsub/val")])) == len(a)


def test_pretraining_views_one_store_or_a_union(two_stores):
    one = pretraining_views(str(two_stores[0]), None, None, open_store, pick_splits)
    assert one[1].split_name == "xsub/train" and len(one[1]) == 3
    store, train, evaluation = pretraining_views([str(p) for p in two_stores], ["xsub/train", "all"], None,
                                                 open_store, pick_splits)
    assert store is train and len(train) == 3 + 8
    assert evaluation is not None and str(evaluation[0].path) == str(two_stores[0])  # the first store's
    assert len(pretraining_views([str(p) for p in two_stores], None, None, open_store, pick_splits)[1]) == 7
    with pytest.raises(ConfigError, match="data lists 2 stores and split 3 names"):
        pretraining_views([str(p) for p in two_stores], ["all"] * 3, None, open_store, pick_splits)
    with pytest.raises(ConfigError, match=r"split is a list .* but data names one store"):
        pretraining_views(str(two_stores[0]), ["all", "all"], None, open_store, pick_splits)


def test_pretrain_on_a_union_records_both_fingerprints(tiny_store_path, tmp_path):
    second = tmp_path / "second"
    write_store(second, make_tiny_converted(seed=1))
    run = tmp_path / "run"
    data = json.dumps([str(tiny_store_path), str(second)])
    assert main(["pretrain", "--out", str(run), f"data={data}", "split=[xsub/train, xsub/train]",
                 *TINY_MODEL, "epochs=1"]) == 0
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    fingerprints = [open_store(p).fingerprint for p in (tiny_store_path, second)]
    assert state["data_fingerprint"] == "+".join(fingerprints)
    assert state["step"] == (16 + 16) // 8  # one epoch of both stores' 16 training clips, batch 8
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert written["data"] == [str(tiny_store_path), str(second)] and written["split"] == ["xsub/train"] * 2


def test_config_accepts_lists_and_refuses_class_exclusion_for_a_union():
    cfg = from_dict(PretrainConfig, {"data": ["a", "b"], "split": ["xsub/train", "xset/train"]})
    assert cfg.data == ["a", "b"] and cfg.split == ["xsub/train", "xset/train"]
    with pytest.raises(ConfigError, match=r"exclude_classes needs one store: .* \(\['a', 'b'\]\)"):
        from_dict(PretrainConfig, {"data": ["a", "b"], "exclude_classes": [1]})
