"""``pcm3 bench``: pre-train (or load) an encoder, or each of a list of ``encoders``
(:mod:`pcm3.tasks.bench_encoders`), run every downstream task for them and for the reference
encoders (``random-init``: the same architecture untrained; ``raw``: the coordinates
themselves), and write one table plus pictures.

Output folder::

    pretrain/                  the pre-training run (resumed when it exists); with ``encoders``:
                               pretrain/<entry>-<config key>/ per entry
    pretrain_fewshot/          with ``fewshot`` on the pre-training store: the run without its
                               novel classes (:mod:`pcm3.tasks.bench_pretraining`)
    tasks/<encoder>/<task>.json  one finished task (the encoder's name made a folder name): metrics
                               + provenance (reused when the task
                               config, seed, data and encoder weights are the same), and
                               whether its test data overlaps the encoder's pre-training data
                               (refused unless ``allow_overlap``; :mod:`pcm3.tasks.leakage`)
    tasks/<encoder>/<task>/    what the task wrote (pictures, caches, detection predictions)
    results.json / .csv / .md  the rows (see :mod:`pcm3.tasks.bench_table`)
    provenance.json            config, code version, data fingerprints, per-task configs
    pictures/                  t-SNE, confusion matrix, detection timeline, training curves
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from pcm3.config import from_dict, to_dict
from pcm3.data.sample_record import held_out_classes
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.models.official_formats import ENCODER_FORMATS, STREAMS
from pcm3.tasks.base import TASK_MODULES, check_compatible, get_task, raw_encoder, store_input_shape
from pcm3.tasks.bench_encoders import EncoderEntry, entry_encoders, entry_references, resolve_entries
from pcm3.tasks.bench_pretraining import pretrained_encoders
from pcm3.tasks.bench_table import data_notes, failure_row, numbers_note, task_rows, write_tables
from pcm3.tasks.bench_task_run import data_fingerprint, encoder_fingerprint, run_task
from pcm3.tasks.encoders import LoadedEncoder, random_encoder_from_spec
from pcm3.tasks.leakage import check_leakage
from pcm3.tasks.results import code_version, write_result

__all__ = ["BenchConfig", "EncoderEntry", "PretrainSource", "data_fingerprint", "run_bench", "task_configs"]

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
    set, is used instead of pre-training; ``encoders``, when set, replaces both with a list of
    pre-trainings and checkpoints (:class:`EncoderEntry`); ``tasks`` maps a task name to
    overrides of its config."""

    data: str = "synthetic"
    untrimmed: str | None = None  # untrimmed store for detection; default: <data>/untrimmed
    seed: int = 0
    device: str = "auto"
    pretrain: PretrainSource | None = field(default_factory=PretrainSource)
    encoder: str | None = None
    encoder_format: str = "auto"  # of the encoder file: auto, pcm3, official-pcm3, official-mamp, ...
    encoder_stream: str | None = None  # official checkpoints: their stream (default joint)
    encoders: list[EncoderEntry] = field(default_factory=list)
    references: list[Literal["random-init", "raw"]] = field(default_factory=lambda: ["random-init", "raw"])
    tasks: dict[str, dict[str, Any] | None] = field(
        default_factory=lambda: {"knn": {}, "linear": {}, "occlusion": {}, "detection": {}})
    pictures: bool = True
    allow_overlap: bool = False  # run tasks whose test data overlaps pre-training (labelled)
    # fewshot on the pre-training store: "separate" = a second pre-training without the novel
    # classes for fewshot alone; "shared" = one without them for every task (rows say so)
    fewshot_pretraining: Literal["separate", "shared"] = "separate"

    def validate(self) -> None:
        if self.encoders:
            if self.encoder is not None or self.pretrain not in (None, PretrainSource()):
                raise ConfigError("encoders lists every encoder of the bench: leave pretrain and encoder "
                                  "out (or null), or give each entry its config / checkpoint")
        elif self.pretrain is None and self.encoder is None:
            raise ConfigError("set either pretrain (a pre-training config), encoder (a checkpoint path) or "
                              "encoders (a list of them)")
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


