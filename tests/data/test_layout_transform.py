"""Records and stores put into another layout."""

import json

import numpy as np
import pytest

from pcm3.cli import main
from pcm3.data import Converted, Sample, Sequence, open_store, write_store
from pcm3.data.layout_transform import map_converted, store_records, write_mapped_store
from pcm3.data.store import open_untrimmed
from pcm3.errors import DataError
from pcm3.layout_mapping import layout_mapping
from pcm3.layouts import COCO17, NTU25


def _coco_converted(seed: int = 0) -> Converted:
    """Six 3D coco17 clips (one with confidences) and one recording, with splits."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(6):
        x = rng.normal(size=(3, 10 + i, 17, 1)).astype(np.float32) + 1.0
        conf = rng.uniform(0.1, 1.0, size=(10 + i, 17, 1)).astype(np.float32)
        samples.append(Sample(f"c{i}", x, i % 2, conf))
    seq = Sequence("rec0", rng.normal(size=(3, 40, 17, 1)).astype(np.float32) + 1.0,
                   np.array([[1, 5, 20]], dtype=np.int64))
    ids = [s.id for s in samples]
    return Converted(layout=COCO17, class_names=["a", "b"], samples=samples,
                     splits={"train": ids[:4], "test": ids[4:]}, sequences=[seq],
                     sequence_splits={"test": ["rec0"]})


def test_map_converted_maps_coordinates_and_confidences():
    converted = _coco_converted()
    out = map_converted(converted, "ntu25")
    mapping = layout_mapping("coco17", "ntu25")
    assert out.layout == NTU25 and out.class_names == converted.class_names and out.splits == converted.splits
    for before, after in zip(converted.samples, out.samples, strict=True):
        assert after.x.shape == (3, before.x.shape[1], 25, 1) and after.label == before.label
        np.testing.assert_allclose(after.x[:, 3, :, 0].T, mapping.apply(before.x[:, 3, :, 0].T), rtol=1e-6)
        spine_base = (before.confidence[:, 11] + before.confidence[:, 12]) / 2  # the hips' mean
        np.testing.assert_allclose(after.confidence[:, 0], spine_base, rtol=1e-6)
    assert out.sequences[0].x.shape == (3, 40, 25, 1)
    np.testing.assert_array_equal(out.sequences[0].intervals, converted.sequences[0].intervals)
    assert out.source["layout_mapping"]["target"] == "ntu25"
    with pytest.raises(DataError, match="the mapping reads 'ntu25'"):
        map_converted(converted, layout_mapping("ntu25", "coco17"))


def test_write_mapped_store_keeps_everything_but_the_layout(tmp_path):
    src = tmp_path / "coco"
    write_store(src, _coco_converted())
    mapping, store = write_mapped_store(src, tmp_path / "ntu", "ntu25")
    original = open_store(src)
    assert mapping.target == NTU25 and store.layout == NTU25
    assert list(store.ids) == list(original.ids) and (store.labels == original.labels).all()
    assert (store.lengths == original.lengths).all() and store.split_names == original.split_names
    assert list(store.split("test").ids) == ["c4", "c5"]
    assert store.meta["preprocessing"]["steps"] == ["center", "align"]  # repair skipped: confidences
    assert store.meta["source"]["layout_mapping"]["source"] == "coco17"
    x = store.sample(2)  # centred on spine_mid, person 0, every frame
    np.testing.assert_allclose(x[:, :, NTU25.center, 0], 0.0, atol=1e-6)
    assert store.confidence is not None and store.confidence.shape[2] == 25
    untrimmed = open_untrimmed(tmp_path / "ntu")
    assert untrimmed.layout == NTU25 and list(untrimmed.ids) == ["rec0"]
    np.testing.assert_array_equal(untrimmed.intervals(0), [[1, 5, 20]])
    with pytest.raises(DataError, match="another folder than its source"):
        write_mapped_store(src, src, "ntu25")


def test_store_records_round_trip(tmp_path):
    src = tmp_path / "coco"
    write_store(src, _coco_converted())
    records = store_records(src)
    assert [s.id for s in records.samples] == [f"c{i}" for i in range(6)]
    assert records.splits == {"test": ["c4", "c5"], "train": ["c0", "c1", "c2", "c3"]}
    assert records.sequence_splits == {"test": ["rec0"]}
    np.testing.assert_array_equal(records.samples[3].x, open_store(src).sample(3))


def test_cli_map_layout_and_convert_with_a_mapping(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 12, 17, 3)).astype(np.float32) + 1
    np.savez(tmp_path / "coco.npz", x=x, y=np.array([0, 1, 0, 1, 0]), split_train=np.arange(3),
             split_test=np.arange(3, 5))
    out = tmp_path / "direct"
    convert = ["data", "convert", str(tmp_path / "coco.npz"), "--format", "arrays", "--layout", "coco17"]
    assert main([*convert, "--map-layout", "ntu25", "--out", str(out)]) == 0
    direct = open_store(out)
    assert direct.layout == NTU25 and direct.meta["preprocessing"]["steps"] == ["repair", "center", "align"]
    assert main([*convert, "--map-layout", "ntu25", "--out", str(out), "--preprocess", "repair,center"]) == 0
    direct = open_store(out)
    plain = tmp_path / "plain"
    assert main([*convert, "--out", str(plain), "--preprocess", "repair,center"]) == 0
    capsys.readouterr()
    assert main(["data", "map-layout", str(plain), "--layout", "ntu25", "--out", str(tmp_path / "m"),
                 "--absent-joints", "zero", "--preprocess", "repair,center"]) == 0
    printed = capsys.readouterr().out
    assert "coco17 -> ntu25: 12 joints direct, 5 synthesised, 8 absent (zero)" in printed
    mapped = open_store(tmp_path / "m")
    assert not mapped.x[:, :, :, NTU25.joint_names.index("hand_left")].any()  # zero fill
    # without alignment, mapping the converted clips later gives the clips mapped while converting
    np.testing.assert_allclose(np.asarray(mapped.x[:, :, :, :7]), np.asarray(direct.x[:, :, :, :7]),
                               atol=1e-5)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["source"]["layout_mapping"]["absent"] == "zero"
    assert main(["data", "map-layout", str(plain), "--layout", "mediapipe33", "--out",
                 str(tmp_path / "x")]) == 2
    assert "no joint mapping from layout 'coco17' to 'mediapipe33'" in capsys.readouterr().err
