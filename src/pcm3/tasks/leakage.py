"""The leakage guard of the downstream tasks: the samples a task evaluates on must not be among
the samples its encoder was pre-trained on (the record in its checkpoint or export,
:mod:`pcm3.data.sample_record`).

What a task evaluates on: its test split (of its own store for ``transfer``: ``target``); for
``fewshot`` the novel-class clips of both splits (support clips too must be unseen). An overlap
is refused unless ``allow_overlap`` is set; the result then says how many samples are shared.
Encoders without a record are not checked, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pcm3.data.sample_record import find_overlap
from pcm3.errors import Pcm3Error
from pcm3.tasks.encoders import LoadedEncoder

NOT_PRETRAINED = frozenset({"random-init", "raw"})  # reference encoders: nothing to check


@dataclass
class LeakageCheck:
    """The outcome for one task and encoder. ``label`` is what results and tables show:
    ``none``, ``<n> samples (allowed)``, ``unchecked: ...`` or ``n/a: not pre-trained``."""

    label: str
    shared: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def overlapping(self) -> bool:
        return self.shared > 0


def _test_view(store: Any, cfg: Any) -> Any:
    from pcm3.tasks.features import split_pair

    return split_pair(store, getattr(cfg, "train_split", None), getattr(cfg, "test_split", None))


def evaluated_samples(task: str, cfg: Any, store: Any) -> list[tuple[str, np.ndarray]]:
    """``(description, sample ids)`` of what ``task`` (config ``cfg``) evaluates on, given the
    store it reads (``store``); empty when the splits cannot be resolved (the task itself then
    reports why)."""
    try:
        if task == "transfer":
            if not getattr(cfg, "target", ""):
                return []
            from pcm3.tasks.features import open_trimmed

            store = open_trimmed(cfg.target, "transfer")
        if task == "fewshot":
            from pcm3.tasks.fewshot import fewshot_store, novel_class_indices

            store = fewshot_store(cfg, store)
            novel = novel_class_indices(store, cfg.novel_classes)
            views = _test_view(store, cfg)
            return [(f"the novel-class clips of split {v.split_name!r} of {v.path}",
                     np.asarray(v.ids)[np.isin(np.asarray(v.labels), novel)]) for v in views]
        test = _test_view(store, cfg)[1]
    except Pcm3Error:
        return []
    return [(f"split {test.split_name!r} of {test.path}", np.asarray(test.ids))]


def check_leakage(encoder: LoadedEncoder, task: str, cfg: Any, store: Any,
                  allow_overlap: bool = False) -> LeakageCheck:
    """Compare what ``task`` evaluates on with ``encoder``'s pre-training record; an overlap is an
    error naming the stores, the number of shared samples and a few ids (unless ``allow_overlap``)."""
    if encoder.pretraining is None:
        if encoder.source in NOT_PRETRAINED:
            return LeakageCheck("n/a: not pre-trained")
        return LeakageCheck("unchecked: the encoder file has no pre-training record")
    overlaps = [find_overlap(encoder.pretraining, what, ids)
                for what, ids in evaluated_samples(task, cfg, store)]
    shared = [o for o in overlaps if o.shared]
    if shared and not allow_overlap:
        raise Pcm3Error(f"{task} with encoder {encoder.source}: {shared[0].message()}; evaluate on data the "
                        "encoder never saw, or set allow_overlap=true to run anyway (results are then "
                        "labelled as overlapping)")
    if shared:
        total = sum(o.shared for o in shared)
        return LeakageCheck(f"{total} samples (allowed)", total, [i for o in shared for i in o.examples][:5])
    complete = encoder.pretraining.get("complete", True)
    return LeakageCheck("none" if complete else "none recorded (record incomplete: initialised from a "
                        "checkpoint without one)")
