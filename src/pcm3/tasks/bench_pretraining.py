"""The pre-training runs of ``pcm3 bench``: the run every task uses, and, when the task list has
``fewshot`` on the pre-training store, the classes the few-shot encoder must never see.

``fewshot_pretraining`` (a bench option) decides how those classes are kept out:

- ``separate`` (default): a second pre-training without the novel classes, in
  ``pretrain_fewshot/`` (resumed and reused like ``pretrain/``), used by the ``fewshot`` task
  alone; every other task uses the encoder pre-trained on all classes. Costs one more
  pre-training; no number of another task comes from an encoder that missed classes.
- ``shared``: one pre-training without the novel classes for every task (half the time); every
  row of that encoder states the held-out classes (``held_out_classes`` in ``results.json``,
  the caption of ``results.md``).

No hold-out is needed when the few-shot store (its ``data``) is another store than
pre-training's (NTU-60 -> NTU-120 novel classes), or when the bench loads an ``encoder``: the
leakage check (:mod:`pcm3.tasks.leakage`) then verifies that no novel-class clip was seen.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pcm3.config import load_config, to_dict
from pcm3.errors import Pcm3Error
from pcm3.models.legacy import migrate_config
from pcm3.tasks.encoders import LoadedEncoder, load_encoder

Log = Callable[[str], None]


def _dotted(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"a": {"b": 1}, "c.d": [1, 2]}`` -> ``["a.b=1", "c.d=[1, 2]"]`` (values as JSON = YAML)."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def pretrain_config(cfg: Any) -> Any:
    """The ``PretrainConfig`` of a bench config's ``pretrain`` (bench data/device first,
    overrides win)."""
    from pcm3.engine.config import PretrainConfig

    assert cfg.pretrain is not None
    base = [f"data={json.dumps(cfg.data)}"]
    if cfg.device != "auto":
        base.append(f"device={json.dumps(cfg.device)}")
    return load_config(PretrainConfig, cfg.pretrain.config, base + _dotted(cfg.pretrain.overrides))


def _check_same_run(pcfg: Any, run_dir: Path) -> None:
    """Refuse to resume a pre-training run folder that was made with another config."""
    written = run_dir / "config.yaml"
    if not written.exists():
        return
    old = migrate_config(yaml.safe_load(written.read_text()) or {})
    new = yaml.safe_load(yaml.safe_dump(to_dict(pcfg)))
    differ = [k for k in _changed_keys(old, new) if k != "device"]
    if differ:
        raise Pcm3Error(f"{run_dir} holds a pre-training run with another config (differs in: "
                        f"{', '.join(differ)}); choose another --out or delete that folder")


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys present in both trees whose values differ (keys a newer pcm3 added are not
    a change: their defaults keep the old behaviour)."""
    out = []
    for key in old.keys() & new.keys():
        if isinstance(old[key], dict) and isinstance(new[key], dict):
            out += _changed_keys(old[key], new[key], f"{prefix}{key}.")
        elif old[key] != new[key]:
            out.append(f"{prefix}{key}")
    return sorted(out)


def run_or_reuse(pcfg: Any, run_dir: Path, log: Log) -> tuple[LoadedEncoder, dict[str, Any]]:
    """Pre-train ``pcfg`` into ``run_dir`` (resumed when started, reused when finished); the
    final encoder and the run's provenance."""
    from pcm3.engine.pretrain import run_pretraining

    _check_same_run(pcfg, run_dir)
    finished = run_dir / "summary.json"
    if finished.exists() and (run_dir / "checkpoints" / "last.pt").exists():
        log(f"[bench] pre-training in {run_dir} is finished: reusing it")
        summary = json.loads(finished.read_text())
    else:
        log(f"[bench] pre-training into {run_dir} (resumed if it exists) ...")
        summary = run_pretraining(pcfg, run_dir, resume="auto")
    info = {"run_dir": str(run_dir), "config": to_dict(pcfg), "summary": summary}
    if (run_dir / "run_info.json").exists():  # the resolved device / precision / threads
        info["run_info"] = json.loads((run_dir / "run_info.json").read_text())
    return load_encoder(run_dir / "checkpoints" / "last.pt"), info


def fewshot_holdout(pcfg: Any, fewshot_cfg: Any | None) -> list[int]:
    """Class indices of the pre-training store to hold out for the few-shot task: its novel
    classes when it reads the pre-training store; none when there is no few-shot task, the
    pre-training config already holds classes out, or the few-shot store is another one."""
    from pcm3.engine.pretrain import resolve_store
    from pcm3.tasks.fewshot import novel_class_indices

    if fewshot_cfg is None or pcfg.exclude_classes or isinstance(pcfg.data, list):
        return []
    store = resolve_store(pcfg.data)
    if fewshot_cfg.data is not None and Path(fewshot_cfg.data).resolve() != store.path.resolve():
        return []
    return novel_class_indices(store, fewshot_cfg.novel_classes)


def pretrained_encoders(cfg: Any, fewshot_cfg: Any | None, out_dir: Path, log: Log
                        ) -> tuple[LoadedEncoder, LoadedEncoder | None, dict[str, Any]]:
    """``(encoder, few-shot encoder or None, provenance)`` of a bench config ``cfg``:
    ``cfg.encoder``, or the result of (resumed) pre-training; the few-shot encoder is the
    separate pre-training without the novel classes (None: the few-shot task uses ``encoder``)."""
    if cfg.encoder is not None:
        log(f"[bench] encoder: {cfg.encoder}")
        return (load_encoder(cfg.encoder, cfg.encoder_format, cfg.encoder_stream), None,
                {"encoder": cfg.encoder})
    pcfg = pretrain_config(cfg)
    held_out = fewshot_holdout(pcfg, fewshot_cfg)
    if held_out and cfg.fewshot_pretraining == "shared":
        pcfg.exclude_classes = held_out
        log(f"[bench] the few-shot novel classes {held_out} are held out of the one pre-training "
            "(fewshot_pretraining: shared; every row of that encoder says so)")
    encoder, info = run_or_reuse(pcfg, out_dir / "pretrain", log)
    if not held_out or cfg.fewshot_pretraining == "shared":
        return encoder, None, info
    fewshot_pcfg = copy.deepcopy(pcfg)
    fewshot_pcfg.exclude_classes = held_out
    log(f"[bench] a separate pre-training without the few-shot novel classes {held_out} for the fewshot task")
    fewshot_encoder, fewshot_info = run_or_reuse(fewshot_pcfg, out_dir / "pretrain_fewshot", log)
    return encoder, fewshot_encoder, {**info, "fewshot": fewshot_info}
