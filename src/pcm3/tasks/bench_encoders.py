"""The ``encoders:`` list of ``pcm3 bench``: several encoders, each pre-trained (or loaded) on its
own, compared on the same tasks.

An entry is either a pre-training (``method``, optional ``backbone``, ``config`` and
``overrides``) or a ``checkpoint`` (a pcm3 checkpoint or an exported encoder). Its ``name``
defaults to ``method/backbone`` (pre-training) or the checkpoint's file stem.

Each pre-training runs in ``pretrain/<name>-<key>/``, where ``key`` is 12 hex digits of the
resolved config (the device aside): a rerun reuses a finished entry, resumes an unfinished one,
and a changed config gets a new folder. One entry failing (its config, its pre-training, loading
its checkpoint) is recorded as that entry's failure; the others go on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcm3.config import apply_overrides, from_dict, load_yaml, to_dict
from pcm3.errors import ConfigError
from pcm3.tasks.encoders import LoadedEncoder, load_encoder, random_encoder_from_spec

Log = Callable[[str], None]
RESERVED_NAMES = ("raw", "random-init")  # reference rows; an entry name must not start with them


@dataclass
class EncoderEntry:
    """One encoder of a bench: a pre-training (``method`` with optional ``backbone``,
    ``config`` YAML and ``overrides``) or a ``checkpoint`` (``.pt`` or ``.safetensors``)."""

    name: str | None = None
    method: str | None = None
    backbone: str | None = None
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None

    def validate(self) -> None:
        shown = {k: v for k, v in to_dict(self).items() if v not in (None, {})}
        if self.checkpoint is not None:
            extra = [k for k in ("method", "backbone", "config", "overrides") if k in shown]
            if extra:
                raise ConfigError(f"encoders entry {shown}: a checkpoint entry loads a finished encoder; "
                                  f"{', '.join(extra)} belong to a pre-training entry (give one or the "
                                  "other)")
        elif self.method is None:
            raise ConfigError(f"encoders entry {shown}: needs method (a pre-training: method, backbone, "
                              "config, overrides) or checkpoint (a pcm3 checkpoint or exported encoder)")


@dataclass
class ResolvedEntry:
    """An entry with its name, path-safe folder name and (pre-training entries) its config."""

    name: str
    slug: str
    entry: EncoderEntry
    pretrain: Any | None  # PretrainConfig; None for a checkpoint entry


def slug(name: str) -> str:
    """``name`` as a folder name: ``pcm3/stgcn`` -> ``pcm3_stgcn``, ``random-init (stgcn)`` ->
    ``random-init_stgcn_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def entry_pretrain_config(entry: EncoderEntry, data: str, device: str, where: str) -> Any:
    """The ``PretrainConfig`` of a pre-training entry: its ``config`` file (whose ``method``, when
    stated, must be the entry's), the entry's ``method`` and ``backbone`` (the file's block of another
    backbone is dropped: its widths do not apply), the bench's data (and device unless ``auto``),
    then the entry's ``overrides``."""
    from pcm3.engine.config import PretrainConfig
    from pcm3.tasks.bench_pretraining import _dotted

    mapping = load_yaml(entry.config) if entry.config else {}
    stated = mapping.get("method")
    if stated is not None and stated != entry.method:
        raise ConfigError(f"{where}: {entry.config} is a {stated!r} config, but the entry's method is "
                          f"{entry.method!r}")
    mapping["method"] = entry.method
    if entry.backbone is not None:
        model = dict(mapping.get("model") or {})
        old = model.get("backbone")
        if old is not None and old != entry.backbone:
            model.pop(old, None)
        mapping["model"] = {**model, "backbone": entry.backbone}
    base = [f"data={json.dumps(data)}"] + ([f"device={json.dumps(device)}"] if device != "auto" else [])
    try:
        return from_dict(PretrainConfig, apply_overrides(mapping, base + _dotted(entry.overrides)))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def resolve_entries(entries: list[EncoderEntry], data: str, device: str) -> list[ResolvedEntry]:
    """Every entry with its name and config; bad configs, reserved and duplicate names (also
    after :func:`slug`) are refused before anything runs."""
    out = []
    for i, entry in enumerate(entries):
        where = f"encoders[{i}]" + (f" ({entry.name})" if entry.name else "")
        if entry.checkpoint is not None:
            out.append(ResolvedEntry(entry.name or Path(entry.checkpoint).stem, "", entry, None))
            continue
        pcfg = entry_pretrain_config(entry, data, device, where)
        out.append(ResolvedEntry(entry.name or f"{pcfg.method}/{pcfg.model.backbone}", "", entry, pcfg))
    for r in out:
        r.slug = slug(r.name)
        if r.name.startswith(RESERVED_NAMES):
            raise ConfigError(f"encoders: the name {r.name!r} is taken by a reference row "
                              f"({', '.join(RESERVED_NAMES)}); give the entry another name")
    for attr in ("name", "slug"):
        seen = [getattr(r, attr) for r in out]
        twice = sorted({s for s in seen if seen.count(s) > 1})
        if twice:
            raise ConfigError(f"encoders: two entries are named {twice[0]!r}"
                              f"{' as a folder name' if attr == 'slug' else ''}; give each a distinct name "
                              f"(names: {', '.join(r.name for r in out)})")
    return out


