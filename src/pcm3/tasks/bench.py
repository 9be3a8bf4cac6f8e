"""``pcm3 bench``: pre-train (or load) an encoder, run every downstream task for it and for the
reference encoders (``random-init``: the same architecture untrained; ``raw``: the coordinates
themselves), and write one table plus pictures.

Output folder::

    pretrain/                  the pre-training run (resumed when it exists)
    pretrain_fewshot/          with ``fewshot`` on the pre-training store: the run without its
                               novel classes (:mod:`pcm3.tasks.bench_pretraining`)
    tasks/<encoder>/<task>.json  one finished task: metrics + provenance (reused when the task
                               config, seed, data and encoder weights are the same), and
                               whether its test data overlaps the encoder's pre-training data
                               (refused unless ``allow_overlap``; :mod:`pcm3.tasks.leakage`)
    tasks/<encoder>/<task>/    what the task wrote (pictures, caches, detection predictions)
    results.json / .csv / .md  the rows (see :mod:`pcm3.tasks.bench_table`)
    provenance.json            config, code version, data fingerprints, per-task configs
    pictures/                  t-SNE, confusion matrix, detection timeline, training curves
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from pcm3.config import from_dict, to_dict
from pcm3.data.sample_record import held_out_classes
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.models.official_formats import ENCODER_FORMATS, STREAMS
from pcm3.tasks.base import (
    TASK_MODULES,
    TaskContext,
    check_compatible,
    get_task,
    raw_encoder,
    store_input_shape,
)
from pcm3.tasks.bench_pretraining import pretrained_encoders
from pcm3.tasks.bench_table import data_notes, numbers_note, task_rows, write_tables
from pcm3.tasks.encoders import LoadedEncoder, random_encoder_from_spec
from pcm3.tasks.leakage import LeakageCheck, check_leakage
from pcm3.tasks.results import code_version, result_record, write_result

UNTRIMMED_TASKS = frozenset({"detection"})  # tasks that read the untrimmed store
Log = Callable[[str], None]


@dataclass
class PretrainSource:
    """The pre-training run of the bench: a ``PretrainConfig`` YAML plus overrides (nested
    mappings or dotted keys: ``{model: {bigru: {hidden_size: 16}}}`` or ``{model.bigru.hidden_size: 16}``).
    Its ``data`` (and ``device``, unless ``auto``) default to the bench's."""

    config: str | None = "configs/pcm3_quick.yaml"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchConfig:
    """What ``pcm3 bench`` runs. ``encoder`` (a checkpoint or exported ``.safetensors``), when
    set, is used instead of pre-training; ``tasks`` maps a task name to overrides of its config."""

    data: str = "synthetic"
    untrimmed: str | None = None  # untrimmed store for detection; default: <data>/untrimmed
    seed: int = 0
    device: str = "auto"
    pretrain: PretrainSource | None = field(default_factory=PretrainSource)
    encoder: str | None = None
    encoder_format: str = "auto"  # of the encoder file: auto, pcm3, official-pcm3, official-mamp, ...
    encoder_stream: str | None = None  # official checkpoints: their stream (default joint)
    references: list[Literal["random-init", "raw"]] = field(default_factory=lambda: ["random-init", "raw"])
    tasks: dict[str, dict[str, Any] | None] = field(
        default_factory=lambda: {"knn": {}, "linear": {}, "occlusion": {}, "detection": {}})
    pictures: bool = True
    allow_overlap: bool = False  # run tasks whose test data overlaps pre-training (labelled)
    # fewshot on the pre-training store: "separate" = a second pre-training without the novel
    # classes for fewshot alone; "shared" = one without them for every task (rows say so)
    fewshot_pretraining: Literal["separate", "shared"] = "separate"

    def validate(self) -> None:
        if self.pretrain is None and self.encoder is None:
            raise ConfigError("set either pretrain (a pre-training config) or encoder (a checkpoint path)")
        if not self.tasks:
            raise ConfigError("tasks is empty: name at least one task, e.g. tasks: {knn: {}}")
        if len(set(self.references)) != len(self.references):
            raise ConfigError(f"references lists an encoder twice: {self.references}")
        if self.encoder_format not in ENCODER_FORMATS:
            raise ConfigError(f"encoder_format must be one of {ENCODER_FORMATS}, got {self.encoder_format!r}")
        if self.encoder_stream is not None and self.encoder_stream not in STREAMS:
            raise ConfigError(f"encoder_stream must be one of {STREAMS} or null, got {self.encoder_stream!r}")


def resolve_device(name: str) -> torch.device:
    """The device of ``name`` (``auto``: CUDA, then MPS, then CPU); unknown or absent devices are
    refused with the allowed values."""
    from pcm3.engine.runtime import resolve_runtime

    return resolve_runtime(name).device


