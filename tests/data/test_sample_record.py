"""The pre-training sample record: built from stores and unions, merged, compared by id."""

from __future__ import annotations

import pytest

from pcm3.data import write_store
from pcm3.data.sample_record import (
    check_record,
    find_overlap,
    held_out_classes,
    merge_records,
    samples_record,
)
from pcm3.data.store import open_store
from pcm3.data.union import StoreUnion
from pcm3.errors import Pcm3Error

from ..conftest import make_tiny_converted


def _part(split: str, ids: list[str], fingerprint: str = "f1", held: list[str] | None = None) -> dict:
    return {"store": "/s", "fingerprint": fingerprint, "split": split, "num_samples": len(ids),
            "held_out_classes": held or [], "ids": ids}


def test_record_of_a_split_and_of_a_union(tiny_store_path, tmp_path):
    train = open_store(tiny_store_path).split("xsub/train")
    record = samples_record(train, ["fast"])
    part = record["parts"][0]
    assert record["complete"] and part["split"] == "xsub/train" and part["held_out_classes"] == ["fast"]
    assert part["fingerprint"] == train.fingerprint and part["store"] == str(tiny_store_path)
    assert part["ids"] == [f"clip{i:03d}" for i in range(16)] and part["num_samples"] == 16
    other = open_store(write_store(tmp_path / "other", make_tiny_converted(6, seed=3)).path)
    union = samples_record(StoreUnion([train, other.split("xsub/val")]))
    assert [p["split"] for p in union["parts"]] == ["xsub/train", "xsub/val"]
    assert union["parts"][1]["ids"] == ["clip004", "clip005"]


def test_merge_keeps_earlier_parts_and_marks_unknown_history():
    first = {"parts": [_part("a", ["x"]), _part("b", ["y"])], "complete": True}
    second = {"parts": [_part("b", ["y", "z"])], "complete": True}
    merged = merge_records(first, second)
    assert [(p["split"], p["ids"]) for p in merged["parts"]] == [("a", ["x"]), ("b", ["y", "z"])]
    assert merged["complete"]
    assert merge_records(None, second) == {"parts": second["parts"], "complete": False}


def test_overlap_by_id_names_count_examples_and_store():
    record = {"parts": [_part("xsub/train", ["c1", "c2", "c3"]), _part("t", ["d1"], "f2", ["jump"])]}
    found = find_overlap(record, "split 'xview/val' of /v", ["c2", "c9", "d1", "c3"])
    assert (found.shared, found.examples) == (3, ["c2", "c3", "d1"])
    assert "split 'xview/val' of /v shares 3 samples" in found.message()
    assert "/s (split 'xsub/train', 3 samples)" in found.message() and "'c2', 'c3', 'd1'" in found.message()
    assert find_overlap(record, "v", ["e1"]).shared == 0
    assert held_out_classes(record) == ["jump"] and held_out_classes(None) == []


def test_malformed_record_is_refused():
    with pytest.raises(Pcm3Error, match=r"ck.pt: malformed pretraining_samples entry"):
        check_record({"parts": [{"store": "/s"}]}, "ck.pt")