def config_key(pcfg: Any) -> str:
    """12 hex digits of a resolved pre-training config, the device aside."""
    plain = {k: v for k, v in to_dict(pcfg).items() if k != "device"}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class EntryResult:
    """What one entry gave: its encoder (None when it failed), the few-shot encoder of a separate
    pre-training, the pre-training run folder, provenance, and the error."""

    name: str
    encoder: LoadedEncoder | None = None
    fewshot: LoadedEncoder | None = None
    run_dir: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _pretrain_entry(r: ResolvedEntry, fewshot_cfg: Any | None, mode: str, out_dir: Path,
                    log: Log) -> EntryResult:
    from pcm3.tasks.bench_pretraining import fewshot_holdout, run_or_reuse

    pcfg = copy.deepcopy(r.pretrain)
    held_out = fewshot_holdout(pcfg, fewshot_cfg)
    if held_out and mode == "shared":
        pcfg.exclude_classes = held_out
    run_dir = out_dir / "pretrain" / f"{r.slug}-{config_key(pcfg)}"
    log(f"[bench] {r.name}: pre-training {pcfg.method} on {pcfg.model.backbone} in {run_dir}")
    encoder, info = run_or_reuse(pcfg, run_dir, log)
    result = EntryResult(r.name, encoder, None, run_dir, info)
    if held_out and mode == "separate":
        few = copy.deepcopy(pcfg)
        few.exclude_classes = held_out
        few_dir = out_dir / "pretrain" / f"{r.slug}-fewshot-{config_key(few)}"
        log(f"[bench] {r.name}: a separate pre-training without the few-shot novel classes {held_out}")
        result.fewshot, info["fewshot"] = run_or_reuse(few, few_dir, log)
    return result


def entry_encoders(entries: list[ResolvedEntry], fewshot_cfg: Any | None, mode: str, out_dir: Path,
                   check: Callable[[LoadedEncoder], None], log: Log) -> list[EntryResult]:
    """Pre-train (or reuse, resume) or load every entry, one after the other; ``check`` refuses an
    encoder the bench's stores do not fit. A failing entry keeps its error and the rest go on."""
    results = []
    for r in entries:
        try:
            if r.pretrain is None:
                log(f"[bench] {r.name}: encoder {r.entry.checkpoint}")
                result = EntryResult(r.name, load_encoder(r.entry.checkpoint), info={
                    "encoder": r.entry.checkpoint})
            else:
                result = _pretrain_entry(r, fewshot_cfg, mode, out_dir, log)
            check(result.encoder)
        except Exception as exc:  # one entry must not lose the others' results
            log(f"[bench] {r.name} FAILED:\n{traceback.format_exc()}")
            result = EntryResult(r.name, error=f"{type(exc).__name__}: {exc}")
        results.append(result)
    return results


def _spec_key(encoder: LoadedEncoder) -> str:
    return json.dumps(encoder.spec.to_dict() if encoder.spec else None, sort_keys=True, default=str)


def entry_references(results: list[EntryResult], references: list[str], seed: int, in_channels: int,
                     num_persons: int) -> dict[str, LoadedEncoder]:
    """The reference rows of a multi-encoder bench: ``random-init (<backbone>)`` per distinct
    encoder spec (``random-init (<entry>)`` when a backbone has several specs) and ``raw`` (per
    distinct layout, view length and stream: ``raw (<frames> frames, <stream>)``)."""
    from pcm3.tasks.base import raw_encoder

    done = [r.encoder for r in results if r.encoder is not None]
    names = [r.name for r in results if r.encoder is not None]
    out: dict[str, LoadedEncoder] = {}
    if "random-init" in references:
        specs: dict[str, tuple[str, LoadedEncoder]] = {}
        for name, enc in zip(names, done, strict=True):
            if enc.spec is not None:
                specs.setdefault(_spec_key(enc), (name, enc))
        backbones = [enc.spec.backbone for _, enc in specs.values()]
        for name, enc in specs.values():
            label = enc.spec.backbone if backbones.count(enc.spec.backbone) == 1 else name
            out[f"random-init ({label})"] = random_encoder_from_spec(enc.spec, seed=seed, config=enc.config)
    if "raw" in references:
        inputs = {(json.dumps(e.layout.to_dict(), sort_keys=True), e.view_frames, e.stream): e for e in done}
        for enc in inputs.values():
            name = "raw" if len(inputs) == 1 else f"raw ({enc.view_frames} frames, {enc.stream})"
            out[name] = raw_encoder(enc.layout, in_channels, num_persons, frames=enc.view_frames,
                                    stream=enc.stream)
    return out