def task_configs(cfg: BenchConfig) -> dict[str, Any]:
    """Every task's typed config (unknown tasks and keys fail here, before anything runs), in
    the table's order: that of ``TASK_MODULES``, then other tasks as listed (YAML loading does
    not keep the order of mapping keys)."""
    known = list(TASK_MODULES)
    names = sorted(cfg.tasks, key=lambda n: known.index(n) if n in known else len(known))
    return {n: from_dict(get_task(n).config, cfg.tasks[n] or {}, prefix=f"tasks.{n}") for n in names}


def reference_encoders(cfg: BenchConfig, pretrained: LoadedEncoder, in_channels: int,
                       num_persons: int) -> dict[str, LoadedEncoder]:
    """The reference rows: ``random-init`` (the pre-trained encoder's spec, seeded) and ``raw``."""
    out: dict[str, LoadedEncoder] = {}
    for name in cfg.references:
        if name == "random-init":
            if pretrained.spec is None:
                raise Pcm3Error(f"{pretrained.source}: no encoder spec, so no random-init reference")
            out[name] = random_encoder_from_spec(pretrained.spec, seed=cfg.seed, config=pretrained.config)
        else:
            out[name] = raw_encoder(pretrained.layout, in_channels, num_persons,
                                    frames=pretrained.view_frames, stream=pretrained.stream)
    return out


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


@dataclass
class _Stores:
    """The stores of a bench: trimmed, and untrimmed when a task needs it."""

    trimmed: Any
    untrimmed_path: Path | None
    untrimmed: Any

    @classmethod
    def open(cls, cfg: BenchConfig, needs_untrimmed: bool) -> _Stores:
        from pcm3.data.store import UNTRIMMED_DIR, open_untrimmed
        from pcm3.engine.pretrain import resolve_store

        trimmed = resolve_store(cfg.data)
        if not needs_untrimmed:
            return cls(trimmed, None, None)
        path = Path(cfg.untrimmed) if cfg.untrimmed else trimmed.path
        if cfg.untrimmed is None and not (path / UNTRIMMED_DIR / "meta.json").exists():
            raise ConfigError(f"tasks {sorted(UNTRIMMED_TASKS & set(cfg.tasks))} need untrimmed sequences; "
                              f"{trimmed.path} has no {UNTRIMMED_DIR}/ folder: set untrimmed=PATH")
        return cls(trimmed, path, open_untrimmed(path))

    def for_task(self, task: str) -> tuple[Path, Any]:
        if task in UNTRIMMED_TASKS:
            return self.untrimmed_path, self.untrimmed  # type: ignore[return-value]
        return self.trimmed.path, self.trimmed


def data_fingerprint(task: str, task_cfg: Any, store: Any) -> str:
    """The fingerprint of the data ``task`` reads: ``store``'s, joined (``+``) with that of the
    task's own store (``fewshot``'s ``data``, ``transfer``'s ``target``) when it names one."""
    from pcm3.data.store import open_store

    own = getattr(task_cfg, "data", None) if task == "fewshot" else getattr(task_cfg, "target", None)
    return store.fingerprint if not own else f"{store.fingerprint}+{open_store(own).fingerprint}"


def run_task(task: str, task_cfg: Any, encoder_name: str, encoder: LoadedEncoder, stores: _Stores,
             cfg: BenchConfig, out_dir: Path, device: torch.device,
             leakage: LeakageCheck) -> tuple[dict[str, Any], bool]:
    """``(record, cached)``: one task on one encoder, or its stored result when still valid;
    ``leakage``: the task's check against the encoder's pre-training data (recorded)."""
    store_path, store = stores.for_task(task)
    fingerprint = encoder_fingerprint(encoder)
    data = data_fingerprint(task, task_cfg, store)
    record_key = {"task": task, "encoder": encoder_name, "config": _plain(to_dict(task_cfg)),
                  "seed": cfg.seed, "data_fingerprint": data, "encoder_fingerprint": fingerprint}
    path = out_dir / "tasks" / encoder_name / f"{task}.json"
    record = _cached_record(path, record_key)
    if record is not None:
        record.update(pretraining_overlap=leakage.label, overlap_examples=leakage.examples)
        return record, True
    task_dir = out_dir / "tasks" / encoder_name / task
    task_dir.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(encoder, Path(store_path), device, cfg.seed, task_dir)
    start = time.perf_counter()
    metrics = get_task(task).run(ctx, task_cfg)
    seconds = time.perf_counter() - start
    if not any(task_dir.iterdir()):
        task_dir.rmdir()  # the task wrote nothing
    if encoder_fingerprint(encoder) != fingerprint:
        raise Pcm3Error(f"task {task!r} changed the weights or buffers of the {encoder_name} encoder; "
                        "a task must train a copy (the next tasks would see the changed encoder)")
    record = result_record(task, metrics, config=record_key["config"], seed=cfg.seed, encoder=encoder_name,
                           data_fingerprint=data, seconds=seconds)
    record.update(encoder_fingerprint=fingerprint, encoder_source=encoder.source,
                  split=evaluated_split(task_cfg, store), pretraining_overlap=leakage.label,
                  overlap_examples=leakage.examples, held_out_classes=held_out_classes(encoder.pretraining))
    write_result(path, record)
    return record, False