@dataclass
class _Plan:
    """The encoders of a bench: by name (entries or the pre-trained one first, then references),
    the few-shot encoders that replace some of them for ``fewshot``, rows of entries that failed,
    pre-training provenance, what the pictures show, and whether failures are isolated (an
    ``encoders`` list) or stop the bench (one encoder)."""

    encoders: dict[str, LoadedEncoder]
    fewshot: dict[str, LoadedEncoder]
    failures: list[dict[str, Any]]
    pretrain: dict[str, Any]
    pictures: tuple[str, LoadedEncoder, Path | None] | None
    isolate: bool


def _single_plan(cfg: BenchConfig, configs: dict[str, Any], stores: _Stores, out_dir: Path,
                 log: Log) -> _Plan:
    pretrained, fewshot_encoder, info = pretrained_encoders(cfg, configs.get("fewshot"), out_dir, log)
    for task_store in (stores.trimmed, stores.untrimmed):
        if task_store is not None:  # before any task runs: an encoder for another layout / input
            check_compatible(pretrained, task_store)
    name = str(pretrained.config.get("method") or "pretrained")
    c, m = store_input_shape(stores.trimmed)
    encoders = {name: pretrained, **reference_encoders(cfg, pretrained, c, m)}
    return _Plan(encoders, {name: fewshot_encoder} if fewshot_encoder else {}, [], info,
                 (name, pretrained, None), isolate=False)


def _multi_plan(cfg: BenchConfig, entries: list[Any], configs: dict[str, Any], stores: _Stores, out_dir: Path,
                log: Log) -> _Plan:
    def check(encoder: LoadedEncoder) -> None:
        for task_store in (stores.trimmed, stores.untrimmed):
            if task_store is not None:
                check_compatible(encoder, task_store)

    results = entry_encoders(entries, configs.get("fewshot"), cfg.fewshot_pretraining, out_dir, check, log)
    c, m = store_input_shape(stores.trimmed)
    encoders = {r.name: r.encoder for r in results if r.encoder is not None}
    encoders.update(entry_references(results, cfg.references, cfg.seed, c, m))
    made = [r for r in results if r.encoder is not None]
    shown = next((r for r in made if r.run_dir is not None), made[0] if made else None)
    return _Plan(encoders, {r.name: r.fewshot for r in results if r.fewshot is not None},
                 [failure_row(r.name, "pretrain", r.error, cfg.seed) for r in results if r.error],
                 {r.name: r.info for r in results},
                 None if shown is None else (shown.name, shown.encoder, shown.run_dir), isolate=True)


def _failure(exc: Exception, what: str, log: Log) -> str:
    log(f"[bench] {what} FAILED:\n{traceback.format_exc()}")
    return f"{type(exc).__name__}: {exc}"


