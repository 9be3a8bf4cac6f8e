"""Which samples pre-training saw (the record every checkpoint and export carries), and their
overlap with evaluation data: the leakage guard.

A record is a plain mapping (it survives ``torch.load(weights_only=True)`` and JSON)::

    {"parts": [{"store": path, "fingerprint": store fingerprint, "split": split name,
                "num_samples": n, "held_out_classes": [class names], "ids": [sorted sample ids]}],
     "complete": True}

One part per pre-training store (a union of stores has several). ``complete`` is False when the
encoder also learnt from data without a record (initialised from a checkpoint that has none).

Overlap is decided by sample id: a clip's id names the recording (``S001C001P001R001A001`` in
NTU), so the same id in two splits of one store, or in two stores converted from the same
recordings, is the same clip. Clips cut from a recording under other ids are not recognised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pcm3.errors import Pcm3Error

RECORD_KEY = "pretraining_samples"  # checkpoint entry and export metadata key
EXAMPLES = 5  # ids shown in messages


def _parts(store: Any) -> list[Any]:
    return list(getattr(store, "parts", [store]))


def samples_record(train: Any, held_out_classes: Sequence[str] = ()) -> dict[str, Any]:
    """The record of pre-training on ``train`` (a store, a split of one, or a ``StoreUnion``);
    ``held_out_classes``: class names left out of it (few-shot novel classes)."""
    parts = [{"store": str(p.path), "fingerprint": str(p.fingerprint), "split": str(p.split_name),
              "num_samples": len(p), "held_out_classes": list(held_out_classes),
              "ids": sorted(str(i) for i in p.ids)} for p in _parts(train)]
    return {"parts": parts, "complete": True}


def merge_records(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    """The record of an encoder trained on ``second``'s samples after ``first``'s (None: an
    initialisation without a record, so the result is incomplete)."""
    if first is None:
        return {"parts": list(second["parts"]), "complete": False}
    keys = {(p["fingerprint"], p["split"]) for p in second["parts"]}
    earlier = [p for p in first["parts"] if (p["fingerprint"], p["split"]) not in keys]
    return {"parts": earlier + list(second["parts"]),
            "complete": bool(first.get("complete", True) and second.get("complete", True))}


def check_record(record: Any, where: str) -> dict[str, Any]:
    """``record`` if it has the shape above; a clear error naming ``where`` otherwise."""
    parts = record.get("parts") if isinstance(record, dict) else None
    needed = ("store", "fingerprint", "split", "ids")
    if not isinstance(parts, list) or not all(isinstance(p, dict) and all(k in p for k in needed)
                                              for p in parts):
        raise Pcm3Error(f"{where}: malformed {RECORD_KEY} entry (expected parts with {', '.join(needed)})")
    return record


def held_out_classes(record: dict[str, Any] | None) -> list[str]:
    """Class names some part of pre-training left out (in order, once each)."""
    if record is None:
        return []
    return list(dict.fromkeys(c for p in record["parts"] for c in p.get("held_out_classes", [])))


def describe_parts(record: dict[str, Any]) -> str:
    return " + ".join(f"{p['store']} (split {p['split']!r}, {len(p['ids'])} samples)"
                      for p in record["parts"])


@dataclass
class Overlap:
    """Samples of an evaluated view that pre-training saw: how many, a few of their ids, and
    where pre-training saw them."""

    evaluated: str
    shared: int = 0
    examples: list[str] = field(default_factory=list)
    pretraining: str = ""

    def message(self) -> str:
        return (f"{self.evaluated} shares {self.shared} samples with the encoder's pre-training data "
                f"{self.pretraining} (e.g. {', '.join(repr(i) for i in self.examples)})")


def find_overlap(record: dict[str, Any], evaluated: str, ids: Sequence[str] | np.ndarray) -> Overlap:
    """The ids among ``ids`` (the evaluated samples, described by ``evaluated``) that are in
    ``record``."""
    seen = np.concatenate([np.asarray(p["ids"], dtype=str) for p in record["parts"]] or [np.zeros(0, str)])
    shared = np.intersect1d(np.asarray(ids, dtype=str), seen)
    return Overlap(evaluated, int(shared.size), [str(i) for i in shared[:EXAMPLES]], describe_parts(record))
