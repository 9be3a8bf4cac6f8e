"""One task of ``pcm3 bench`` on one encoder: run it, or reuse its stored result when the task
config, seed, data and encoder weights are unchanged (``tasks/<encoder>/<task>.json``)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch

from pcm3.config import to_dict
from pcm3.data.sample_record import held_out_classes
from pcm3.errors import Pcm3Error
from pcm3.tasks.base import TaskContext, get_task
from pcm3.tasks.bench_encoders import slug
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.leakage import LeakageCheck
from pcm3.tasks.results import result_record, write_result


def encoder_fingerprint(encoder: LoadedEncoder) -> str:
    """16 hex digits that change with any weight or buffer, the stream, view or layout."""
    h = hashlib.sha256(json.dumps([type(encoder.encoder).__name__, encoder.stream, encoder.view_frames,
                                   encoder.layout.to_dict()], sort_keys=True, default=str).encode())
    for key, tensor in sorted(encoder.encoder.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _cached_record(path: Path, record_key: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result at ``path`` if it was made by the same task config, seed, data and weights."""
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or "metrics" not in record:
        return None
    return record if all(record.get(k) == v for k, v in record_key.items()) else None


def evaluated_split(task_cfg: Any, store: Any) -> str:
    """The split a task evaluates on: its ``test_split`` or the store's default one."""
    from pcm3.tasks.features import split_pair

    name = getattr(task_cfg, "test_split", None)
    if name is not None:
        return name
    try:
        return split_pair(store, getattr(task_cfg, "train_split", None), None)[1].split_name
    except Pcm3Error:
        return "-"


def data_fingerprint(task: str, task_cfg: Any, store: Any) -> str:
    """The fingerprint of the data ``task`` reads: ``store``'s, joined (``+``) with that of the
    task's own store (``fewshot``'s ``data``, ``transfer``'s ``target``) when it names one."""
    from pcm3.data.store import open_store

    own = getattr(task_cfg, "data", None) if task == "fewshot" else getattr(task_cfg, "target", None)
    return store.fingerprint if not own else f"{store.fingerprint}+{open_store(own).fingerprint}"


def run_task(task: str, task_cfg: Any, encoder_name: str, encoder: LoadedEncoder, stores: Any,
             seed: int, out_dir: Path, device: torch.device,
             leakage: LeakageCheck) -> tuple[dict[str, Any], bool]:
    """``(record, cached)``: one task on one encoder, or its stored result when still valid;
    ``leakage``: the task's check against the encoder's pre-training data (recorded); ``stores``:
    the bench's stores (``for_task(task)`` -> ``(path, store)``)."""
    store_path, store = stores.for_task(task)
    fingerprint = encoder_fingerprint(encoder)
    data = data_fingerprint(task, task_cfg, store)
    record_key = {"task": task, "encoder": encoder_name, "config": _plain(to_dict(task_cfg)),
                  "seed": seed, "data_fingerprint": data, "encoder_fingerprint": fingerprint}
    path = out_dir / "tasks" / slug(encoder_name) / f"{task}.json"
    record = _cached_record(path, record_key)
    if record is not None:
        record.update(pretraining_overlap=leakage.label, overlap_examples=leakage.examples)
        return record, True
    task_dir = out_dir / "tasks" / slug(encoder_name) / task
    task_dir.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(encoder, Path(store_path), device, seed, task_dir)
    start = time.perf_counter()
    metrics = get_task(task).run(ctx, task_cfg)
    seconds = time.perf_counter() - start
    if not any(task_dir.iterdir()):
        task_dir.rmdir()  # the task wrote nothing
    if encoder_fingerprint(encoder) != fingerprint:
        raise Pcm3Error(f"task {task!r} changed the weights or buffers of the {encoder_name} encoder; "
                        "a task must train a copy (the next tasks would see the changed encoder)")
    record = result_record(task, metrics, config=record_key["config"], seed=seed, encoder=encoder_name,
                           data_fingerprint=data, seconds=seconds)
    record.update(encoder_fingerprint=fingerprint, encoder_source=encoder.source,
                  split=evaluated_split(task_cfg, store), pretraining_overlap=leakage.label,
                  overlap_examples=leakage.examples, held_out_classes=held_out_classes(encoder.pretraining))
    write_result(path, record)
    return record, False