def run_bench(cfg: BenchConfig, out_dir: str | Path, log: Log = print) -> list[dict[str, Any]]:
    """Run the bench of ``cfg`` into ``out_dir``; returns the rows written to ``results.json``."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    from pcm3.engine.runtime import resolve_runtime

    runtime = resolve_runtime(cfg.device)
    device = runtime.device
    log(f"[bench] {runtime.describe()}")
    configs = task_configs(cfg)
    stores = _Stores.open(cfg, needs_untrimmed=bool(UNTRIMMED_TASKS & set(configs)))
    if "fewshot" in configs:  # unknown novel classes fail before any pre-training
        from pcm3.tasks.fewshot import fewshot_store, novel_class_indices

        fewshot = configs["fewshot"]
        novel_class_indices(fewshot_store(fewshot, stores.trimmed), fewshot.novel_classes)
    pretrained, fewshot_encoder, pretrain_info = pretrained_encoders(cfg, configs.get("fewshot"), out_dir,
                                                                     log)
    for task_store in (stores.trimmed, stores.untrimmed):
        if task_store is not None:  # before any task runs: an encoder for another layout / input
            check_compatible(pretrained, task_store)
    name = str(pretrained.config.get("method") or "pretrained")
    c, m = store_input_shape(stores.trimmed)
    encoders = {name: pretrained, **reference_encoders(cfg, pretrained, c, m)}

    def encoders_of(task: str) -> dict[str, LoadedEncoder]:  # fewshot: its separate pre-training
        return {**encoders, name: fewshot_encoder} if task == "fewshot" and fewshot_encoder else encoders

    leakage = {(task, e): check_leakage(encoder, task, task_cfg, stores.for_task(task)[1], cfg.allow_overlap)
               for task, task_cfg in configs.items() for e, encoder in encoders_of(task).items()}
    rows: list[dict[str, Any]] = []
    cached: list[str] = []
    for task, task_cfg in configs.items():
        for encoder_name, encoder in encoders_of(task).items():
            record, was_cached = run_task(task, task_cfg, encoder_name, encoder, stores, cfg, out_dir, device,
                                          leakage[task, encoder_name])
            new = task_rows(encoder_name, task, record["metrics"], record.get("split", "-"), cfg.seed,
                            record["seconds"], record["pretraining_overlap"],
                            held_out_classes(encoder.pretraining))
            rows += new
            cached += [f"{encoder_name}/{task}"] if was_cached else []
            shown = ", ".join(f"{r['metric']} {r['value']:.1f}" for r in new[:4])
            log(f"[bench] {task:<10} {encoder_name:<12} {shown}  ({record['seconds']:.1f} s"
                f"{', cached' if was_cached else ''})")
    caption = (f"Seed {cfg.seed}; data {stores.trimmed.path} ({stores.trimmed.fingerprint}); values in "
               f"percent where the metric is an accuracy or mAP; {numbers_note(rows)}"
               + "".join(f"; {note}" for note in [data_notes(rows)] if note) + ".")
    write_tables(out_dir, rows, caption)
    provenance = {
        "config": to_dict(cfg), "code_version": code_version(), "device": str(device),
        "runtime": runtime.to_dict(),
        "data": {"path": str(stores.trimmed.path), "fingerprint": stores.trimmed.fingerprint},
        "untrimmed": None if stores.untrimmed is None else
        {"path": str(stores.untrimmed_path), "fingerprint": stores.untrimmed.fingerprint},
        "encoders": {n: {"source": e.source, "fingerprint": encoder_fingerprint(e), "stream": e.stream,
                         "view_frames": e.view_frames}
                     for n, e in [*encoders.items(), *([(f"{name} (fewshot)", fewshot_encoder)]
                                                       if fewshot_encoder else [])]},
        "pretrain": pretrain_info, "tasks": {t: to_dict(c) for t, c in configs.items()},
        "cached": cached, "seconds": round(time.perf_counter() - start, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(out_dir / "provenance.json", provenance)
    if cfg.pictures:
        from pcm3.tasks.bench_pictures import draw_pictures

        draw_pictures(out_dir, name, pretrained, stores.trimmed, stores.untrimmed, configs, cfg.seed, device,
                      log)
    return rows