def run_bench(cfg: BenchConfig, out_dir: str | Path, log: Log = print) -> list[dict[str, Any]]:
    """Run the bench of ``cfg`` into ``out_dir``; returns the rows written to ``results.json``.
    With ``encoders``, a failing entry or task becomes a row with its ``error`` and the others go
    on; with one encoder, the first failure stops the bench."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    from pcm3.engine.runtime import resolve_runtime

    configs = task_configs(cfg)
    entries = resolve_entries(cfg.encoders, cfg.data, cfg.device) if cfg.encoders else []
    runtime = resolve_runtime(cfg.device)
    device = runtime.device
    log(f"[bench] {runtime.describe()}")
    stores = _Stores.open(cfg, needs_untrimmed=bool(UNTRIMMED_TASKS & set(configs)))
    if "fewshot" in configs:  # unknown novel classes fail before any pre-training
        from pcm3.tasks.fewshot import fewshot_store, novel_class_indices

        fewshot = configs["fewshot"]
        novel_class_indices(fewshot_store(fewshot, stores.trimmed), fewshot.novel_classes)
    plan = (_multi_plan(cfg, entries, configs, stores, out_dir, log) if entries
            else _single_plan(cfg, configs, stores, out_dir, log))

    def encoders_of(task: str) -> dict[str, LoadedEncoder]:  # fewshot: the separate pre-trainings
        return {**plan.encoders, **plan.fewshot} if task == "fewshot" else plan.encoders

    leakage, errors = {}, {}
    for task, task_cfg in configs.items():  # every check before any task runs
        for e, encoder in encoders_of(task).items():
            try:
                leakage[task, e] = check_leakage(encoder, task, task_cfg, stores.for_task(task)[1],
                                                 cfg.allow_overlap)
            except Exception as exc:
                if not plan.isolate:
                    raise
                errors[task, e] = _failure(exc, f"{task} on {e}", log)
    rows: list[dict[str, Any]] = list(plan.failures)
    cached: list[str] = []
    for task, task_cfg in configs.items():
        for encoder_name, encoder in encoders_of(task).items():
            try:
                if (task, encoder_name) in errors:
                    rows.append(failure_row(encoder_name, task, errors[task, encoder_name], cfg.seed))
                    continue
                record, was_cached = run_task(task, task_cfg, encoder_name, encoder, stores, cfg.seed,
                                              out_dir, device, leakage[task, encoder_name])
                new = task_rows(encoder_name, task, record["metrics"], record.get("split", "-"), cfg.seed,
                                record["seconds"], record["pretraining_overlap"],
                                held_out_classes(encoder.pretraining))
            except Exception as exc:
                if not plan.isolate:
                    raise
                rows.append(failure_row(encoder_name, task, _failure(exc, f"{task} on {encoder_name}", log),
                                        cfg.seed))
                continue
            rows += new
            cached += [f"{encoder_name}/{task}"] if was_cached else []
            shown = ", ".join(f"{r['metric']} {r['value']:.1f}" for r in new[:4])
            log(f"[bench] {task:<10} {encoder_name:<12} {shown}  ({record['seconds']:.1f} s"
                f"{', cached' if was_cached else ''})")
    failures = {f"{r['encoder']}/{r['task']}": r["error"] for r in rows if r["error"]}
    table = None
    if entries:
        from pcm3.tasks.bench_comparison import comparison_table

        order = [r.name for r in entries] + list(plan.encoders)
        rows.sort(key=lambda r: order.index(r["encoder"]))
        table = comparison_table
    caption = (f"Seed {cfg.seed}; data {stores.trimmed.path} ({stores.trimmed.fingerprint}); values in "
               f"percent where the metric is an accuracy or mAP; {numbers_note(rows)}"
               + "".join(f"; {note}" for note in [data_notes(rows)] if note)
               + (f"; {len(failures)} failed: {', '.join(failures)} (the error column)" if failures else "")
               + ".")
    write_tables(out_dir, rows, caption, table)
    provenance = {
        "config": to_dict(cfg), "code_version": code_version(), "device": str(device),
        "runtime": runtime.to_dict(),
        "data": {"path": str(stores.trimmed.path), "fingerprint": stores.trimmed.fingerprint},
        "untrimmed": None if stores.untrimmed is None else
        {"path": str(stores.untrimmed_path), "fingerprint": stores.untrimmed.fingerprint},
        "encoders": {n: {"source": e.source, "fingerprint": encoder_fingerprint(e), "stream": e.stream,
                         "view_frames": e.view_frames}
                     for n, e in [*plan.encoders.items(),
                                  *((f"{n} (fewshot)", e) for n, e in plan.fewshot.items())]},
        "pretrain": plan.pretrain, "tasks": {t: to_dict(c) for t, c in configs.items()},
        "failures": failures, "cached": cached, "seconds": round(time.perf_counter() - start, 1),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_result(out_dir / "provenance.json", provenance)
    if cfg.pictures and plan.pictures is not None:
        from pcm3.tasks.bench_pictures import draw_pictures

        name, encoder, pretrain_dir = plan.pictures
        draw_pictures(out_dir, name, encoder, stores.trimmed, stores.untrimmed, configs, cfg.seed, device,
                      log, pretrain_dir)
    return rows
